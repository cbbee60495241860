// TypeScript models are type-checked before they run: unit mistakes and
// misspelt calls are file:line:col errors naming the unit that was expected,
// and the result cache follows edits to the model's own imports.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { compileFile, formatDiagnostic, typeCheckModel } from "../src/index.ts";

const dir = mkdtempSync(join(tmpdir(), "model-typecheck-"));
process.env.XDG_CACHE_HOME = join(dir, "cache");
after(() => rmSync(dir, { recursive: true, force: true }));

const HEAD =
  'import { Network, memory, latency, cores, gb, ms, mbps, capacity } from "@merge/model";\nconst net = new Network("t");\n';

function model(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, `${HEAD}${body}\nexport default net;\n`);
  return file;
}

test("a duration where a size is expected does not compile, and the model does not run", async () => {
  const marker = join(dir, "ran");
  const file = model(
    "duration.ts",
    `const a = net.node("a", memory.ge(ms(10)));\nnet.connect([a, net.node("b")]);\nimport("node:fs").then((fs) => fs.writeFileSync(${JSON.stringify(marker)}, "x"));`,
  );
  const r = await compileFile(file);
  assert.equal(r.ok, false);
  const text = r.diagnostics.map(formatDiagnostic).join("\n");
  assert.match(
    text,
    /duration\.ts:3:35: error: a size was expected, not a duration; write e\.g\. gb\(8\) .*\[ts2345\]/,
  );
  assert.equal(existsSync(marker), false, "a model with type errors is not run");
});

test("a bare number where a unit is expected, and a misspelt call, are type errors", async () => {
  const file = model(
    "bare.ts",
    'const a = net.node("a", cores.ge(2));\nnet.conect([a, net.node("b")], latency.eq(10));',
  );
  const text = (await typeCheckModel(file)).map(formatDiagnostic).join("\n");
  assert.match(
    text,
    /bare\.ts:4:5: error: Property 'conect' does not exist on type 'Network'\. Did you mean 'connect'\? \[ts2551\]/,
  );
  assert.match(text, /bare\.ts:4:43: error: a duration was expected, not a bare number; write e\.g\. ms\(10\)/);
});

test("a count given a size names the count", async () => {
  const file = model("count.ts", 'net.connect([net.node("a", cores.ge(gb(1))), net.node("b")]);');
  const text = (await typeCheckModel(file)).map(formatDiagnostic).join("\n");
  assert.match(text, /count\.ts:3:37: error: a plain count was expected, not a size/);
});

test("the cached result follows edits to a file the model imports", async () => {
  writeFileSync(join(dir, "sizes.ts"), 'import { gb } from "@merge/model";\nexport const big = gb(8);\n');
  const file = join(dir, "uses.ts");
  writeFileSync(
    file,
    `${HEAD}import { big } from "./sizes.ts";\nnet.connect([net.node("a", memory.ge(big)), net.node("b")], capacity.le(mbps(10)));\nexport default net;\n`,
  );
  assert.deepEqual(await typeCheckModel(file), []);
  assert.ok(readdirSync(join(dir, "cache", "merge", "typecheck")).length > 0, "results are cached on disk");
  assert.deepEqual(await typeCheckModel(file), []);
  writeFileSync(join(dir, "sizes.ts"), 'import { ms } from "@merge/model";\nexport const big = ms(8);\n');
  const after = (await typeCheckModel(file)).map(formatDiagnostic).join("\n");
  assert.match(after, /uses\.ts:4:38: error: a size was expected, not a duration/);
});

test("a model that type-checks compiles as before", async () => {
  const r = await compileFile(model("fine.ts", 'net.connect([net.node("a", memory.ge(gb(4))), net.node("b")]);'));
  assert.equal(r.ok, true, r.diagnostics.map(formatDiagnostic).join("\n"));
});

test("an unknown name reads as it would at run time, with TypeScript's suggestion", async () => {
  const file = model("names.ts", 'net.connect([net.node("a", nope), net.node("b", memroy.ge(gb(1)))]);');
  const text = (await typeCheckModel(file)).map(formatDiagnostic).join("\n");
  assert.match(text, /names\.ts:3:28: error: nope is not defined \[ts2304\]/);
  assert.match(text, /names\.ts:3:49: error: memroy is not defined \(did you mean memory\?\) \[ts2552\]/);
});
