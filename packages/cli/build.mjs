#!/usr/bin/env node
// Builds mrg, mergectl and cog into packages/cli/dist/ as plain JavaScript, so a
// command starts without compiling TypeScript first (tsx costs ~0.8 s a run).
//   node packages/cli/build.mjs   (npm run build; scripts/setup.sh and npm test run it)
//
// The workspace packages the commands use are bundled in; npm packages stay
// imports from node_modules. Two things keep the bundle honest:
//  - `@merge/model` is not bundled: it runs a user's TypeScript model, so it is
//    loaded from its sources through tsx, which the commands that compile models
//    register first (src/typescript.ts).
//  - `import.meta.url` in a bundled source file is rewritten to that file's own
//    URL (relative to the bundle), so files found beside a source file (the
//    default policy, native sources, cog's command groups) are found from dist/.
import { readFile, rename, rm } from "node:fs/promises";
import { dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const dist = `${here}/dist`;
// Built beside dist/ and moved into place, so a command started meanwhile finds a whole build.
const outdir = `${here}/dist.${process.pid}`;

/**
 * Loaded from node_modules at run time, not bundled: native code, TypeScript
 * tooling, the store's etcd client, and @merge/model (see above).
 */
const external = ["@merge/model", "better-sqlite3", "etcd3", "tsx", "esbuild", "typescript"];

/** `import.meta.url` in a workspace source file means that file, not the bundle. */
const sourceUrls = {
  name: "source-urls",
  setup(b) {
    b.onLoad({ filter: /\/packages\/[^/]+\/src\/.*\.ts$/ }, async (args) => {
      const text = await readFile(args.path, "utf8");
      if (!text.includes("import.meta.url")) return { contents: text, loader: "ts" };
      const rel = JSON.stringify(relative(outdir, args.path));
      return {
        contents: text.replaceAll("import.meta.url", `new URL(${rel}, import.meta.url).href`),
        loader: "ts",
      };
    });
  },
};

const started = Date.now();
try {
  await build({
    entryPoints: { mrg: `${here}/src/mrg.ts`, mergectl: `${here}/src/mergectl.ts`, cog: `${here}/src/cog.ts` },
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    sourcemap: "linked",
    define: { "process.env.MERGE_CLI_BUILT": '"1"' },
    external,
    // Bundled CommonJS packages require() Node's modules; ESM has no require of its own.
    banner: {
      js: 'import { createRequire as __mergeRequire } from "node:module"; const require = __mergeRequire(import.meta.url);',
    },
    plugins: [sourceUrls],
    logLevel: "warning",
  });
  await rm(dist, { recursive: true, force: true });
  await rename(outdir, dist);
} finally {
  await rm(outdir, { recursive: true, force: true });
}
console.log(`cli: built mrg, mergectl, cog into ${relative(process.cwd(), dist) || "."} in ${Date.now() - started} ms`);
