import assert from "node:assert/strict";
import { test } from "node:test";
import { validateFacility } from "@merge/xir";
import {
  fragmentFromPb,
  fragmentHosts,
  fragmentToPb,
  linkPlacement,
  nodePlacement,
  planMaterialization,
  planNodeAddresses,
  synthetic,
} from "../src/index.ts";

const hosts = ["h0", "h1", "h2"];
const s = synthetic(12, { mzid: "r1.exp.proj", lanSize: 4, hosts });
const plan = planMaterialization(s.realization, s.experiment, [s.facility]);
const part = plan.facilities[0]!;

test("the plan says which host carries each node, infrapod and emulation, from the facility model", () => {
  assert.deepEqual(part.hosts, hosts);
  for (const f of part.fragments) {
    if (f.op === "node.setup") {
      const i = Number(f.node.node.slice(1));
      assert.equal(f.node.host, hosts[i % 3], f.node.node);
      assert.deepEqual(fragmentHosts(f), [hosts[i % 3]]);
    }
    if (f.op === "infrapod.setup") assert.equal(f.infrapod.host, "h0");
    if (f.op === "emulation.setup") assert.equal(f.emulation.host, "h0");
  }
  assert.deepEqual(nodePlacement(plan, "n4"), { facility: "simfac", resource: "m4", host: "h1" });
  assert.equal(linkPlacement(plan, "wan0")?.emulator?.host, "h0");
  assert.equal(planNodeAddresses(plan).get("n5")?.host, "h2");
});

test("a link is wired on every host one of its endpoints or its emulator is on", () => {
  const lan = part.fragments.find((f) => f.op === "link.create" && f.link.link === "lan0");
  assert.ok(lan?.op === "link.create");
  assert.deepEqual(
    lan.link.endpoints.map((e) => e.host),
    ["h0", "h1", "h2", "h0"],
  );
  assert.deepEqual(fragmentHosts(lan), hosts);
  // wan0 joins n0 (h0) and n4 (h1) through the emulator on h0.
  const wan = part.fragments.find((f) => f.op === "link.create" && f.link.link === "wan0");
  assert.ok(wan?.op === "link.create");
  assert.equal(wan.link.emulatorHost, "h0");
  assert.deepEqual(fragmentHosts(wan), ["h0", "h1"]);
});

test("hosts survive the wire; a model of one machine names none and its plan has only the facility's own", () => {
  for (const [i, f] of part.fragments.entries()) assert.deepEqual(fragmentFromPb(fragmentToPb(f), i), f);
  const one = synthetic(6, { lanSize: 3 });
  const p = planMaterialization(one.realization, one.experiment, [one.facility]);
  assert.deepEqual(p.facilities[0]?.hosts, [""]);
  for (const f of p.facilities[0]?.fragments ?? []) {
    assert.ok(!JSON.stringify(f).includes('"host"'), `${f.op} names no host`);
    assert.deepEqual(fragmentFromPb(fragmentToPb(f), 0), f);
  }
});

test("a facility model's host names are checked: the path and what is valid", () => {
  const bad = structuredClone(s.facility);
  bad.resources[3]!.host = "no spaces";
  const v = validateFacility(bad);
  assert.equal(v.ok, false);
  assert.ok(!v.ok && v.errors.some((e) => e.path === "resources[3].host"), JSON.stringify(v));
});
