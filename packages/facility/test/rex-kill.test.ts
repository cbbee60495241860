// SIGKILL a rex worker process mid-materialization, start another: the
// materialization completes, and no action runs to completion twice.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openStore } from "@merge/store";
import { Driver } from "../src/driver.ts";
import { keys } from "../src/task.ts";
import { statusIs, until } from "./fixture.ts";

const tmp = mkdtempSync(join(tmpdir(), "mrg-rexkill-"));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});

const daemon = new URL("../src/daemon.ts", import.meta.url).pathname;
const journalFile = join(tmp, "journal.jsonl");
const storeUrl = `sqlite://${join(tmp, "store")}`;

function worker(id: string): ChildProcess {
  const c = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      daemon,
      "rex",
      "--store",
      storeUrl,
      "--id",
      id,
      "--concurrency",
      "6",
      "--lease-ttl",
      "1",
      "--sim-durations",
      "150,30,10,20",
      "--journal",
      journalFile,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let err = "";
  c.stderr?.on("data", (d) => (err += d));
  c.on("exit", (code) => {
    if (code && code !== 0) console.error(`worker ${id} exited ${code}: ${err}`);
  });
  children.push(c);
  return c;
}

interface Line {
  type: string;
  key?: string;
  worker: string;
  attempts?: number;
}
const lines = (): Line[] =>
  existsSync(journalFile)
    ? readFileSync(journalFile, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Line)
    : [];

test("a SIGKILLed worker's claims expire and another worker finishes the materialization", async () => {
  const store = openStore(storeUrl);
  try {
    const driver = new Driver(store);
    const s = synthetic(30, { mzid: "kill.exp.proj", lanSize: 5 });
    const dag = await driver.materialize("kill.exp.proj", fragmentsFor(s.realization, s.experiment, s.facility));

    const a = worker("rex-a");
    // Kill it while node setups are in flight: some complete, some started and unfinished.
    await until(
      "worker a mid-way through node setup",
      async () => {
        if (a.exitCode !== null) throw new Error(`worker a exited early with status ${a.exitCode}`);
        const l = lines().filter((x) => x.worker === "rex-a");
        const nodeDone = l.filter((x) => x.type === "complete" && x.key?.includes("/nodes/")).length;
        return nodeDone >= 6 ? true : undefined;
      },
      60_000,
    );
    a.kill("SIGKILL");
    await new Promise((r) => a.once("exit", r));
    const byA = lines();
    const inFlight = byA
      .filter((x) => x.type === "start")
      .map((x) => x.key!)
      .filter((k) => !byA.some((x) => x.type === "complete" && x.key === k));
    assert.ok(inFlight.length > 0, "worker a was killed with actions in flight");

    worker("rex-b");
    const done = await statusIs(driver, "kill.exp.proj", "active", 60_000);
    assert.equal(done.summary.complete, dag.actions.length);

    const all = lines();
    const completes = all.filter((x) => x.type === "complete").map((x) => x.key!);
    assert.equal(new Set(completes).size, completes.length, "no action completed twice");
    // A's outcome can commit with the kill landing before its journal line: such an action must be
    // complete by a in the store, and is not run again. Every other completion is journaled once.
    const journaled = new Set(completes);
    const unjournaled = done.actions.filter((a) => !journaled.has(keys.action(a)));
    for (const a of unjournaled) {
      assert.equal(a.completedBy, "rex-a", `${keys.action(a)} is complete by ${a.completedBy} with no journal line`);
      const again = all.find((x) => x.type === "start" && x.worker === "rex-b" && x.key === keys.action(a));
      assert.ok(!again, `${keys.action(a)} was completed by a and started again by b`);
    }
    assert.equal(completes.length + unjournaled.length, dag.actions.length, "every action completed exactly once");
    for (const [i, x] of all.entries()) {
      if (x.type !== "start") continue;
      const before = all.slice(0, i).some((y) => y.type === "complete" && y.key === x.key);
      assert.ok(!before, `${x.key} was started again by ${x.worker} after it had completed`);
    }
    // The actions a was killed in the middle of were retried by b, counted as second attempts.
    const retried = inFlight.filter((k) => !unjournaled.some((a) => keys.action(a) === k));
    assert.ok(retried.length > 0, "b retried actions a was killed in the middle of");
    for (const k of inFlight) {
      const a2 = done.actions.find((x) => keys.action(x) === k);
      if (unjournaled.includes(a2!)) continue; // finished by a after all (see above)
      assert.equal(a2?.completedBy, "rex-b");
      assert.ok((a2?.attempts ?? 0) >= 2, `${k} shows ${a2?.attempts} attempts`);
    }
  } finally {
    await store.close();
  }
});
