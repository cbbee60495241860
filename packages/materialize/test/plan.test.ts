import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { FragmentSchema } from "@merge/proto";
import {
  fragmentFromPb,
  fragmentsFor,
  fragmentToPb,
  linkPlacement,
  nodePlacement,
  PlanError,
  planMaterialization,
  planNames,
  planNodeAddresses,
  synthetic,
  WireError,
} from "../src/index.ts";

const s = synthetic(25, { mzid: "r1.exp.proj", lanSize: 10 });
const fragments = fragmentsFor(s.realization, s.experiment, s.facility);

test("fragments for a realization: one infrapod, a setup per node, a link per link, an emulation per emulator", () => {
  const ops = fragments.map((f) => f.op);
  assert.equal(ops.filter((o) => o === "infrapod.setup").length, 1);
  assert.equal(ops.filter((o) => o === "node.setup").length, 25);
  assert.equal(ops.filter((o) => o === "link.create").length, s.realization.links.length);
  assert.equal(ops.filter((o) => o === "emulation.setup").length, 1);
  const pod = fragments.find((f) => f.op === "infrapod.setup");
  assert.ok(pod?.op === "infrapod.setup");
  assert.equal(pod.entries.length, 25);
  assert.equal(new Set(pod.entries.map((e) => e.address)).size, 25, "infranet addresses are unique");
  const emu = fragments.find((f) => f.op === "emulation.setup");
  assert.ok(emu?.op === "emulation.setup");
  assert.deepEqual(emu.emulation.links[0]?.params, { latency: 10_000_000, capacity: 1e8 });
});

test("fragments survive the wire unchanged; an empty fragment names what is missing", () => {
  for (const [i, f] of fragments.entries()) assert.deepEqual(fragmentFromPb(fragmentToPb(f), i), f);
  assert.throws(
    () => fragmentFromPb(create(FragmentSchema, { resource: "m1" }), 3),
    (e: Error) => e instanceof WireError && /fragments\[3\] \(resource 'm1'\): no operation/.test(e.message),
  );
});

test("the experiment's name resolution reaches the infrapod, across the wire; a bad value is refused by name", () => {
  const x = synthetic(3, { mzid: "r2.exp.proj" });
  const pod = (fs: ReturnType<typeof fragmentsFor>) => fs.find((f) => f.op === "infrapod.setup");
  const plain = pod(fragmentsFor(x.realization, x.experiment, x.facility));
  assert.ok(plain?.op === "infrapod.setup");
  assert.equal(plain.infrapod.nameResolution, undefined, "default: names resolve to experiment addresses");
  x.experiment.parameters.nameResolution = "infranet";
  const f = pod(fragmentsFor(x.realization, x.experiment, x.facility));
  assert.ok(f?.op === "infrapod.setup");
  assert.equal(f.infrapod.nameResolution, "infranet");
  assert.deepEqual(fragmentFromPb(fragmentToPb(f), 0), f);
  const bad = fragmentToPb(f);
  assert.ok(bad.op.case === "infrapodSetup" && bad.op.value.infrapod);
  bad.op.value.infrapod.nameResolution = "dns";
  assert.throws(() => fragmentFromPb(bad, 4), /infrapod\.name_resolution "dns" is not one of experiment, infranet/);
});

test("the plan: one part per facility, its fragments and the resources they route by", () => {
  const plan = planMaterialization(s.realization, s.experiment, [s.facility]);
  assert.equal(plan.mzid, "r1.exp.proj");
  assert.equal(plan.facilities.length, 1);
  const part = plan.facilities[0]!;
  assert.equal(part.facility, s.facility.name);
  assert.deepEqual(part.fragments, fragments);
  assert.deepEqual(part.resources, [...new Set(fragments.map((f) => f.resource))].sort());
  assert.ok(part.resources.includes("ifr0") && part.resources.includes("emu0"));
});

test("the plan is deterministic: the same inputs give byte-identical JSON", () => {
  const a = JSON.stringify(planMaterialization(s.realization, s.experiment, [s.facility]));
  const again = synthetic(25, { mzid: "r1.exp.proj", lanSize: 10 });
  const b = JSON.stringify(planMaterialization(again.realization, again.experiment, [again.facility]));
  assert.equal(a, b);
  // Other facilities given alongside change nothing; their order neither.
  const other = synthetic(3, { facility: "elsewhere" }).facility;
  assert.equal(JSON.stringify(planMaterialization(s.realization, s.experiment, [other, s.facility])), a);
});

test("the plan resolves nodes to resources and infranet addresses, emulation in base units", () => {
  const plan = planMaterialization(s.realization, s.experiment, [s.facility]);
  const n0 = plan.facilities[0]!.fragments.find((f) => f.op === "node.setup" && f.node.node === "n0");
  assert.ok(n0?.op === "node.setup");
  assert.equal(n0.node.infranet.address, "172.30.0.2");
  assert.equal(n0.node.infranet.vni, s.realization.infranets[0]!.vni);
  const emu = plan.facilities[0]!.fragments.find((f) => f.op === "emulation.setup");
  assert.ok(emu?.op === "emulation.setup");
  // 10 ms one way, held in nanoseconds; 100 Mbit/s in bits per second.
  assert.equal(emu.emulation.links[0]?.params.latency, 10_000_000);
  assert.equal(emu.emulation.links[0]?.params.capacity, 100_000_000);
});

