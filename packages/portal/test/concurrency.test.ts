import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { phobos } from "@merge/facility-model";
import { checkRealizations } from "@merge/realize";
import { openStore } from "@merge/store";
import type { Experiment, Realization } from "@merge/xir";
import { PortalClient } from "../src/client/index.ts";
import { keys } from "../src/objects.ts";
import { Realizer, readAllocations } from "../src/realization.ts";
import { chainXir, replicated, slowedEngine } from "./harness.ts";

const two = replicated();

test("50 concurrent realize calls on a small facility never double-allocate", async (t) => {
  const lee = await two.h.user("lee");
  const leeOnReplica = new PortalClient(two.replica.url, lee.token);
  await lee.createExperiment("lee", { name: "pair" });
  // Two nodes each wanting 4 cores and 8 GiB: phobos cannot hold 50 of these, so realizations compete and some fail.
  const xir = JSON.parse(chainXir("pair", 2)) as Experiment;
  for (const n of xir.nodes) {
    n.constraints = [
      { prop: "proc.cores", op: ">=", value: 4 },
      { prop: "memory.capacity", op: ">=", value: 8 * 1024 ** 3 },
    ];
  }
  const rev = await lee.push("lee", "pair", JSON.stringify(xir), "xir");
  assert.equal(rev.status, "compiled", JSON.stringify(rev.errors));

  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? lee : leeOnReplica).realize("lee", "pair", { name: `r${i}` })),
  );
  const ok = results.filter((r) => r.state === "pending");
  const failed = results.filter((r) => r.state === "failed");
  assert.equal(ok.length + failed.length, 50);
  assert.ok(ok.length >= 1, "some realizations succeed");
  assert.ok(failed.length >= 1, "the facility is too small for all of them");
  for (const f of failed) assert.ok(f.diagnostics.length > 0);
  t.diagnostic(`${ok.length} realized, ${failed.length} failed, CAS retries: ${two.retries()}`);

  // An independent checker over everything held: nothing over-committed, every embedding valid.
  const held = await Promise.all(ok.map((r) => lee.realization("lee", "pair", r.name)));
  const violations = checkRealizations(
    { facilities: [phobos()], interconnects: [] },
    held.map((r) => ({ experiment: xir, realization: r.realization as Realization })),
  );
  assert.deepEqual(violations, []);

  // The stored allocation table holds exactly the successful realizations.
  const store = two.h.started.store;
  const table = (await readAllocations(store)).table;
  assert.deepEqual([...table.realizations()].sort(), ok.map((r) => r.id).sort());

  // Releasing everything empties the table.
  await Promise.all(results.map((r) => lee.relinquish("lee", "pair", r.name)));
  assert.equal((await store.range(keys.allocations())).length, 0);
  assert.equal((await store.range(keys.allAllocationChunks())).length, 0);
});

test("two realizers racing on one store retry on conflict and never double-allocate", async (t) => {
  const mo = await two.h.user("mo");
  await mo.createExperiment("mo", { name: "vm" });
  const xir = JSON.parse(chainXir("vm", 2)) as Experiment;
  for (const n of xir.nodes) n.constraints = [{ prop: "proc.cores", op: ">=", value: 4 }];
  await mo.push("mo", "vm", JSON.stringify(xir), "xir");
  // The real engine, slowed down so that realizations overlap between reading the table and committing.
  const slow = slowedEngine(5);
  const stores = [
    openStore({ backend: "sqlite", dir: join(two.h.dataDir, "store") }),
    openStore({ backend: "sqlite", dir: join(two.h.dataDir, "store") }),
  ];
  try {
    const realizers = stores.map((s) => new Realizer(s, slow, 60_000, 0));
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (realizers[i % 2] as Realizer).realize({
          project: "mo",
          experiment: "vm",
          name: `x${i}`,
          revision: 1,
          user: "mo",
        }),
      ),
    );
    const retries = realizers.reduce((s, r) => s + r.retries, 0);
    const ok = results.filter((r) => r.state !== "failed");
    t.diagnostic(`${ok.length} realized, ${results.length - ok.length} failed, CAS retries: ${retries}`);
    assert.ok(retries > 0, "the realizers did race");
    assert.ok(ok.length >= 1);
    const violations = checkRealizations(
      { facilities: [phobos()], interconnects: [] },
      ok.map((r) => ({ experiment: xir, realization: r.realization as Realization })),
    );
    assert.deepEqual(violations, []);
    const table = (await readAllocations(stores[0] as (typeof stores)[0])).table;
    assert.deepEqual([...table.realizations()].sort(), ok.map((r) => `${r.name}.vm.mo`).sort());
    await Promise.all(results.map((r) => (realizers[0] as Realizer).release("mo", "vm", r.name)));
    assert.equal((await (stores[0] as (typeof stores)[0]).range(keys.allocations())).length, 0);
    assert.equal((await (stores[0] as (typeof stores)[0]).range(keys.allAllocationChunks())).length, 0);
  } finally {
    for (const s of stores) await s.close();
  }
});
