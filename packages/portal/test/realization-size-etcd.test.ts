/**
 * A 220-node realization through the real portal API on etcd, with two portal
 * replicas: etcd refuses transactions of more than 128 ops, so this only works
 * because a reservation is a handful of ops whatever its size.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { phobos } from "@merge/facility-model";
import { checkRealizations } from "@merge/realize";
import { MAX_TXN_OPS } from "@merge/store";
import type { Facility, Realization } from "@merge/xir";
import { PortalClient } from "../src/client/index.ts";
import type { Started } from "../src/main.ts";
import { keys } from "../src/objects.ts";
import { readAllocations } from "../src/realization.ts";
import { etcdReplicas } from "./harness.ts";
import { generatedFacility, lansXir } from "./size.ts";

const replicas = etcdReplicas("merge-portal-size-etcd-");

test("a 220-node realization on etcd: realized, held exclusively across replicas, relinquished to nothing", async (t) => {
  const [a, b] = replicas as [Started, Started];
  const admin = new PortalClient(
    a.url,
    (await new PortalClient(a.url).login("admin", a.admin.password as string)).token,
  );
  const gen = generatedFacility(250);
  await admin.registerFacility(gen);
  const anon = new PortalClient(a.url);
  await anon.register({ name: "bo", email: "bo@example.org", password: "bo-password" });
  await admin.setUserState("bo", "active");
  const token = (await anon.login("bo", "bo-password")).token;
  const onA = new PortalClient(a.url, token);
  const onB = new PortalClient(b.url, token);
  const xir = lansXir("big", 11, 20);
  await onA.createExperiment("bo", { name: "big" });
  assert.equal((await onA.push("bo", "big", JSON.stringify(xir), "xir")).status, "compiled");

  // Two replicas realize the same 220 nodes at once: the epoch lets one commit at a time; both answers are valid together.
  const started = Date.now();
  const [r1, r2] = await Promise.all([
    onA.realize("bo", "big", { name: "one" }),
    onB.realize("bo", "big", { name: "two" }),
  ]);
  t.diagnostic(
    `two 220-node realizations on etcd in ${Date.now() - started} ms: ${r1.state}, ${r2.state}; retries ${a.portal.ctx.realizer.retries + b.portal.ctx.realizer.retries}`,
  );
  assert.equal(
    r1.state === "pending" || r2.state === "pending",
    true,
    [...r1.diagnostics, ...r2.diagnostics].join("\n"),
  );
  const ok = [r1, r2].filter((r) => r.state === "pending");
  const held = await Promise.all(ok.map((r) => onB.realization("bo", "big", r.name)));
  for (const r of held) assert.equal((r.realization as Realization).nodes.length, 220);
  assert.deepEqual(
    checkRealizations(
      { facilities: [phobos(), gen.model as Facility], interconnects: [] },
      held.map((r) => ({ experiment: xir, realization: r.realization as Realization })),
    ),
    [],
  );

  const { table } = await readAllocations(b.store);
  assert.deepEqual([...table.realizations()].sort(), ok.map((r) => r.id).sort());
  const records = table.recordsOf(ok[0]!.id).length;
  assert.ok(records * 2 > MAX_TXN_OPS, `${records} records: more than a per-unit transaction could carry`);

  await Promise.all([onA.relinquish("bo", "big", "one"), onB.relinquish("bo", "big", "two")]);
  assert.equal((await readAllocations(a.store)).table.realizations().size, 0);
  assert.equal((await a.store.range(keys.allocations())).length, 0);
  assert.equal((await a.store.range(keys.allAllocationChunks())).length, 0);
  assert.equal((await admin.resources({ allocated: true })).length, 0);
});
