// Outcomes whose call failed with its fate unknown (a leader election: the
// write may have committed, its answer lost): the batch is read back once the
// store answers, then recorded whole or asked again whole, not one
// transaction per action (unless the store refuses it whole three times);
// every action completes exactly once.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openMemoryStore, type Store, type Txn } from "@merge/store";
import { Driver } from "../src/driver.ts";
import { startRex, statusIs } from "./fixture.ts";

const stores: Store[] = [];
after(async () => {
  for (const s of stores) await s.close();
});

/** The actions a transaction writes complete (an outcome batch: rex's `record`). */
const outcomes = (t: Txn) =>
  t.success.flatMap((op) =>
    op.op === "put" && op.key.includes("/action/") && op.value.includes('"complete"') ? [op.key] : [],
  );

/**
 * A store whose first outcome batch of at least `min` actions fails: `committed` or not, its answer is
 * an error; then the next `unanswered` transactions fail too (the store away during an election).
 * Of each outcome transaction that follows, how many of the failed batch's actions it writes.
 */
function failing(store: Store, opts: { committed: boolean; min: number; unanswered: number; always?: boolean }) {
  const seen = { failed: new Set<string>(), after: [] as number[] };
  let away = 0;
  const txn = store.txn.bind(store);
  const wrapped = Object.assign(Object.create(store) as Store, {
    txn: async (t: Txn) => {
      if (away > 0) {
        away--;
        throw new Error("request timed out (test: no leader)");
      }
      const keys = outcomes(t);
      if (!seen.failed.size && keys.length >= opts.min) {
        seen.failed = new Set(keys);
        away = opts.unanswered;
        if (opts.committed) await txn(t);
        throw new Error("request timed out (test: the answer was lost)");
      }
      const again = keys.filter((k) => seen.failed.has(k)).length;
      if (again) seen.after.push(again);
      if (opts.always && again > 1) throw new Error("request is too large (test: refused whole, every time)");
      return txn(t);
    },
  });
  return { store: wrapped, seen };
}

/**
 * A 24-node materialization by one worker on a `failing` store; asserts a batch of 8 or more failed and
 * every action completed exactly once; resolves to the failed batch's size and what followed it.
 */
async function materializeThrough(mzid: string, opts: Parameters<typeof failing>[1]) {
  const base = openMemoryStore();
  stores.push(base);
  const { store, seen } = failing(base, opts);
  const s = synthetic(24, { mzid, lanSize: 4 });
  const driver = new Driver(base);
  const { rex, journal } = await startRex(store, { durations: { imaging: 0, power: 0, network: 0, infrapod: 0 } });
  const dag = await driver.materialize(mzid, fragmentsFor(s.realization, s.experiment, s.facility));
  await statusIs(driver, mzid, "active", 30_000);
  await rex.stop();
  const n = seen.failed.size;
  assert.ok(n >= 8, `a batch of ${n} outcomes failed (expected one of 8 or more)`);
  const completes = journal.of("complete").map((e) => ("key" in e ? e.key : ""));
  assert.equal(completes.length, dag.actions.length);
  assert.equal(new Set(completes).size, completes.length, "no action completed twice");
  return { n, after: seen.after, lost: journal.of("lost").length };
}

for (const committed of [true, false]) {
  test(`an outcome batch whose call failed ${committed ? "after" : "before"} it committed is settled whole`, async () => {
    const { n, after, lost } = await materializeThrough(`unsure${committed ? "c" : "n"}.exp.proj`, {
      committed,
      min: 8,
      unanswered: 3,
    });
    // Recorded as it was when it had committed (nothing more written), asked again whole when it had not.
    assert.deepEqual(after, committed ? [] : [n], "the failed batch's actions written again, per transaction");
    assert.equal(lost, 0);
  });
}

test("an outcome batch the store refuses whole every time is recorded one action at a time after three tries", async () => {
  const { n, after } = await materializeThrough("refused.exp.proj", {
    committed: false,
    min: 8,
    unanswered: 0,
    always: true,
  });
  assert.deepEqual(after, [n, n, ...Array(n).fill(1)], "two more whole tries, then one transaction each");
});
