/** The web UI as the browser tests serve it: built from this checkout, served by the portal. */
import { join } from "node:path";
import { buildWeb } from "../src/build.ts";
import { webUiPlugin } from "../src/serve.ts";

/** Builds the UI into `dir/dist` and returns the portal plugin that serves it under /ui. */
export async function builtUi(dir: string): Promise<ReturnType<typeof webUiPlugin>> {
  const distDir = join(dir, "dist");
  await buildWeb(distDir);
  return webUiPlugin({ distDir });
}
