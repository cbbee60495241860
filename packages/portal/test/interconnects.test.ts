import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Facility, Realization } from "@merge/xir";
import { apiError, chainXir, type Harness, startHarness } from "./harness.ts";

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.stop();
});

const end = (facility: string, port = "eth3") => ({ facility, resource: "gw0", port });

test("interconnects: administrators put them, bad ends are refused naming the field, realizations cross them", async () => {
  // A second facility of phobos's shape.
  const model = (await h.admin.facilityModel("phobos")) as Facility;
  await h.admin.registerFacility({
    name: "deimos",
    endpoint: "https://127.0.0.1:1",
    model: { ...model, name: "deimos" },
  });
  const ic = { a: end("phobos"), b: end("deimos"), capacityBps: 100e6, latencyNs: 15e6 };

  const vic = await h.user("vic");
  assert.equal((await apiError(vic.putInterconnect("phobos-deimos", ic))).status, 403);
  const cases: [unknown, string, RegExp][] = [
    [{ ...ic, a: end("nowhere") }, "a.facility", /no facility nowhere/],
    [{ ...ic, b: { ...end("deimos"), resource: "gw9" } }, "b.resource", /deimos has no resource gw9/],
    [{ ...ic, b: end("deimos", "eth1") }, "b.port", /no gateway port eth1 \(gateway ports: eth3, eth4\)/],
    [{ ...ic, b: end("phobos", "eth4") }, "b.facility", /both ends are in phobos/],
  ];
  for (const [body, field, message] of cases) {
    const e = await apiError(h.admin.putInterconnect("phobos-deimos", body as typeof ic));
    assert.equal(e.status, 400, JSON.stringify(e));
    assert.equal(e.field, field);
    assert.match(e.message, message);
  }
  assert.equal((await apiError(h.admin.putInterconnect("Bad_Id", ic))).status, 400);
  assert.deepEqual(await h.admin.interconnects(), [], "nothing stored by refused calls");

  const put = await h.admin.putInterconnect("phobos-deimos", ic);
  assert.deepEqual(put, { id: "phobos-deimos", ...ic, shared: true });
  assert.deepEqual(await vic.interconnects(), [put], "anyone who may read facilities may read them");

  // Four bare-metal nodes: phobos has three metal-capable machines, so the chain crosses to deimos.
  const metal = [{ prop: "metal", op: "==" as const, value: true }];
  await vic.createExperiment("vic", { name: "line" });
  await vic.push("vic", "line", chainXir("line", 4, metal), "xir");
  const r = await vic.realize("vic", "line", { name: "r1" });
  assert.equal(r.state, "pending", JSON.stringify(r.diagnostics));
  const rz = r.realization as Realization;
  assert.deepEqual([...new Set(rz.nodes.map((n) => n.facility))].sort(), ["deimos", "phobos"]);
  assert.equal(rz.links.filter((l) => l.external).length, 1);
  await vic.reject("vic", "line", "r1");

  // Without the interconnect the experiment fits nowhere.
  assert.equal((await apiError(vic.deleteInterconnect("phobos-deimos"))).status, 403);
  await h.admin.deleteInterconnect("phobos-deimos");
  assert.equal((await apiError(h.admin.deleteInterconnect("phobos-deimos"))).status, 404);
  const again = await vic.realize("vic", "line", { name: "r2" });
  assert.equal(again.state, "failed");
  assert.match(again.diagnostics.join("\n"), /metal == true: no free resource in facility/);
});