test("placement comes from the plan: a node's resource, a link's emulator, or nothing", () => {
  const plan = planMaterialization(s.realization, s.experiment, [s.facility]);
  const emb = s.realization.nodes.find((n) => n.node === "n12")!;
  assert.deepEqual(nodePlacement(plan, "n12"), { facility: s.facility.name, resource: emb.resource });
  assert.equal(nodePlacement(plan, "nope"), undefined);
  const emulated = s.realization.links.find((l) => l.emulator)!;
  assert.deepEqual(linkPlacement(plan, emulated.link), {
    emulator: { facility: s.facility.name, resource: "emu0" },
  });
  const plain = s.realization.links.find((l) => !l.emulator)!;
  assert.deepEqual(linkPlacement(plan, plain.link), { emulator: undefined });
  assert.equal(linkPlacement(plan, "nope"), undefined);
  assert.equal(planNames(plan, "node").length, 25);
  assert.deepEqual(planNames(plan, "link").sort(), s.realization.links.map((l) => l.link).sort());
});

test("a facility the realization uses but no model was given for is refused by name", () => {
  assert.throws(
    () => planMaterialization(s.realization, s.experiment, []),
    (e: Error) => e instanceof PlanError && /uses facility 'simfac', whose model was not given/.test(e.message),
  );
});

test("a node on a resource the facility lacks is refused naming both", () => {
  const broken = {
    ...s.facility,
    resources: s.facility.resources.filter((r) => r.id !== s.realization.nodes[0]!.resource),
  };
  assert.throws(
    () => planMaterialization(s.realization, s.experiment, [broken]),
    (e: Error) =>
      e instanceof PlanError && /node 'n0' is on resource '.+', which facility 'simfac' does not have/.test(e.message),
  );
});

test("node addresses: each node's XIR socket addresses in socket order, its infranet address, its image", () => {
  const plan = planMaterialization(s.realization, s.experiment, [s.facility]);
  const reach = planNodeAddresses(plan);
  assert.equal(reach.size, 25);
  const pod = fragments.find((f) => f.op === "infrapod.setup");
  assert.ok(pod?.op === "infrapod.setup");
  for (const xn of s.experiment.nodes) {
    const got = reach.get(xn.name);
    assert.ok(got, xn.name);
    const want = [...xn.sockets].sort((a, b) => a.index - b.index).flatMap((k) => k.addrs ?? []);
    assert.deepEqual(got.addresses, want, xn.name);
    assert.equal(got.infranet, pod.entries.find((e) => e.name === xn.name)?.address, xn.name);
  }
  assert.ok(
    [...reach.values()].some((n) => n.addresses.length > 0),
    "the synthetic experiment has addresses",
  );
});

test("each facility of a materialization gets its own infranet subnet: the first 172.30/16, the others 172.16/16, …", () => {
  const own = s.realization.infranets[0]!;
  // This facility second in the realization's infranets (another facility first).
  const second = { ...s.realization, infranets: [{ ...own, facility: "elsewhere" }, own] };
  const pod = (fs: ReturnType<typeof fragmentsFor>) => fs.find((f) => f.op === "infrapod.setup");
  const first = pod(fragments);
  const other = pod(fragmentsFor(second, s.experiment, s.facility));
  assert.ok(first?.op === "infrapod.setup" && other?.op === "infrapod.setup");
  assert.deepEqual([first.infrapod.infranet.subnet, first.infrapod.infranet.gateway], ["172.30.0.0/16", "172.30.0.1"]);
  assert.deepEqual([other.infrapod.infranet.subnet, other.infrapod.infranet.gateway], ["172.16.0.0/16", "172.16.0.1"]);
  assert.ok(
    other.entries.every((e) => e.address.startsWith("172.16.")),
    JSON.stringify(other.entries.slice(0, 2)),
  );
  const many = {
    ...s.realization,
    infranets: [...Array.from({ length: 15 }, (_, i) => ({ ...own, facility: `f${i}` })), own],
  };
  assert.throws(() => fragmentsFor(many, s.experiment, s.facility), /spans at most 15 facilities/);
});

test("a virtual node's profile settings (cpu.share, clock.dilation) reach its node spec, across the wire", () => {
  const x = synthetic(3, { mzid: "r3.exp.proj" });
  const [n0, n1] = x.experiment.nodes;
  n0!.constraints.push({ prop: "cpu.share", op: "==", value: 0.5 }, { prop: "clock.dilation", op: "==", value: 10 });
  n1!.constraints.push({ prop: "cpu.share", op: "==", value: 0.25 });
  for (const e of x.realization.nodes) {
    if (e.node === n0!.name) Object.assign(e, { mode: "virtual", kind: "vm" });
    if (e.node === n1!.name) e.mode = "physical";
  }
  const specs = fragmentsFor(x.realization, x.experiment, x.facility).flatMap((f) =>
    f.op === "node.setup" ? [f] : [],
  );
  const spec = (name: string) => specs.find((f) => f.node.node === name)!;
  assert.deepEqual(spec(n0!.name).node.profile, { cpuShare: 0.5, clockDilation: 10 });
  assert.equal(spec(n1!.name).node.profile, undefined, "bare metal has its whole machine");
  for (const [i, f] of specs.entries()) assert.deepEqual(fragmentFromPb(fragmentToPb(f), i), f);
});
