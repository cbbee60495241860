// The plan of an experiment across two facilities: each facility's part of the external link
// (its crossings of the wide area, the VNI both agree on, the tunnel's inner addresses, the
// gateway's rate), the emulator's latency less the wide area's, and the portal's handover of
// gateway ends (public parts only).
import assert from "node:assert/strict";
import { test } from "node:test";
import { SECOND_FACILITY, siteInterconnects } from "@merge/facility";
import { phobos, spreadOverHosts } from "@merge/facility-model";
import {
  type ExternalSpec,
  fragmentFromPb,
  fragmentHosts,
  fragmentToPb,
  type LinkSpec,
  planMaterialization,
} from "@merge/materialize";
import { gatewayHandovers, gatewayNeeds, gatewaysHanded, sameEnds } from "@merge/portal/materialize";
import { realize } from "@merge/realize";
import type { Realization } from "@merge/xir";
import { compiledHere, LINE4 } from "./multi-fixture.ts";

const facilities = [phobos(), phobos({ name: SECOND_FACILITY })];
const interconnects = siteInterconnects(facilities, 15_000_000, 100_000_000);

async function planOf(source: string) {
  const xir = await compiledHere(source);
  const r = realize(xir, { facilities, interconnects }, undefined, { id: "r1.line.p" });
  const rz = (r as { realization?: Realization }).realization;
  assert.ok(rz, JSON.stringify(r));
  return { rz, plan: planMaterialization(rz, xir, facilities, interconnects) };
}

const links = (plan: ReturnType<typeof planMaterialization>, facility: string): LinkSpec[] =>
  plan.facilities
    .find((f) => f.facility === facility)!
    .fragments.flatMap((f) => (f.op === "link.create" ? [f.link] : []));

test("each facility carries its side of the external link: same VNI, mirrored inner addresses, its gateway's rate", async () => {
  const { rz, plan } = await planOf(LINE4);
  const ext = rz.links.find((l) => l.external)!;
  const sides = ["phobos", "deimos"].map((f) => links(plan, f).find((l) => l.link === ext.link)!);
  const [p, d] = sides.map((l) => l.external ?? []) as [ExternalSpec[], ExternalSpec[]];
  assert.equal(p.length, 1);
  assert.equal(d.length, 1);
  assert.deepEqual([p[0]!.peer, d[0]!.peer], ["deimos", "phobos"]);
  assert.equal(p[0]!.vni, d[0]!.vni, "both ends of the segment on one VNI");
  assert.deepEqual([p[0]!.address, p[0]!.peerAddress], [d[0]!.peerAddress, d[0]!.address]);
  assert.equal(p[0]!.rateBps, 10_000_000_000, "phobos's gateway port line rate");
  for (const [i, l] of sides.entries()) {
    assert.equal(l.remote?.length, 1, "one endpoint is at the other facility");
    const x = l.external![0]!;
    assert.equal(x.end, "node");
    assert.ok(!l.remote!.includes(x.endpoint!), `${["phobos", "deimos"][i]} wires its own endpoint`);
    // The wire keeps it.
    const f = { resource: "gw0", op: "link.create" as const, link: l };
    assert.deepEqual(fragmentFromPb(fragmentToPb(f), 0), f);
  }
  // Every node's name resolves at every facility: the others' nodes are DNS-only entries (no DHCP here).
  for (const fp of plan.facilities) {
    const pod = fp.fragments.find((f) => f.op === "infrapod.setup");
    assert.ok(pod?.op === "infrapod.setup");
    assert.deepEqual(pod.entries.map((e) => e.name).sort(), ["a", "b", "c", "d"]);
    for (const e of pod.entries) {
      const at = rz.nodes.find((n) => n.node === e.name)!.facility;
      assert.equal(e.facility, at === fp.facility ? undefined : at);
      if (e.facility) assert.match(e.experiment ?? "", /^\d+\.\d+\.\d+\.\d+$/);
    }
    const f = { resource: pod.resource, op: "infrapod.setup" as const, infrapod: pod.infrapod, entries: pod.entries };
    assert.deepEqual(fragmentFromPb(fragmentToPb(f), 0), f);
  }
  // Links inside one facility carry nothing external.
  for (const l of links(plan, "phobos").filter((l) => l.link !== ext.link)) assert.equal(l.external, undefined);
});

