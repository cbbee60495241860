// mrg compile, run as a user would: XIR on stdout, diagnostics on stderr as
// file:line:col, exit status 1 on errors, --out, --graph and --canonical.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { canonicalJSON, validateExperiment } from "@merge/xir";

const root = join(import.meta.dirname, "..", "..", "..");
const mrg = join(root, "packages", "cli", "src", "mrg.ts");
const tmp = mkdtempSync(join(tmpdir(), "mrg-compile-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function run(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", mrg, "compile", ...args], { cwd: root, encoding: "utf8" });
}

test("a good model: XIR JSON on stdout, exit 0", () => {
  const r = run("examples/demo.ts");
  assert.equal(r.status, 0, r.stderr);
  const x = JSON.parse(r.stdout);
  assert.equal(validateExperiment(x).ok, true);
  assert.equal(x.name, "demo");
  assert.equal(x.nodes.length, 4);
  assert.ok(x.nodes.every((n: { sockets: { addrs: string[] }[] }) => n.sockets.every((s) => s.addrs.length === 1)));
});

test("--out and --canonical write the canonical form to a file", () => {
  const out = join(tmp, "demo.json");
  const r = run("examples/demo.ts", "--out", out, "--canonical");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "");
  const text = readFileSync(out, "utf8");
  assert.equal(text, `${canonicalJSON(JSON.parse(text))}\n`);
});

test("--graph emits nodes and links for the web UI", () => {
  const r = run("examples/star.ts", "--graph");
  assert.equal(r.status, 0, r.stderr);
  const g = JSON.parse(r.stdout);
  assert.equal(g.nodes.length, 9, "8 nodes and the LAN's hub");
  assert.equal(g.links.length, 8);
  assert.ok(g.links.every((l: { source: string }) => l.source === "lan:lan"));
});

test("a bad model: file:line:col diagnostics on stderr, nothing on stdout, exit 1", () => {
  const r = run("packages/model/test/bad/memory-contradiction.ts");
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "");
  assert.match(
    r.stderr,
    /^packages\/model\/test\/bad\/memory-contradiction\.ts:4:50: error: node a: contradictory constraints, no value satisfies all of: memory\.capacity >= 8 GiB, memory\.capacity <= 4 GiB \[contradiction\]$/m,
  );
  assert.match(r.stderr, /1 error\(s\)/);
});

test("warnings are printed but do not fail the compile", () => {
  const r = run("packages/model/test/bad/unknown-image.ts");
  assert.equal(r.status, 0);
  assert.match(r.stderr, /unknown-image\.ts:4:25: warning: node a: unknown image "bookwrom"/);
  assert.equal(JSON.parse(r.stdout).nodes[0].image, "bookwrom");
});

test("a missing file is an error, not a crash", () => {
  const r = run("no/such/model.ts");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no such model file: no\/such\/model\.ts \[no-file\]/);
});
