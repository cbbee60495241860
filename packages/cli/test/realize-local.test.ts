// mrg realize --local --facility takes every facility source `cog model show` takes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";

const root = join(import.meta.dirname, "..", "..", "..");
const mrg = join(root, "packages", "cli", "src", "mrg.ts");
const cog = join(root, "packages", "cli", "src", "cog.ts");

function run(cli: string, ...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", cli, ...args], { cwd: root, encoding: "utf8" });
}

test("sample:gen:N, sample:phobos and a bare sample name are facilities for realize --local", () => {
  for (const facility of ["sample:gen:40", "sample:phobos", "phobos", "sample:internet:2x20"]) {
    const shown = run(cog, "model", "show", facility.includes(":") ? facility : `sample:${facility}`, "--json");
    assert.equal(shown.status, 0, shown.stderr);
    const r = run(mrg, "realize", "--local", "examples/hello.ts", "--facility", facility, "--json");
    assert.equal(r.status, 0, `${facility}: ${r.stderr}`);
    const rz = JSON.parse(r.stdout) as { nodes: { node: string; facility: string }[] };
    const facilities = new Set(
      (JSON.parse(shown.stdout).facilities ?? [JSON.parse(shown.stdout)]).map((f: { name: string }) => f.name),
    );
    assert.deepEqual(
      rz.nodes.map((n) => n.node),
      ["a", "b"],
    );
    assert.ok(
      rz.nodes.every((n) => facilities.has(n.facility)),
      `${facility}: placed on ${rz.nodes.map((n) => n.facility)}`,
    );
  }
});

test("a source neither accepts is refused the same way, naming the forms", () => {
  const r = run(mrg, "realize", "--local", "examples/hello.ts", "--facility", "sample:gen:x");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--facility sample:gen:x: sample:gen:x: no such sample; samples are sample:phobos/);
  const c = run(cog, "model", "show", "sample:gen:x");
  assert.match(c.stderr, /sample:gen:x: no such sample; samples are sample:phobos/);
});
