import assert from "node:assert/strict";
import { test } from "node:test";
import { phobos } from "@merge/facility-model";
import { checkRealizations } from "@merge/realize";
import type { Experiment, Realization } from "@merge/xir";
import { PortalClient } from "../src/client/index.ts";
import type { Started } from "../src/main.ts";
import { chainXir, etcdReplicas } from "./harness.ts";

const replicas = etcdReplicas("merge-portal-etcd-");

test("two portal replicas on etcd share everything and never double-allocate", async () => {
  const [a, b] = replicas as [Started, Started];
  const anonA = new PortalClient(a.url);
  // One administrator, one demo facility, however many replicas started.
  assert.equal((await anonA.health()).store, "etcd");
  const admin = new PortalClient(
    b.url,
    (await new PortalClient(b.url).login("admin", a.admin.password as string)).token,
  );
  assert.deepEqual(
    (await admin.facilities()).map((f) => f.name),
    ["phobos"],
  );

  await anonA.register({ name: "uma", email: "uma@example.org", password: "uma-password" });
  await admin.setUserState("uma", "active");
  const token = (await anonA.login("uma", "uma-password")).token;
  const onA = new PortalClient(a.url, token);
  const onB = new PortalClient(b.url, token);
  await onA.createExperiment("uma", { name: "pair" });
  const xir = JSON.parse(chainXir("pair", 2)) as Experiment;
  for (const n of xir.nodes) n.constraints = [{ prop: "proc.cores", op: ">=", value: 4 }];
  assert.equal((await onB.push("uma", "pair", JSON.stringify(xir), "xir")).status, "compiled");

  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => (i % 2 ? onA : onB).realize("uma", "pair", { name: `r${i}` })),
  );
  const ok = results.filter((r) => r.state === "pending");
  assert.ok(ok.length >= 1 && ok.length < 20, `${ok.length} realized`);
  const held = await Promise.all(ok.map((r) => onA.realization("uma", "pair", r.name)));
  assert.deepEqual(
    checkRealizations(
      { facilities: [phobos()], interconnects: [] },
      held.map((r) => ({ experiment: xir, realization: r.realization as Realization })),
    ),
    [],
  );
  // What one replica wrote the other reads.
  assert.equal((await onB.realizations("uma", "pair")).length, 20);
  await Promise.all(results.map((r, i) => (i % 2 ? onB : onA).relinquish("uma", "pair", r.name)));
  assert.equal((await admin.resources({ allocated: true })).length, 0);
});
