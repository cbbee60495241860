/**
 * MergeTB v0 models (test/v0/*.v0.py, written in the idioms of published v0
 * scripts) compile to the same XIR as their v1 translations (*.v1.py), with
 * one warning per script that it used v0; what v1 cannot express (experiment
 * storage) is still refused.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { canonicalJSON } from "@merge/xir";
import { ModelError } from "../src/diagnostics.ts";
import { compileFile } from "../src/index.ts";
import { runPythonModel, runPythonSource } from "../src/python.ts";

const dir = join(import.meta.dirname, "v0");
const models = readdirSync(dir)
  .filter((f) => f.endsWith(".v0.py"))
  .map((f) => f.replace(/\.v0\.py$/, ""));

describe("v0 models compile to their v1 translation's XIR", () => {
  test("there are v0 models to compare", () => {
    assert.deepEqual(models.sort(), ["lanoflans", "mixed", "vtc", "workers"]);
  });
  for (const name of models) {
    test(name, async () => {
      const v0 = await runPythonModel(join(dir, `${name}.v0.py`));
      const v1 = await runPythonModel(join(dir, `${name}.v1.py`));
      assert.ok(v0.experiment.nodes.length > 1);
      assert.equal(canonicalJSON(v0.experiment), canonicalJSON(v1.experiment));

      const full0 = await compileFile(join(dir, `${name}.v0.py`));
      const full1 = await compileFile(join(dir, `${name}.v1.py`));
      assert.ok(full0.ok, JSON.stringify(full0.diagnostics));
      assert.equal(canonicalJSON(full0.xir), canonicalJSON(full1.xir));
      const warned = full0.diagnostics.filter((d) => /mergexp v0 API/.test(d.message));
      assert.equal(warned.length, 1, "one v0 warning per script");
      assert.equal(warned[0]?.severity, "warning");
      assert.ok((warned[0]?.location?.line ?? 0) > 1, "located at the script's first v0 use");
      assert.equal(full1.diagnostics.filter((d) => /mergexp v0 API/.test(d.message)).length, 0);
    });
  }
});

describe("v0 that v1 cannot express is refused", () => {
  test("experiment storage", async () => {
    const source = "import mergexp as mx\nnet = mx.Topology('s')\nstore = mx.Storage('data')\nmx.experiment(net)\n";
    const err = await runPythonSource(source, "storage.py").then(
      () => assert.fail("a v0 Storage model compiled"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ModelError);
    const d = err.diagnostics[0];
    assert.equal(d?.code, "mergexp-v0-api");
    assert.match(
      d?.message ?? "",
      /mergexp\.Storage is the mergexp v0 API; in v1 use nothing: experiment storage is not part of mergexp v1/,
    );
    assert.equal(d?.location?.line, 3);
  });

  test("mounting storage on a node", async () => {
    const source =
      "import mergexp as mx\nnet = mx.Topology('s')\na = net.device('a')\na.mount('/data')\nmx.experiment(net)\n";
    const err = await runPythonSource(source, "mount.py").then(
      () => assert.fail("a v0 mount compiled"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ModelError);
    assert.equal(err.diagnostics[0]?.code, "mergexp-v0-api");
    assert.match(
      err.diagnostics[0]?.message ?? "",
      /node\.mount\(\.\.\.\) is the mergexp v0 API for experiment storage/,
    );
    assert.equal(err.diagnostics[0]?.location?.line, 4);
  });
});
