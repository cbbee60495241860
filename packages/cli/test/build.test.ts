// The command lines as installed: bin/ runs the JavaScript that `npm run build`
// made in dist/ (npm test builds it first), from any directory and through a
// symlink on the PATH; commands that run TypeScript still do; every subcommand
// says what it does and required options say so.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const bin = (name: string) => join(root, "packages/cli/bin", name);
const version = (JSON.parse(readFileSync(join(root, "packages/cli/package.json"), "utf8")) as { version: string })
  .version;

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe("the built command lines", () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-build-test-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test("bin/ runs dist/: --version from another directory and through a symlink", async () => {
    for (const name of ["mrg", "mergectl", "cog"]) {
      assert.ok(existsSync(join(root, "packages/cli/dist", `${name}.js`)), `dist/${name}.js is built`);
      symlinkSync(bin(name), join(tmp, name));
      const r = await run(join(tmp, name), ["--version"], "/");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), version);
      assert.equal(r.stderr, "", `${name} ran the build, not the sources`);
    }
  });

  test("commands that run TypeScript load it: compile a .ts model, realize one offline", async () => {
    const c = await run(bin("mrg"), ["compile", join(root, "examples/hello.ts")], tmp);
    assert.equal(c.code, 0, c.stderr);
    assert.equal((JSON.parse(c.stdout) as { name: string }).name, "hello");
    const bad = await run(bin("mrg"), ["compile", join(tmp, "missing.ts")], tmp);
    assert.equal(bad.code, 1);
    const local = await run(
      bin("mrg"),
      ["realize", "--local", join(root, "examples/hello.ts"), "--facility", "phobos"],
      tmp,
    );
    assert.equal(local.code, 0, local.stderr);
    assert.match(local.stdout, /\ba\b.*\n?.*\bb\b/s);
  });

  test("every subcommand of list, new, show and membership has a description; required options say so", async () => {
    for (const group of ["list", "new", "show", "membership", "delete"]) {
      const h = await run(bin("mrg"), [group, "--help"], tmp);
      assert.equal(h.code, 0, h.stderr);
      const commands = h.stdout.split("Commands:\n")[1] ?? "";
      // A command line starts at two spaces; a description follows its usage after two or more spaces.
      const rows = commands.split("\n").filter((l) => /^ {2}\S/.test(l) && !l.startsWith("  help "));
      assert.ok(rows.length >= 2, `${group}: ${h.stdout}`);
      for (const row of rows)
        assert.match(row, /^ {2}\S.*\S {2,}\S/, `mrg ${group}: '${row.trim()}' has no description`);
    }
    const reg = await run(bin("mrg"), ["register", "--help"], tmp);
    assert.match(reg.stdout, /--email <email> +your email address \(required\)/);
    assert.doesNotMatch(reg.stdout, /--name <full name>.*\(required\)/);
  });
});
