/**
 * Python models and their TypeScript twins (examples/python/twins) compile to
 * identical canonical XIR: before reticulation (what the scripts describe) and
 * after the compiler's whole pipeline. Also: `.py` through compileFile gives
 * located diagnostics.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { canonicalJSON } from "@merge/xir";
import { compileFile, compileSource } from "../src/index.ts";
import { runPythonModel } from "../src/python.ts";

const examples = fileURLToPath(new URL("../../../examples/python/", import.meta.url));
const TWINS = ["hello-world", "dumbbell", "lans-routers", "node-constraints", "emulated-links", "infranet-names"];

describe("Python models and their TypeScript twins give identical XIR", () => {
  for (const name of TWINS) {
    test(name, async () => {
      const py = `${examples}${name}.py`;
      const ts = `${examples}twins/${name}.ts`;
      const described = await runPythonModel(py);
      const tsRaw = await compileFile(ts, { noReticulate: true });
      assert.ok(tsRaw.ok && tsRaw.xir, JSON.stringify(tsRaw.diagnostics));
      assert.ok(described.experiment.nodes.length > 0);
      assert.equal(canonicalJSON(described.experiment), canonicalJSON(tsRaw.xir));

      const pyFull = await compileFile(py);
      const tsFull = await compileFile(ts);
      assert.ok(pyFull.ok, JSON.stringify(pyFull.diagnostics));
      assert.ok(tsFull.ok, JSON.stringify(tsFull.diagnostics));
      assert.equal(canonicalJSON(pyFull.xir), canonicalJSON(tsFull.xir));
      assert.deepEqual(pyFull.stats, tsFull.stats);
    });
  }
});

describe("compileFile on .py models", () => {
  test("the dumbbell is reticulated: every socket addressed, static routes", async () => {
    const r = await compileFile(`${examples}dumbbell.py`);
    assert.ok(r.ok && r.xir);
    assert.ok(r.xir.nodes.every((n) => n.sockets.every((s) => s.addrs.length === 1)));
    assert.ok(r.stats && r.stats.assigned === r.stats.sockets && r.stats.routes > 0);
  });

  test("a Python exception is a located error diagnostic", async () => {
    const r = await compileSource(
      "from mergexp import *\nnet = Network('x')\na = net.node('a', latency == ms(1))\nexperiment(net)\n",
      "broken.py",
    );
    assert.equal(r.ok, false);
    assert.equal(r.diagnostics[0]?.code, "mergexp-element");
    assert.deepEqual(r.diagnostics[0]?.location, { file: "broken.py", line: 3, column: 5 });
  });

  test("the compiler's findings point at the script's lines", async () => {
    const source = [
      "from mergexp import *",
      "net = Network('dup')",
      "a, b, c = net.node('a'), net.node('b'), net.node('c')",
      "l1 = net.connect([a, b])",
      "l1[a].socket.addrs = ip4('10.0.0.1/24')",
      "l1[b].socket.addrs = ip4('10.0.0.1/24')",
      "l2 = net.connect([b, c])",
      "experiment(net)",
    ].join("\n");
    const r = await compileSource(source, "dup.py");
    assert.equal(r.ok, false);
    const dup = r.diagnostics.find((d) => d.severity === "error");
    assert.ok(dup, JSON.stringify(r.diagnostics));
    assert.equal(dup.location?.file, "dup.py");
    assert.ok([5, 6].includes(dup.location?.line ?? 0), JSON.stringify(dup));
  });
});