test("an emulated external link: the emulator adds what the wide area does not give; the other side goes straight to it", async () => {
  const slow = LINE4.replace(
    "net.connect([n[i]!, n[i + 1]!]);",
    "net.connect([n[i]!, n[i + 1]!], latency.eq(ms(25)));",
  ).replace("import { addressing,", "import { latency, ms, addressing,");
  const { rz, plan } = await planOf(slow);
  const ext = rz.links.find((l) => l.external)!;
  assert.equal(ext.emulation?.latency, 25_000_000, "the realization holds the link's whole latency");
  const at = ext.emulator!.facility;
  const other = at === "phobos" ? "deimos" : "phobos";
  const emu = plan.facilities
    .find((f) => f.facility === at)!
    .fragments.flatMap((f) => (f.op === "emulation.setup" ? f.emulation.links : []))
    .find((l) => l.link === ext.link)!;
  assert.equal(emu.params.latency, 10_000_000, "25 ms asked, 15 ms of wide area: 10 at the emulator");
  const here = links(plan, at).find((l) => l.link === ext.link)!;
  assert.deepEqual(
    here.external?.map((x) => x.end),
    ["emulator"],
  );
  const there = links(plan, other).find((l) => l.link === ext.link)!;
  assert.equal(there.emulator, undefined, "the emulator is at the other facility");
  assert.deepEqual(
    there.external?.map((x) => x.end),
    ["node"],
  );
  const routed = plan.facilities
    .find((f) => f.facility === other)!
    .fragments.find((f) => f.op === "link.create" && f.link.link === ext.link)!;
  assert.equal(routed.resource, "gw0", "routed by the facility's own gateway");
});

test("the portal hands each facility its peer's end once both reported theirs; only public parts", async () => {
  const { plan } = await planOf(LINE4);
  assert.deepEqual(
    [...gatewayNeeds(plan)].map(([f, n]) => [f, n.resource, [...n.peers]]),
    [
      ["phobos", "gw0", ["deimos"]],
      ["deimos", "gw0", ["phobos"]],
    ],
  );
  const end = (peer: string, k: string) => ({
    peer,
    publicKey: `${k.repeat(43)}=`,
    endpoint: "203.0.113.1:5000",
    address: "169.254.2.1",
    privateKey: "must not travel",
  });
  const half = gatewayHandovers(plan, new Map([["phobos", [end("deimos", "A")]]]));
  assert.deepEqual(
    half.handovers.map((h) => h.facility),
    ["deimos"],
  );
  assert.deepEqual(half.missing, ["deimos→phobos"]);
  const both = gatewayHandovers(
    plan,
    new Map([
      ["phobos", [end("deimos", "A")]],
      ["deimos", [end("phobos", "B")]],
    ]),
  );
  assert.deepEqual(both.missing, []);
  const toPhobos = both.handovers.find((h) => h.facility === "phobos")!;
  assert.deepEqual(toPhobos.peers, [
    { peer: "deimos", publicKey: `${"B".repeat(43)}=`, endpoint: "203.0.113.1:5000", address: "169.254.2.1" },
  ]);
  assert.ok(!JSON.stringify(both).includes("must not travel"));
});

