/**
 * Realizations of any size through the real portal API on sqlite: a 40-node LAN
 * and a 300-node experiment on a generated 400-node facility. Per allocation
 * unit they would need more than the 128 ops a store transaction may carry;
 * per realization (header, compressed chunks, epoch) they take a handful.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { phobos } from "@merge/facility-model";
import { checkRealizations } from "@merge/realize";
import { MAX_TXN_OPS } from "@merge/store";
import type { Facility, Realization } from "@merge/xir";
import type { PortalClient } from "../src/client/index.ts";
import { keys } from "../src/objects.ts";
import { type AllocationHeader, readAllocations } from "../src/realization.ts";
import { type Harness, startHarness } from "./harness.ts";
import { generatedFacility, lansXir } from "./size.ts";

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.stop();
});

async function pushed(c: PortalClient, project: string, name: string, xir: unknown): Promise<void> {
  await c.createExperiment(project, { name });
  const rev = await c.push(project, name, JSON.stringify(xir), "xir");
  assert.equal(rev.status, "compiled", JSON.stringify(rev.errors));
}

test("a 40-node LAN and a 300-node experiment realize, are held together, and free everything", async (t) => {
  const gen = generatedFacility(400);
  await h.admin.registerFacility(gen);
  const ada = await h.user("ada");
  const lan = lansXir("lan", 1, 40);
  const big = lansXir("big", 10, 30);
  await pushed(ada, "ada", "lan", lan);
  await pushed(ada, "ada", "big", big);

  const started = Date.now();
  const [r1, r2] = [
    await ada.realize("ada", "lan", { name: "r", accept: true }),
    await ada.realize("ada", "big", { name: "r" }),
  ];
  t.diagnostic(`40 + 300 nodes realized in ${Date.now() - started} ms`);
  assert.equal(r1.state, "accepted", r1.diagnostics.join("\n"));
  assert.equal(r2.state, "pending", r2.diagnostics.join("\n"));

  // Both held at once, each embedding every node, nothing over-committed.
  const held = [await ada.realization("ada", "lan", "r"), await ada.realization("ada", "big", "r")];
  const realizations = held.map((r) => r.realization as Realization);
  assert.equal(realizations[0]!.nodes.length, 40);
  assert.equal(realizations[1]!.nodes.length, 300);
  assert.deepEqual(
    checkRealizations({ facilities: [phobos(), gen.model as Facility], interconnects: [] }, [
      { experiment: lan, realization: realizations[0]! },
      { experiment: big, realization: realizations[1]! },
    ]),
    [],
  );

  // The stored table holds exactly these two, with more records than per-unit ops could carry.
  const store = h.started.store;
  const { table } = await readAllocations(store);
  assert.deepEqual([...table.realizations()].sort(), ["r.big.ada", "r.lan.ada"]);
  assert.ok(table.recordsOf("r.lan.ada").length >= 40);
  assert.ok(
    table.recordsOf("r.big.ada").length * 2 > MAX_TXN_OPS,
    `${table.recordsOf("r.big.ada").length} records: more than a per-unit transaction could carry`,
  );
  for (const id of ["r.lan.ada", "r.big.ada"]) {
    const header = JSON.parse((await store.get(keys.allocation(id)))!.value) as AllocationHeader;
    assert.equal(header.records, table.recordsOf(id).length);
    assert.equal((await store.range(keys.allocationChunks(id))).length, header.chunks);
  }
  // The resources API sees the same holdings.
  const allocated = await h.admin.resources({ allocated: true });
  assert.ok(allocated.length >= 300, `${allocated.length} resources allocated`);

  // The same 300 nodes again do not fit beside the first (400 nodes, 40 + 300 held): refused, not double-allocated.
  const again = await ada.realize("ada", "big", { name: "again" });
  if (again.state !== "failed") {
    const both = await ada.realization("ada", "big", "again");
    assert.deepEqual(
      checkRealizations({ facilities: [phobos(), gen.model as Facility], interconnects: [] }, [
        { experiment: lan, realization: realizations[0]! },
        { experiment: big, realization: realizations[1]! },
        { experiment: big, realization: both.realization as Realization },
      ]),
      [],
    );
  }
  t.diagnostic(`a second 300-node realization beside them: ${again.state}`);

  // Relinquish frees everything: no header, no chunk, nothing allocated.
  await ada.relinquish("ada", "lan", "r");
  await ada.relinquish("ada", "big", "r");
  await ada.relinquish("ada", "big", "again");
  assert.equal((await readAllocations(store)).table.realizations().size, 0);
  assert.equal((await store.range(keys.allocations())).length, 0);
  assert.equal((await store.range(keys.allAllocationChunks())).length, 0);
  assert.equal((await h.admin.resources({ allocated: true })).length, 0);

  // And the room is there again.
  assert.equal((await ada.realize("ada", "big", { name: "after" })).state, "pending");
  await ada.relinquish("ada", "big", "after");
});
