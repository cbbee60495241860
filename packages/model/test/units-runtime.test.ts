// Units checked at run time, for models without types (JavaScript, or casts):
// a quantity of the wrong unit is an error, a bare number a warning naming
// the unit it was taken as. Errors read as the Python library's do.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { compileFile, formatDiagnostic } from "../src/index.ts";

async function compileJs(body: string) {
  const dir = mkdtempSync(join(tmpdir(), "model-units-"));
  try {
    const file = join(dir, "model.mjs");
    writeFileSync(
      file,
      `import { Network, memory, cores, latency, capacity, loss, ms, gb, mbps } from "@merge/model";\nconst net = new Network("u");\n${body}\nexport default net;\n`,
    );
    const r = await compileFile(file);
    return { ...r, text: r.diagnostics.map(formatDiagnostic).join("\n") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a duration where a size is expected is an error at the model's line", async () => {
  const r = await compileJs('const a = net.node("a", memory.ge(ms(10)));\nnet.connect([a, net.node("b")]);');
  assert.equal(r.ok, false);
  assert.match(
    r.text,
    /model\.mjs:3:\d+: error: memory\.capacity >= 10 ms: a size was expected, not a duration; write e\.g\. gb\(8\) \[unit-mismatch\]/,
  );
});

test("a size given as a core count is an error", async () => {
  const r = await compileJs('const a = net.node("a", cores.ge(gb(1)));\nnet.connect([a, net.node("b")]);');
  assert.match(r.text, /error: proc\.cores >= 1 GiB: a plain count was expected, not a size/);
});

test("a bare number where a unit is expected is a warning naming the unit it was taken as", async () => {
  const r = await compileJs(
    'const a = net.node("a");\nnet.connect([a, net.node("b")], latency.eq(10), capacity.le(mbps(100)), loss.eq(0.01));',
  );
  assert.equal(r.ok, true, r.text);
  const warnings = r.diagnostics.filter((d) => d.code === "bare-number");
  assert.equal(warnings.length, 1, r.text);
  assert.match(
    r.text,
    /model\.mjs:4:\d+: warning: latency == 10: a bare number, taken as 10 ns; write e\.g\. ms\(10\)/,
  );
  assert.deepEqual(r.xir?.links[0]?.constraints, [
    { prop: "latency", op: "==", value: 10 },
    { prop: "capacity", op: "<=", value: 100e6 },
    { prop: "loss", op: "==", value: 0.01 },
  ]);
});

test("tagged quantities compile to plain JSON numbers, arithmetic included", async () => {
  const r = await compileJs(
    'const a = net.node("a", memory.ge(gb(2)), memory.le(gb(2) * 2));\nnet.connect([a, net.node("b")]);',
  );
  assert.deepEqual(r.xir?.nodes[0]?.constraints, [
    { prop: "memory.capacity", op: ">=", value: 2 ** 31 },
    { prop: "memory.capacity", op: "<=", value: 2 ** 32 },
  ]);
  assert.equal(typeof r.xir?.nodes[0]?.constraints[0]?.value, "number");
  assert.equal(r.diagnostics.filter((d) => d.code === "bare-number").length, 1, "gb(2) * 2 is a plain number");
});

test("a misspelt API call says which method was meant", async () => {
  const r = await compileJs('const a = net.node("a");\nnet.conect([a, net.node("b")]);');
  assert.equal(r.ok, false);
  assert.match(
    r.text,
    /model\.mjs:4:\d+: error: the model threw TypeError: net\.conect is not a function \(did you mean connect\?\)/,
  );
});

test("a quantity given as a property value is a plain number in the XIR", async () => {
  const r = await compileJs(
    'import { property } from "@merge/model";\nconst a = net.node("a", property("scratch", gb(1)));\na.properties.wait = [ms(1), ms(2)];\nnet.connect([a, net.node("b")]);',
  );
  assert.equal(r.ok, true, r.text);
  assert.deepEqual(r.xir?.nodes[0]?.properties, { scratch: 2 ** 30, wait: [1e6, 2e6] });
});
