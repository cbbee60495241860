/**
 * A 10,000-node realization stored on a real etcd (default limits: 1.5 MiB per
 * request, 128 ops per transaction) and read back whole: the realize
 * transaction carries the record's embedding and the allocation table
 * compressed in chunks, and readRealization puts them together again.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateFacility } from "@merge/facility-model";
import { openStore } from "@merge/store";
import { startEtcd } from "@merge/store/testing/etcd";
import { realizeEngine } from "../src/engine.ts";
import { putFacility } from "../src/facility-record.ts";
import { keys } from "../src/objects.ts";
import { type AllocationHeader, Realizer } from "../src/realization.ts";
import { readRealization } from "../src/realization-record.ts";
import { putRevisionBody } from "../src/revision-body.ts";
import { activeFacility, lansXir } from "./size.ts";

test("a 10,000-node realization is stored on etcd and read back whole", { timeout: 600_000 }, async () => {
  const etcd = await startEtcd();
  const store = openStore(etcd.url);
  try {
    const model = generateFacility({ nodes: 12_000, name: "gen" });
    await store.txn({ compare: [], success: putFacility(activeFacility(model)) });
    await store.put(keys.facilityEpoch(), "{}");
    const xp = lansXir("big", 250, 40, { backbone: false });
    await store.txn({ compare: [], success: putRevisionBody({ source: "", xir: xp })("p", "big", 1) });
    const realizer = new Realizer(store, realizeEngine, 60_000, 0);
    const r = await realizer.realize({
      project: "p",
      experiment: "big",
      name: "r",
      revision: 1,
      user: "u",
      accept: true,
    });
    assert.equal(r.state, "accepted", r.diagnostics.join("\n"));
    const back = await readRealization(store, "p", "big", "r");
    assert.ok(back?.record.realization);
    assert.equal(back.record.realization.nodes.length, 10_000);
    assert.deepEqual(back.record.realization, r.realization);
    const header = JSON.parse((await store.get(keys.allocation("r.big.p")))!.value) as AllocationHeader;
    assert.ok(header.records >= 10_000);
    assert.ok(await realizer.release("p", "big", "r"));
    assert.deepEqual(await store.range(keys.realizationChunks("p", "big", "r")), []);
  } finally {
    await store.close();
    await etcd.stop();
  }
});
