/**
 * The allocation table on a real store: reservations as compare-and-swap
 * transactions over per-unit keys. Two realizations computed from the same
 * snapshot race; exactly one commits, the other re-reads and realizes again.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  checkRealizations,
  freeByEpochTxn,
  freeTxn,
  prepareInternet,
  realize,
  reserveByEpochTxn,
  reserveTxn,
  tableFromRealizations,
  tableFromStore,
} from "@merge/realize";
import { openMemoryStore } from "@merge/store";
import { experiment, facility, node, nodes } from "./fixtures.ts";

const PREFIX = "/alloc/";

test("concurrent reservations through store transactions never double-allocate", async () => {
  const net = { facilities: [facility({ name: "f", racks: [nodes("n", 3)] })], interconnects: [] };
  const ix = prepareInternet(net);
  const store = openMemoryStore();
  try {
    const x = experiment("pair", [node("a"), node("b")], [{ ends: ["a", "b"] }]);
    const snapshot = tableFromStore(await store.range(PREFIX), PREFIX);
    const r1 = realize(x, ix, snapshot, { id: "r1.pair.p" });
    const r2 = realize(x, ix, snapshot, { id: "r2.pair.p" });
    assert.ok(r1.ok && r2.ok);
    // Same snapshot, same choice: they want the same resources and tags.
    const [t1, t2] = await Promise.all([
      store.txn(reserveTxn(snapshot, r1.records, PREFIX)),
      store.txn(reserveTxn(snapshot, r2.records, PREFIX)),
    ]);
    assert.deepEqual([t1.succeeded, t2.succeeded].sort(), [false, true]);
    // The loser re-reads and realizes around what the winner holds.
    const fresh = tableFromStore(await store.range(PREFIX), PREFIX);
    const again = realize(x, ix, fresh, { id: "r2.pair.p" });
    assert.equal(again.ok, false, "3 nodes cannot hold two pairs");
    const one = realize(experiment("one", [node("z")], []), ix, fresh, { id: "r3.one.p" });
    assert.ok(one.ok);
    assert.equal((await store.txn(reserveTxn(fresh, one.records, PREFIX))).succeeded, true);
    // Everything held at once passes the checker.
    const held = tableFromStore(await store.range(PREFIX), PREFIX);
    const winner = t1.succeeded ? r1 : r2;
    assert.equal(held.realizations().size, 2);
    assert.deepEqual(
      checkRealizations(net, [
        { experiment: x, realization: winner.realization },
        { experiment: experiment("one", [node("z")], []), realization: one.realization },
      ]),
      [],
    );
    // Free is a transaction too; afterwards the pair fits again.
    const winnerId = winner.realization.id;
    assert.equal((await store.txn(freeTxn(held, winnerId, PREFIX))).succeeded, true);
    const after = tableFromStore(await store.range(PREFIX), PREFIX);
    assert.equal(after.recordsOf(winnerId).length, 0);
    assert.ok(realize(x, ix, after, { id: "r4.pair.p" }).ok);
    // A free computed from a stale table fails instead of clobbering newer records.
    assert.equal((await store.txn(freeTxn(held, "r3.one.p", PREFIX))).succeeded, false);
  } finally {
    await store.close();
  }
});

test("per-realization keys under one epoch: three ops whatever the size, still exclusive", async () => {
  const net = { facilities: [facility({ name: "f", racks: [nodes("n", 100)] })], interconnects: [] };
  const ix = prepareInternet(net);
  const store = openMemoryStore();
  const EPOCH = "/epoch/allocations";
  const REALIZATIONS = "/alloc-by-realization/";
  try {
    const big = experiment(
      "big",
      Array.from({ length: 80 }, (_, i) => node(`v${i}`)),
      Array.from({ length: 79 }, (_, i) => ({ ends: [`v${i}`, `v${i + 1}`] })),
    );
    const read = async () => ({
      table: tableFromRealizations(await store.range(REALIZATIONS), REALIZATIONS),
      epoch: { key: EPOCH, revision: (await store.get(EPOCH))?.modRevision ?? 0 },
    });
    const s = await read();
    const r1 = realize(big, ix, s.table, { id: "r1.big.p" });
    const r2 = realize(big, ix, s.table, { id: "r2.big.p" });
    assert.ok(r1.ok && r2.ok);
    assert.ok(r1.records.length > 128, "more records than one per-unit transaction could carry");
    const t1 = await store.txn(reserveByEpochTxn("r1.big.p", r1.records, s.epoch, REALIZATIONS));
    const t2 = await store.txn(reserveByEpochTxn("r2.big.p", r2.records, s.epoch, REALIZATIONS));
    assert.deepEqual([t1.succeeded, t2.succeeded], [true, false]);
    const s2 = await read();
    assert.deepEqual([...s2.table.realizations()], ["r1.big.p"]);
    assert.equal(
      realize(big, ix, s2.table, { id: "r2.big.p" }).ok,
      false,
      "100 nodes cannot hold two 80-node experiments",
    );
    assert.equal((await store.txn(freeByEpochTxn("r1.big.p", s2.epoch, REALIZATIONS))).succeeded, true);
    const s3 = await read();
    assert.equal(s3.table.realizations().size, 0);
    const r3 = realize(big, ix, s3.table, { id: "r3.big.p" });
    assert.ok(r3.ok);
    assert.equal((await store.txn(reserveByEpochTxn("r3.big.p", r3.records, s3.epoch, REALIZATIONS))).succeeded, true);
  } finally {
    await store.close();
  }
});
