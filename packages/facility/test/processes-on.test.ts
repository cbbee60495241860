// processesOn: what `cog host sweep` asks before it removes a data directory's
// materializations. A process run with `--data-dir DIR` counts (absolute, `=`,
// or relative to its own working directory); one naming DIR as a plain argument
// (a node's init) does not, nor does another directory.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, test } from "node:test";
import { processesOn } from "../src/linux/processes.ts";

const dir = mkdtempSync(join(tmpdir(), "mrg-on-"));
const started: ChildProcess[] = [];
after(() => {
  for (const c of started) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** A node process that waits, run with `args` after its script (they name, not use, the directory). */
function waiting(args: string[], cwd?: string): ChildProcess {
  const c = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60_000)", "--", ...args], {
    stdio: "ignore",
    ...(cwd ? { cwd } : {}),
  });
  started.push(c);
  return c;
}

test("the processes run with --data-dir on a directory, and only those", async () => {
  const flag = waiting(["--data-dir", dir]);
  const equals = waiting([`--data-dir=${basename(dir)}`], dirname(dir));
  waiting([join(dir, "bin", "init"), dir]); // a node's init: the directory as a plain argument
  waiting(["--data-dir", `${dir}-other`]);
  // Their command lines are there once they run.
  for (let i = 0; i < 100 && processesOn(dir).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(
    processesOn(dir)
      .map((p) => p.pid)
      .sort(),
    [flag.pid, equals.pid].sort(),
  );
  assert.match(processesOn(dir)[0]!.command, /--data-dir/);
});
