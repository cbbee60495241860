/**
 * The compile pool's threads take their confined runs with them: a model that
 * never ends, cut short by the pool (its thread terminated), leaves no
 * process and no scratch directory behind.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { test } from "node:test";
import { availableConfinement, SCRATCH_PREFIX } from "@merge/model";
import { CompilePool } from "../src/compile-pool.ts";

/** Pids whose command line mentions `marker`. */
function running(marker: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker)) out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

test("a terminated compile thread leaves no confined process and no scratch behind", {
  skip: availableConfinement() === "none" && "no confinement on this host",
}, async () => {
  const marker = `sleeper-${process.pid}-${Date.now()}.ts`;
  const pool = new CompilePool({ threads: 1, timeoutMs: 600_000 });
  const compiling = pool.compile("u", {
    source: "await new Promise(() => setInterval(() => {}, 1000));\nexport {};\n",
    lang: "ts",
    filename: marker,
  });
  assert.ok(await until(() => running(marker).length > 0, 60_000), "the model started");
  await pool.close();
  const c = await compiling;
  assert.notEqual(c.errors.length, 0);
  assert.ok(await until(() => running(marker).length === 0, 10_000), `still running: ${running(marker)}`);
  const left = readdirSync(tmpdir()).filter((d) => d.startsWith(`${SCRATCH_PREFIX}${process.pid}-`));
  assert.deepEqual(left, []);
});
