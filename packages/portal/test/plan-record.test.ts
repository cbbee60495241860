import assert from "node:assert/strict";
import { test } from "node:test";
import { planMaterialization, synthetic } from "@merge/materialize";
import { openMemoryStore } from "@merge/store";
import { deletePlan, planKeys, putPlan, readPlan } from "../src/materialize/plan-record.ts";

const planOf = (n: number) => {
  const s = synthetic(n, { mzid: "r.e.p" });
  return planMaterialization(s.realization, s.experiment, [s.facility]);
};

test("a small plan is one value; a big one is chunked; both read back as written and delete whole", async () => {
  const store = openMemoryStore();
  try {
    for (const [name, n, chunked] of [
      ["small", 5, false],
      ["big", 1000, true],
    ] as const) {
      const plan = planOf(n);
      await store.txn({ compare: [], success: putPlan("p", "e", name, plan) });
      const chunks = await store.range(planKeys.chunks("p", "e", name));
      assert.equal(chunks.length > 0, chunked, `${name}: ${chunks.length} chunks`);
      assert.deepEqual(await readPlan(store, "p", "e", name), plan);
      await store.txn({ compare: [], success: deletePlan("p", "e", name) });
      assert.equal(await readPlan(store, "p", "e", name), undefined);
      assert.equal((await store.range(planKeys.chunks("p", "e", name))).length, 0);
    }
  } finally {
    await store.close();
  }
});
