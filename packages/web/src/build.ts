/**
 * The Vite build of the browser app (app/ → dist/), for `npm run build -w
 * packages/web` (through vite.config.ts) and for tests that build the UI
 * themselves. The UI lives under /ui/ on the portal's origin: the API owns
 * the other paths, and `/callback` is the OIDC redirect the portal registers.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
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

/**
 * Builds the UI into `outDir` (default packages/web/dist). The build is written beside it and moved into
 * place whole: a portal starting meanwhile (two `npm start`s on a new clone) reads either no UI or all of
 * it, never a directory Vite is still emptying. When another build got there first, that one stays.
 */
export async function buildWeb(outDir = DIST_DIR): Promise<void> {
  const { build } = await import("vite");
  const staging = `${outDir}.${process.pid}.${randomBytes(3).toString("hex")}`;
  try {
    await build({ ...webConfig(staging), configFile: false });
    try {
      await rename(staging, outDir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
      // A whole build is already there: keep it. Anything else there is a leftover to replace.
      if (existsSync(join(outDir, "index.html"))) return;
      await rm(outDir, { recursive: true, force: true });
      await rename(staging, outDir);
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
