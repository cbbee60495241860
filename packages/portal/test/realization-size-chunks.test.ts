/**
 * The allocation layout at the store level: records too big for one value are
 * compressed and split into chunks written in the reserving transaction, read
 * back whole, and two reservations computed from one table cannot both commit.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import type { AllocationRecord } from "@merge/realize";
import { MAX_TXN_OPS, openMemoryStore } from "@merge/store";
import { keys } from "../src/objects.ts";
import {
  ALLOCATION_CHUNK_CHARS,
  type AllocationCache,
  decodeAllocation,
  encodeAllocation,
  readAllocations,
  reserveAllocationTxn,
} from "../src/realization.ts";

/** Node records on random (incompressible) resource names, so the encoding needs several chunks. */
function records(realization: string, n: number): AllocationRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: "node",
    realization,
    facility: "f",
    resource: randomBytes(12).toString("hex"),
    node: `n${i}`,
    mode: "physical",
    cores: 0,
    memory: 0,
    disk: 0,
  }));
}

test("large allocations are chunked, read back whole, and reserved exclusively", async () => {
  const a = records("a.x.p", 40_000);
  const { header, chunks } = encodeAllocation("a.x.p", a);
  assert.ok(chunks.length > 1, `${chunks.length} chunks`);
  for (const c of chunks) assert.ok(c.length <= ALLOCATION_CHUNK_CHARS);
  assert.deepEqual(decodeAllocation(header, chunks), a);
  assert.throws(() => decodeAllocation(header, chunks.slice(1)), /chunks/);

  const store = openMemoryStore();
  try {
    const epoch = await store.get(keys.allocationEpoch());
    const ta = reserveAllocationTxn("a.x.p", a, epoch);
    const tb = reserveAllocationTxn("b.x.p", records("b.x.p", 10), epoch);
    assert.ok(ta.ops.length <= MAX_TXN_OPS);
    assert.equal((await store.txn({ compare: ta.compare, success: ta.ops })).succeeded, true);
    // Computed from the same table: the epoch moved, so it must re-read first.
    assert.equal((await store.txn({ compare: tb.compare, success: tb.ops })).succeeded, false);

    const cache: AllocationCache = new Map();
    const read = await readAllocations(store, cache);
    assert.deepEqual(read.table.recordsOf("a.x.p"), a);
    assert.equal(cache.size, 1);
    const again = reserveAllocationTxn("b.x.p", records("b.x.p", 10), read.epoch);
    assert.equal((await store.txn({ compare: again.compare, success: again.ops })).succeeded, true);
    assert.deepEqual([...(await readAllocations(store, cache)).table.realizations()].sort(), ["a.x.p", "b.x.p"]);
    // The same realization cannot be reserved twice, even from a fresh table.
    const twice = reserveAllocationTxn("a.x.p", [], (await readAllocations(store)).epoch);
    assert.equal((await store.txn({ compare: twice.compare, success: twice.ops })).succeeded, false);

    // A chunk missing while its header is unchanged is damage, reported, never read as an empty holding.
    await store.delete(keys.allocationChunk("a.x.p", 0));
    await assert.rejects(readAllocations(store), /a\.x\.p: \d+ of \d+ chunks stored/);

    // Freed: header and chunks go together; the cache forgets it.
    await store.txn({
      compare: [],
      success: [
        { op: "delete", key: keys.allocation("a.x.p") },
        { op: "deletePrefix", prefix: keys.allocationChunks("a.x.p") },
      ],
    });
    assert.deepEqual([...(await readAllocations(store, cache)).table.realizations()], ["b.x.p"]);
    assert.equal(cache.has(keys.allocation("a.x.p")), false);
  } finally {
    await store.close();
  }
});
