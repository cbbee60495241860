import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { PortalPlugin } from "../src/server.ts";
import { apiError, chainXir, type Harness, startHarness } from "./harness.ts";

let h: Harness;
/** Another room's routes, added through the plugins option. */
const extra: PortalPlugin = async (app) => {
  app.get("/extra", { config: { access: { object: "facility", action: "read" } } }, async (req) => ({
    user: req.principal?.user.name,
  }));
};

before(async () => {
  h = await startHarness({ plugins: [extra] });
});
after(async () => {
  await h?.stop();
});

test("resource pools decide which nodes a project is realized on", async () => {
  const vic = await h.user("vic");
  const wes = await h.user("wes");
  for (const [c, p] of [
    [vic, "vic"],
    [wes, "wes"],
  ] as const) {
    await c.createExperiment(p, { name: "pair" });
    // vic's nodes are bare metal, so two fill a pool of two machines (VMs are the engine's default).
    const metal = p === "vic" ? [{ prop: "metal", op: "==" as const, value: true }] : [];
    await c.push(p, "pair", chainXir("pair", 2, metal), "xir");
  }
  const nodes = (await h.admin.resources({ facility: "phobos" })).map((r) => r.id);
  assert.ok(nodes.length >= 3);
  const two = nodes.slice(0, 2);

  // Only administrators manage pools; bad resource names are refused.
  assert.equal(
    (await apiError(vic.createPool({ name: "mine", projects: ["vic"], resources: ["phobos/*"] }))).status,
    403,
  );
  const bad = await apiError(h.admin.createPool({ name: "bad", projects: ["vic"], resources: ["../etc"] }));
  assert.equal(bad.status, 400);
  assert.match(bad.field ?? "", /^resources/);

  await h.admin.createPool({ name: "small", projects: ["vic"], resources: two.map((n) => `phobos/${n}`) });
  const r = await vic.realize("vic", "pair", { name: "r1" });
  assert.equal(r.state, "pending", r.diagnostics.join("; "));
  const placed = (r.realization as { nodes: { resource: string }[] }).nodes.map((n) => n.resource);
  assert.ok(
    placed.every((n) => two.includes(n)),
    `${placed} within ${two}`,
  );
  // The pool is full now: a second realization for vic does not spill onto other nodes.
  const full = await vic.realize("vic", "pair", { name: "r9" });
  assert.equal(full.state, "failed");
  await vic.relinquish("vic", "pair", "r9");

  // A project in no pool gets a diagnosis that says why.
  const denied = await wes.realize("wes", "pair", { name: "r1" });
  assert.equal(denied.state, "failed");
  assert.match(denied.diagnostics.join("\n"), /resource pools/);
  await wes.relinquish("wes", "pair", "r1");

  // Without pools, every project may use every node again.
  await h.admin.deletePool("small");
  const free = await wes.realize("wes", "pair", { name: "r2" });
  assert.equal(free.state, "pending", free.diagnostics.join("; "));
  await wes.relinquish("wes", "pair", "r2");
  await vic.relinquish("vic", "pair", "r1");
});

test("routes of other rooms (the plugins option) are registered and guarded by the same policy hook", async () => {
  assert.equal((await fetch(`${h.url}/extra`)).status, 401);
  const res = await fetch(`${h.url}/extra`, { headers: { authorization: `Bearer ${h.admin.token}` } });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { user: "admin" });
});
