export { DIST_DIR, UI_BASE } from "./build.ts";
export { loadAssets, type WebUiOptions, webUi, webUiPlugin } from "./serve.ts";
