/**
 * The Vite build of the browser app (app/ → dist/), for `npm run build -w
 * packages/web` (through vite.config.ts) and for tests that build the UI
 * themselves. The UI lives under /ui/ on the portal's origin: the API owns
 * the other paths, and `/callback` is the OIDC redirect the portal registers.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { InlineConfig, Plugin } from "vite";

export const UI_BASE = "/ui/";
export const APP_DIR = fileURLToPath(new URL("../app", import.meta.url));
export const DIST_DIR = fileURLToPath(new URL("../dist", import.meta.url));
/** In a build: every file that went into it (relative to app/) with its SHA-256. Not served. */
export const INPUTS_FILE = ".build-inputs.json";

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** Writes INPUTS_FILE into the build: the modules of every chunk, and index.html. */
const recordInputs: Plugin = {
  name: "merge-build-inputs",
  generateBundle(_options, bundle) {
    const files = new Set([join(APP_DIR, "index.html")]);
    for (const item of Object.values(bundle))
      if (item.type === "chunk")
        for (const id of item.moduleIds) {
          const file = id.split("?")[0] ?? "";
          if (isAbsolute(file) && existsSync(file) && statSync(file).isFile()) files.add(file);
        }
    const inputs = Object.fromEntries([...files].sort().map((f) => [relative(APP_DIR, f), sha256(f)]));
    this.emitFile({ type: "asset", fileName: INPUTS_FILE, source: `${JSON.stringify(inputs, null, 1)}\n` });
  },
};

export function webConfig(outDir = DIST_DIR): InlineConfig {
  return {
    root: APP_DIR,
    base: UI_BASE,
    logLevel: "warn",
    // JSX through Vite's own esbuild: no React plugin needed.
    esbuild: { jsx: "automatic" },
    plugins: [recordInputs],
    build: { outDir, emptyOutDir: true, target: "es2022", reportCompressedSize: false },
  };
}

/**
 * Whether `dir` holds a build of the sources as they are now: every file that went into it unchanged (a
 * `git pull` that touched the app, the libraries it bundles or their versions makes it stale). A build
 * without the record (an older one) counts as stale.
 */
export function webUiCurrent(dir = DIST_DIR): boolean {
  let inputs: Record<string, string>;
  try {
    if (!existsSync(join(dir, "index.html"))) return false;
    inputs = JSON.parse(readFileSync(join(dir, INPUTS_FILE), "utf8")) as Record<string, string>;
  } catch {
    return false;
  }
  return Object.entries(inputs).every(([rel, hash]) => {
    try {
      return sha256(resolve(APP_DIR, rel)) === hash;
    } catch {
      return false;
    }
  });
}

/**
 * Builds the UI into `outDir` (default packages/web/dist). The build is written beside it and moved into
 * place whole: a portal starting meanwhile (two `npm start`s on a new clone) reads either no UI or all of
 * it, never a directory Vite is still emptying. When another build of the same sources got there first,
 * that one stays; a stale build or a leftover is replaced.
 */
export async function buildWeb(outDir = DIST_DIR): Promise<void> {
  const { build } = await import("vite");
  const tag = `${process.pid}.${randomBytes(3).toString("hex")}`;
  const staging = `${outDir}.${tag}`;
  const old = `${outDir}.old.${tag}`;
  try {
    await build({ ...webConfig(staging), configFile: false });
    try {
      await rename(staging, outDir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
      if (webUiCurrent(outDir)) return;
      // Moved aside, not emptied in place: a portal reading it now reads the old build whole.
      await rename(outDir, old).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
      await rename(staging, outDir).catch((e: NodeJS.ErrnoException) => {
        // Another build took the place meanwhile: it is of these sources too.
        if (e.code !== "ENOTEMPTY" && e.code !== "EEXIST") throw e;
      });
    }
  } finally {
    await Promise.all([staging, old].map((d) => rm(d, { recursive: true, force: true })));
  }
}
