import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { jsonErrorOffset, jsonPathOffset, lineCol, loadModel, ModelSourceError, phobos } from "@merge/facility-model";

const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url));

describe("jsonErrorOffset", () => {
  const cases: [string, number][] = [
    ['{\n  "a": x}', 9],
    ['{"a":1,}', 7],
    ["[1,2", 4],
    ['{"a": "b\\q"}', 9],
    ['{"a":1} x', 8],
    ["", 0],
    ['{"a" 1}', 5],
    ["[01]", 2],
    ['{"a":-}', 5],
    ['{"a":"\u0001"}', 6],
  ];
  for (const [text, at] of cases) {
    it(`${JSON.stringify(text)} fails at ${at}`, () => {
      assert.throws(() => JSON.parse(text));
      assert.equal(jsonErrorOffset(text), at);
    });
  }
  it("finds no error in valid JSON", () => {
    const text = JSON.stringify(phobos(), null, 2);
    assert.equal(jsonErrorOffset(text), text.length);
  });
});

describe("jsonPathOffset", () => {
  const text = JSON.stringify(phobos(), null, 2);
  const lineOf = (path: string) => lineCol(text, jsonPathOffset(text, path)).line;
  const lines = text.split("\n");

  it("finds the line of the value at a schema path", () => {
    const line = lineOf("resources[3].ports[1].capacity");
    const n0 = phobos().resources[3];
    assert.equal(n0?.id, "n0");
    assert.match(lines[line - 1] ?? "", /"capacity": 1000000000,?$/);
    // The line belongs to n0's second port, eth0: the name sits two lines above.
    assert.match(lines.slice(line - 4, line - 1).join("\n"), /"name": "eth0"/);
  });

  it("for a missing field, points at the deepest value on the way", () => {
    const line = lineOf("resources[3].nope");
    assert.match(lines[line - 1] ?? "", /^ {4}\{$/, "the opening brace of resources[3]");
    assert.equal(lineOf("tags.vlan.xpnet[0].first") > lineOf("tags"), true);
    assert.deepEqual(lineCol("a\nbc\nd", 4), { line: 2, col: 3 });
  });
});

describe("loadModel", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "facility-source-test-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("loads samples, generated facilities and internets", async () => {
    const p = await loadModel("sample:phobos");
    assert.equal(p.kind, "facility");
    assert.equal(p.kind === "facility" && p.facility.name, "phobos");
    assert.deepEqual(p.problems, []);
    const g = await loadModel("sample:gen:300:5");
    assert.equal(g.kind === "facility" && g.facility.resources.filter((r) => r.kind === "node").length, 300);
    const i = await loadModel("sample:internet:2x50");
    assert.equal(i.kind === "internet" && i.internet.interconnects.length, 1);
    await assert.rejects(loadModel("sample:nope"), ModelSourceError);
  });

  it("loads JSON files, relative to cwd, and reports schema problems as 'invalid'", async () => {
    await writeFile(join(dir, "p.json"), JSON.stringify(phobos()));
    const ok = await loadModel("p.json", { cwd: dir });
    assert.equal(ok.kind, "facility");
    await writeFile(join(dir, "bad.json"), JSON.stringify({ xir: "1.0", name: "x", resources: [], cables: [] }));
    const bad = await loadModel(join(dir, "bad.json"));
    assert.equal(bad.kind, "invalid");
    assert.deepEqual(bad.problems, [
      { severity: "error", element: "tags", message: "is required", at: `${join(dir, "bad.json")}:1:1` },
    ]);
    await writeFile(join(dir, "i.json"), JSON.stringify({ facilities: [phobos()], interconnects: "none" }));
    const net = await loadModel(join(dir, "i.json"));
    assert.equal(net.kind, "invalid");
    assert.equal(net.problems[0]?.element, "interconnects");
  });

  it("loads modules: a default-exported builder, a function returning an internet builder", async () => {
    const tiny = await loadModel(join(fixtures, "tiny-facility.ts"));
    assert.equal(tiny.kind, "facility");
    assert.deepEqual(tiny.problems, []);
    const two = await loadModel(join(fixtures, "two-sites.ts"));
    assert.equal(two.kind, "internet");
    assert.equal(two.kind === "internet" && two.internet.interconnects[0]?.latency, 12e6);
    assert.deepEqual(two.problems, []);
  });

  it("loads a model module kept outside the repository (as an ES module)", async () => {
    const text = await readFile(join(fixtures, "tiny-facility.ts"), "utf8");
    await writeFile(join(dir, "outside.mts"), text);
    const outside = await loadModel(join(dir, "outside.mts"));
    assert.equal(outside.kind, "facility");
    assert.deepEqual(outside.problems, []);
    await writeFile(join(dir, "outside.ts"), text);
    await assert.rejects(
      loadModel(join(dir, "outside.ts")),
      /name the file \.mts \(or put a package\.json with "type": "module" beside it\)/,
    );
  });

  it("says what is wrong with a source it cannot use", async () => {
    await assert.rejects(
      loadModel(join(fixtures, "no-export.ts")),
      /export the facility as default .* found exports: a, b/,
    );
    await assert.rejects(loadModel(join(dir, "missing.ts")), /cannot read .*missing\.ts: no such file/);
    await assert.rejects(
      loadModel(join(dir, "facility.yaml")),
      /expected a \.json file, a \.ts\/\.js module or sample:<name>/,
    );
    await writeFile(join(dir, "trunc.json"), '{"xir": "1.0",\n"name": "x",\n');
    await assert.rejects(loadModel(join(dir, "trunc.json")), /trunc\.json:3:1: invalid JSON: unexpected end of file/);
  });
});
