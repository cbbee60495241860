/**
 * The Vite build of the browser app (app/ → dist/), for `npm run build -w
 * packages/web` (through vite.config.ts) and for tests that build the UI
 * themselves. The UI lives under /ui/ on the portal's origin: the API owns
 * the other paths, and `/callback` is the OIDC redirect the portal registers.
 */
import { fileURLToPath } from "node:url";
import type { InlineConfig } from "vite";

export const UI_BASE = "/ui/";
export const APP_DIR = fileURLToPath(new URL("../app", import.meta.url));
export const DIST_DIR = fileURLToPath(new URL("../dist", import.meta.url));

export function webConfig(outDir = DIST_DIR): InlineConfig {
  return {
    root: APP_DIR,
    base: UI_BASE,
    logLevel: "warn",
    // JSX through Vite's own esbuild: no React plugin needed.
    esbuild: { jsx: "automatic" },
    build: { outDir, emptyOutDir: true, target: "es2022", reportCompressedSize: false },
  };
}

/** Builds the UI into `outDir` (default packages/web/dist). */
export async function buildWeb(outDir = DIST_DIR): Promise<void> {
  const { build } = await import("vite");
  await build({ ...webConfig(outDir), configFile: false });
}