test("each infrapod routes the other facility's infranet over the gateway tunnel toward it; the wire keeps it", async () => {
  const { rz, plan } = await planOf(LINE4);
  const pods = plan.facilities.map((fp) => {
    const f = fp.fragments.find((x) => x.op === "infrapod.setup");
    assert.ok(f?.op === "infrapod.setup");
    return { facility: fp.facility, pod: f.infrapod, frag: f };
  });
  const subnets = pods.map((p) => p.pod.infranet.subnet);
  assert.equal(new Set(subnets).size, 2, `distinct infranets: ${subnets}`);
  for (const { facility, pod, frag } of pods) {
    const other = pods.find((p) => p.facility !== facility)!;
    assert.deepEqual(
      pod.peers?.map((p) => [p.peer, p.subnet, p.gateway]),
      [[other.facility, other.pod.infranet.subnet, "gw0"]],
    );
    // The same tunnel as the external link's: the same inner addresses.
    const ext = links(plan, facility).flatMap((l) => l.external ?? [])[0]!;
    assert.equal(pod.peers?.[0]?.address, ext.address);
    assert.equal(pod.peers?.[0]?.peerAddress, ext.peerAddress);
    assert.deepEqual(fragmentFromPb(fragmentToPb(frag), 0), frag);
  }
  assert.equal(rz.infranets.length, 2);
  // Without an interconnect between them, nothing is routed (names still resolve).
  const alone = planMaterialization(rz, await compiledHere(LINE4), facilities, []);
  for (const fp of alone.facilities)
    for (const f of fp.fragments) if (f.op === "infrapod.setup") assert.equal(f.infrapod.peers, undefined);
});

test("what the portal handed the gateways is enough to know they are joined (kept in its record)", async () => {
  const { plan } = await planOf(LINE4);
  const end = (peer: string, k: string, port = 5000) => ({
    peer,
    publicKey: `${k.repeat(43)}=`,
    endpoint: `203.0.113.1:${port}`,
    address: "169.254.2.1",
  });
  const handed = new Map([["phobos", [end("deimos", "B")]]]);
  assert.equal(
    gatewaysHanded(plan, (f) => handed.get(f)),
    false,
    "deimos has not been handed phobos's end",
  );
  handed.set("deimos", [end("phobos", "A")]);
  assert.equal(
    gatewaysHanded(plan, (f) => handed.get(f)),
    true,
  );
  assert.ok(sameEnds([end("phobos", "A")], [end("phobos", "A")]));
  assert.ok(!sameEnds([end("phobos", "A")], [end("phobos", "A", 5001)]), "a new endpoint is handed again");
  assert.ok(!sameEnds(undefined, [end("phobos", "A")]));
});

test("a facility of several hosts: the plan puts each crossing and infranet peer on its gateway's host", async () => {
  const over = spreadOverHosts(phobos(), ["h1"]);
  const hosted = { ...over, resources: over.resources.map((r) => (r.kind === "gateway" ? { ...r, host: "h2" } : r)) };
  const models = [hosted, phobos({ name: SECOND_FACILITY })];
  const xir = await compiledHere(LINE4);
  const r = realize(xir, { facilities: models, interconnects }, undefined, { id: "r1.line.p" });
  const rz = (r as { realization?: Realization }).realization;
  assert.ok(rz, JSON.stringify(r));
  const plan = planMaterialization(rz, xir, models, interconnects);
  const ext = rz.links.find((l) => l.external)!;
  const part = plan.facilities.find((f) => f.facility === "phobos")!;
  const link = part.fragments.find((f) => f.op === "link.create" && f.link.link === ext.link);
  assert.ok(link?.op === "link.create");
  assert.deepEqual(
    link.link.external?.map((x) => x.host),
    ["h2"],
  );
  // Wired where its endpoint here is (h1) and where the gateway is (h2); the endpoint at deimos is not phobos's.
  assert.deepEqual(fragmentHosts(link), ["h1", "h2"]);
  const pod = part.fragments.find((f) => f.op === "infrapod.setup");
  assert.ok(pod?.op === "infrapod.setup");
  assert.equal(pod.infrapod.host, "h1");
  assert.deepEqual(
    pod.infrapod.peers?.map((p) => [p.peer, p.host]),
    [["deimos", "h2"]],
  );
  assert.deepEqual(fragmentHosts(pod), ["h1", "h2"]);
  for (const f of [link, pod]) assert.deepEqual(fragmentFromPb(fragmentToPb(f), 0), f);
  // The facility of one machine plans no host, on its crossings as anywhere.
  const other = plan.facilities.find((f) => f.facility === SECOND_FACILITY)!;
  assert.ok(!JSON.stringify(other.fragments).includes('"host"'));
  assert.deepEqual(other.hosts, [""]);
});
