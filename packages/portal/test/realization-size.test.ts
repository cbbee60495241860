/**
 * Realizations of any size through the real portal API on sqlite: a 40-node LAN
 * and a 300-node experiment on a generated 400-node facility. Per allocation
 * unit they would need more than the 128 ops a store transaction may carry;
 * two portals on one data directory race for the facility;
 * per realization (header, compressed chunks, epoch) they take a handful.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { phobos } from "@merge/facility-model";
import { checkRealizations } from "@merge/realize";
import { MAX_TXN_OPS, openStore } from "@merge/store";
import type { Facility, Realization } from "@merge/xir";
import { PortalClient } from "../src/client/index.ts";
import { keys } from "../src/objects.ts";
import { type AllocationHeader, Realizer, readAllocations } from "../src/realization.ts";
import { replicated, slowedEngine } from "./harness.ts";
import { generatedFacility, lansXir } from "./size.ts";

const two = replicated();

async function pushed(c: PortalClient, project: string, name: string, xir: unknown): Promise<void> {
  await c.createExperiment(project, { name });
  const rev = await c.push(project, name, JSON.stringify(xir), "xir");
  assert.equal(rev.status, "compiled", JSON.stringify(rev.errors));
}

test("a 40-node LAN and a 300-node experiment realize, are held together, and free everything", async (t) => {
  const gen = generatedFacility(400);
  await two.h.admin.registerFacility(gen);
  const ada = await two.h.user("ada");
  const lan = lansXir("lan", 1, 40);
  const big = lansXir("big", 10, 30);
  await pushed(ada, "ada", "lan", lan);
  await pushed(ada, "ada", "big", big);

  // The 40-node LAN, then two 300-node realizations at once through two portals on one data directory.
  const started = Date.now();
  const r1 = await ada.realize("ada", "lan", { name: "r", accept: true });
  const [r2, r3] = await Promise.all([
    ada.realize("ada", "big", { name: "r" }),
    new PortalClient(two.replica.url, ada.token).realize("ada", "big", { name: "again" }),
  ]);
  t.diagnostic(
    `40 + 2 x 300 nodes realized in ${Date.now() - started} ms: ${r1.state}, ${r2.state}, ${r3.state}; retries ${two.retries()}`,
  );
  assert.equal(r1.state, "accepted", r1.diagnostics.join("\n"));
  const ok = [r2, r3].filter((r) => r.state === "pending");
  assert.ok(ok.length >= 1, [...r2.diagnostics, ...r3.diagnostics].join("\n"));

  // All held at once, each embedding every node, nothing over-committed.
  const lanHeld = (await ada.realization("ada", "lan", "r")).realization as Realization;
  const bigHeld = await Promise.all(
    ok.map(async (r) => (await ada.realization("ada", "big", r.name)).realization as Realization),
  );
  assert.equal(lanHeld.nodes.length, 40);
  for (const r of bigHeld) assert.equal(r.nodes.length, 300);
  assert.deepEqual(
    checkRealizations({ facilities: [phobos(), gen.model as Facility], interconnects: [] }, [
      { experiment: lan, realization: lanHeld },
      ...bigHeld.map((realization) => ({ experiment: big, realization })),
    ]),
    [],
  );

  // The stored table holds exactly these, with more records than per-unit ops could carry.
  const store = two.h.started.store;
  const { table } = await readAllocations(store);
  assert.deepEqual([...table.realizations()].sort(), ["r.lan.ada", ...ok.map((r) => r.id)].sort());
  assert.ok(table.recordsOf("r.lan.ada").length >= 40);
  const bigId = ok[0]!.id;
  assert.ok(
    table.recordsOf(bigId).length * 2 > MAX_TXN_OPS,
    `${table.recordsOf(bigId).length} records: more than a per-unit transaction could carry`,
  );
  for (const id of ["r.lan.ada", bigId]) {
    const header = JSON.parse((await store.get(keys.allocation(id)))!.value) as AllocationHeader;
    assert.equal(header.records, table.recordsOf(id).length);
    assert.equal((await store.range(keys.allocationChunks(id))).length, header.chunks);
  }
  // The resources API sees the same holdings.
  const allocated = await two.h.admin.resources({ allocated: true });
  // Nodes are VMs unless they ask for bare metal: every machine the embeddings name is allocated.
  const machines = new Set([lanHeld, ...bigHeld].flatMap((r) => r.nodes.map((n) => `${n.facility}/${n.resource}`)));
  assert.ok(allocated.length >= machines.size, `${allocated.length} resources allocated, ${machines.size} in use`);

  // Relinquish frees everything: no header, no chunk, nothing allocated.
  await ada.relinquish("ada", "lan", "r");
  await ada.relinquish("ada", "big", "r");
  await ada.relinquish("ada", "big", "again");
  assert.equal((await readAllocations(store)).table.realizations().size, 0);
  assert.equal((await store.range(keys.allocations())).length, 0);
  assert.equal((await store.range(keys.allAllocationChunks())).length, 0);
  assert.equal((await two.h.admin.resources({ allocated: true })).length, 0);

  // And the room is there again.
  assert.equal((await ada.realize("ada", "big", { name: "after" })).state, "pending");
  await ada.relinquish("ada", "big", "after");
});

test("two realizers computing 300-node realizations from one table: one commits, the other re-reads and retries", async (t) => {
  const gen = (await two.h.admin.facilities()).some((f) => f.name === "gen400") ? undefined : generatedFacility(400);
  if (gen !== undefined) await two.h.admin.registerFacility(gen);
  const model = (await two.h.admin.facilityModel("gen400")) as Facility;
  const cy = await two.h.user("cy");
  const big = lansXir("big", 10, 30);
  await pushed(cy, "cy", "big", big);
  // The real engine, held back after computing so both realizers work from the same table.
  const slow = slowedEngine(100);
  const stores = [0, 1].map(() => openStore({ backend: "sqlite", dir: join(two.h.dataDir, "store") }));
  try {
    const realizers = stores.map((s) => new Realizer(s, slow, 60_000, 0));
    const results = await Promise.all(
      realizers.map((r, i) => r.realize({ project: "cy", experiment: "big", name: `x${i}`, revision: 1, user: "cy" })),
    );
    const retries = realizers.reduce((n, r) => n + r.retries, 0);
    t.diagnostic(`${results.map((r) => r.state).join(", ")}; retries ${retries}`);
    assert.ok(retries >= 1, "the second commit found the epoch moved and realized again");
    const ok = results.filter((r) => r.state !== "failed");
    assert.ok(ok.length >= 1);
    assert.deepEqual(
      checkRealizations(
        { facilities: [phobos(), model], interconnects: [] },
        ok.map((r) => ({ experiment: big, realization: r.realization as Realization })),
      ),
      [],
    );
    assert.deepEqual(
      [...(await readAllocations(stores[0]!)).table.realizations()].sort(),
      ok.map((r) => `${r.name}.big.cy`).sort(),
    );
    for (const r of results) await realizers[1]!.release("cy", "big", r.name);
    assert.equal((await stores[0]!.range(keys.allocations())).length, 0);
    assert.equal((await stores[0]!.range(keys.allAllocationChunks())).length, 0);
  } finally {
    for (const s of stores) await s.close();
  }
});
