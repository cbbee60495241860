/**
 * The browser bundle holds no Node-only code: the UI's Vite build (the same
 * configuration `npm run build -w packages/web` uses, not written to disk)
 * contains no module of ajv and nothing standing in for a Node built-in
 * (node:crypto and friends become `__vite-browser-external` in a browser
 * build). Controls: `@merge/xir`'s main entry fails to bundle for the browser
 * at all (node:crypto), and a bundle of its schema module is found to hold ajv,
 * so the check is able to fail.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { InlineConfig, Rollup } from "vite";
import { webConfig } from "../src/build.ts";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "merge-web-bundle-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Builds in memory; returns every module id in the output and the emitted code. */
async function bundle(config: InlineConfig): Promise<{ modules: string[]; code: string }> {
  const { build } = await import("vite");
  const out = (await build({
    ...config,
    configFile: false,
    logLevel: "silent",
    build: { ...config.build, write: false },
  })) as Rollup.RollupOutput | Rollup.RollupOutput[];
  const modules: string[] = [];
  let code = "";
  for (const o of Array.isArray(out) ? out : [out]) {
    for (const item of o.output) {
      if (item.type !== "chunk") continue;
      modules.push(...item.moduleIds);
      code += item.code;
    }
  }
  return { modules, code };
}

const nodeOnly = (modules: string[]) =>
  modules.filter((m) => /[/\\]node_modules[/\\]ajv[/\\]|__vite-browser-external|^node:|\0?node:crypto/.test(m));

test("the web UI's bundle has no ajv and no Node built-ins", async () => {
  const { modules, code } = await bundle(webConfig(join(dir, "ui")));
  assert.ok(
    modules.some((m) => m.includes("/xir/src/properties.ts")),
    "the bundle does use @merge/xir (describeConstraint)",
  );
  assert.deepEqual(nodeOnly(modules), []);
  assert.ok(!code.includes("node:crypto"), "no reference to node:crypto in the emitted code");
});

test("control: @merge/xir's main entry does not bundle for the browser, and its schema module pulls ajv in", async () => {
  // By path: the temp dir is outside the workspace, where "@merge/xir" does not resolve.
  const xir = (m: string) => JSON.stringify(fileURLToPath(new URL(`../../xir/src/${m}`, import.meta.url)));
  const control = async (name: string, source: string) => {
    const entry = join(dir, `${name}.ts`);
    await writeFile(entry, source);
    return bundle({
      root: dir,
      build: { outDir: join(dir, `${name}-out`), rollupOptions: { input: entry }, target: "es2022" },
    });
  };
  await assert.rejects(
    control("index", `import { canonicalHash } from ${xir("index.ts")};\nconsole.log(canonicalHash({}));\n`),
    /node:crypto|__vite-browser-external/,
  );
  const { modules } = await control(
    "schema",
    `import { validateExperiment } from ${xir("schema.ts")};\nconsole.log(validateExperiment({}));\n`,
  );
  assert.ok(
    nodeOnly(modules).some((m) => m.includes("ajv")),
    "ajv is found",
  );
});
