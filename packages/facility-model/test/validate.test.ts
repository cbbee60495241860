import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkFacility,
  checkFacilityDocument,
  duplicates,
  FacilityBuilder,
  formatProblem,
  type Problem,
  phobos,
  twoRack,
} from "@merge/facility-model";
import type { Facility, Resource } from "@merge/xir";
import { gb, gbps } from "@merge/xir";

/** phobos as loaded from JSON: a plain document, nothing shared with the builder. */
function loaded(): Facility {
  return JSON.parse(JSON.stringify(phobos())) as Facility;
}

function res(f: Facility, id: string): Resource {
  const r = f.resources.find((x) => x.id === id);
  assert.ok(r, `no resource ${id}`);
  return r;
}

function errors(f: Facility): string[] {
  return checkFacility(f)
    .filter((p) => p.severity === "error")
    .map((p) => `${p.element}: ${p.message}`);
}

/** Exactly the expected error fragments, one problem each, and nothing else. */
function expectErrors(f: Facility, ...fragments: string[]): void {
  const found = errors(f);
  assert.equal(found.length, fragments.length, `expected ${fragments.length} errors, got:\n${found.join("\n")}`);
  for (const frag of fragments) {
    assert.ok(
      found.some((m) => m.includes(frag)),
      `no error containing "${frag}" in:\n${found.join("\n")}`,
    );
  }
}

describe("checkFacility", () => {
  it("finds nothing wrong with the samples, also after a JSON round trip", () => {
    assert.deepEqual(checkFacility(phobos()), []);
    assert.deepEqual(checkFacility(loaded()), []);
    assert.deepEqual(checkFacility(twoRack()), []);
  });

  it("a cable to an unknown resource", () => {
    const f = loaded();
    f.cables.push({
      id: "stray",
      ends: [
        { resource: "n9", port: "eth0" },
        { resource: "ileaf", port: "swp16" },
      ],
    });
    expectErrors(f, "cable stray: end 1 names resource n9, which is not in the facility");
  });

  it("a cable to an unknown port, naming the ports the resource has", () => {
    const f = loaded();
    f.cables.push({
      id: "stray",
      ends: [
        { resource: "ileaf", port: "swp16" },
        { resource: "n0", port: "eth7" },
      ],
    });
    expectErrors(
      f,
      "cable stray: end 2 names port eth7 of node n0, which has no such port (it has bmc, eth0, eth1, eth2)",
    );
  });

  it("a port cabled twice", () => {
    const f = loaded();
    const first = f.cables.find((c) => c.ends[0].resource === "n1" && c.ends[0].port === "eth0");
    assert.ok(first);
    f.cables.push({
      id: "again",
      ends: [
        { resource: "n1", port: "eth0" },
        { resource: "ileaf", port: "swp16" },
      ],
    });
    expectErrors(f, `port n1.eth0: is cabled twice: by ${first.id} and again`);
  });

  it("a cable joining two networks", () => {
    const f = loaded();
    f.cables.push({
      id: "cross",
      ends: [
        { resource: "ileaf", port: "swp16" },
        { resource: "xleaf", port: "swp16" },
      ],
    });
    expectErrors(
      f,
      "cable cross: joins ileaf.swp16 (infranet) to xleaf.swp16 (xpnet); both ends must be on the same network",
    );
  });

  it("a cable from a port to itself", () => {
    const f = loaded();
    f.cables.push({
      id: "loop",
      ends: [
        { resource: "ileaf", port: "swp16" },
        { resource: "ileaf", port: "swp16" },
      ],
    });
    expectErrors(f, "cable loop: both ends are the same port");
  });

  it("a leaf with no uplink when its network has a spine", () => {
    const f = JSON.parse(JSON.stringify(twoRack())) as Facility;
    f.cables = f.cables.filter((c) => !(c.ends[0].resource === "xleaf2" && c.ends[1].resource === "xspine"));
    expectErrors(
      f,
      "switch xleaf2: has no uplink: no cable toward a xpnet fabric or spine switch (the facility has 1)",
    );
  });

  it("a fabric with no uplink when its network has spines", () => {
    const b = new FacilityBuilder("fab");
    const spine = b.switch("spine", { layer: "spine", network: "xpnet", ports: 4, capacity: gbps(100) });
    const fab = b.switch("fab", { layer: "fabric", network: "xpnet", ports: 4, capacity: gbps(100), vlanDomain: "d" });
    b.switch("fab2", { layer: "fabric", network: "xpnet", ports: 4, capacity: gbps(100), vlanDomain: "d" });
    b.cable(fab.port("swp1"), spine.port("swp1"));
    b.vlans("d", { first: 2, last: 10 });
    expectErrors(b.build({ validate: false }), "switch fab2: has no uplink: no cable toward a xpnet spine switch");
  });

  it("a testbed node with no infranet port", () => {
    const f = loaded();
    const n2 = res(f, "n2");
    n2.ports = n2.ports.filter((p) => p.role !== "infranet");
    f.cables = f.cables.filter((c) => !(c.ends[0].resource === "n2" && c.ends[0].port === "eth0"));
    expectErrors(f, "node n2: has no infranet port (it has bmc, eth1, eth2)");
  });

  it("a testbed node whose infranet port is not cabled", () => {
    const f = loaded();
    f.cables = f.cables.filter((c) => !(c.ends[0].resource === "n3" && c.ends[0].port === "eth0"));
    expectErrors(f, "node n3: infranet port eth0 is not cabled");
  });

  it("duplicate resource ids, port names and cable ids", () => {
    const f = loaded();
    f.resources.push({ ...res(f, "stor0") });
    const n0 = res(f, "n0");
    n0.ports.push({ ...(n0.ports[1] as Resource["ports"][number]) });
    f.cables.push({
      ...(f.cables[0] as Facility["cables"][number]),
      ends: [
        { resource: "ileaf", port: "swp15" },
        { resource: "ileaf", port: "swp16" },
      ],
    });
    expectErrors(
      f,
      `resources[${f.resources.length - 1}]: duplicate resource id stor0: also used by storage stor0`,
      "node n0: port name eth0 is used twice",
      "is also the MAC of port n0.eth0",
      `cable ${f.cables[0]?.id}: duplicate cable id`,
    );
  });

  it("duplicates() finds every repeated id and its first occurrence, as a Set would", () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `c${(i * 7919) % 15_000}`);
    const first = new Map<string, number>();
    const expected: [number, number][] = [];
    ids.forEach((id, i) => {
      const at = first.get(id);
      if (at === undefined) first.set(id, i);
      else expected.push([i, at]);
    });
    assert.equal(expected.length, 5_000);
    assert.deepEqual(duplicates(ids), expected);
    assert.deepEqual(duplicates([]), []);
  });

  it("a MAC address on two ports", () => {
    const f = loaded();
    const mac = res(f, "n0").ports[1]?.mac;
    (res(f, "n3").ports[2] as Resource["ports"][number]).mac = mac?.toUpperCase();
    expectErrors(f, `port n3.eth1: MAC ${mac} is also the MAC of port n0.eth0`);
  });

  it("overlapping, empty and out-of-range tag ranges", () => {
    const f = loaded();
    f.tags.vlan.xpnet = [
      { first: 100, last: 3999 },
      { first: 200, last: 300 },
    ];
    f.tags.vlan.infranet = [{ first: 10, last: 5000 }];
    f.tags.vni = [
      { first: 100, last: 65535 },
      { first: 70000, last: 69000 },
    ];
    expectErrors(
      f,
      "tags.vlan.xpnet: VLAN id ranges 100-3999 ([0]) and 200-300 ([1]) overlap",
      "tags.vlan.infranet[0]: VLAN id range 10-5000 is outside 1-4094",
      "tags.vni[1]: VNI range 70000-69000 is empty",
    );
  });

  it("nested tag ranges are caught even when a shorter range sits between", () => {
    const f = loaded();
    f.tags.vni = [
      { first: 1, last: 1000 },
      { first: 2, last: 3 },
      { first: 500, last: 600 },
    ];
    const found = errors(f);
    assert.ok(
      found.some((m) => m.includes("1-1000 ([0]) and 500-600 ([2]) overlap")),
      found.join("\n"),
    );
  });

  it("a switch in a VLAN domain without a pool", () => {
    const f = loaded();
    delete f.tags.vlan.xpnet;
    expectErrors(f, "switch xleaf: is in VLAN domain xpnet, which has no VLAN id pool in tags.vlan (pools: infranet)");
  });

  it("node and switch shape: alloc, hypervisor capacity, switch info", () => {
    const f = loaded();
    res(f, "n3").alloc = [];
    const n2 = res(f, "n2");
    delete n2.props["memory.capacity"];
    delete res(f, "mleaf").switch;
    res(f, "emu0").alloc = ["physical"];
    expectErrors(
      f,
      "node n3: has no allocation mode",
      "node n2: is a hypervisor (alloc virtual) but has no positive memory.capacity",
      "switch mleaf: is a switch without switch info",
      "emulator emu0: has alloc [physical], but only testbed nodes are allocated",
    );
  });

  it("a port without capacity, and sizes that look like a missing unit", () => {
    const f = loaded();
    const n1 = res(f, "n1");
    (n1.ports[2] as Resource["ports"][number]).capacity = 0;
    const n0 = res(f, "n0");
    (n0.ports[1] as Resource["ports"][number]).capacity = 10;
    n0.props["memory.capacity"] = 64;
    expectErrors(f, "port n1.eth1: has no capacity; give its line rate in bits/s");
    const warnings = checkFacility(f)
      .filter((p) => p.severity === "warning")
      .map((p) => `${p.element}: ${p.message}`);
    assert.deepEqual(warnings, [
      "port n0.eth0: capacity 10 bit/s looks like a missing unit; capacities are bits/s, e.g. gbps(10)",
      "node n0: memory.capacity 64 bytes looks like a missing unit; sizes are bytes, e.g. gb(64)",
    ]);
  });

  it("an infrapod server off the infranet; a gateway with no way in or out", () => {
    const f = loaded();
    f.cables = f.cables.filter((c) => !(c.ends[0].resource === "ifr0" && c.ends[0].port === "eth1"));
    f.cables = f.cables.filter((c) => !(c.ends[0].resource === "gw0" && c.ends[0].port !== "eth0"));
    const gw = res(f, "gw0");
    gw.ports = gw.ports.filter((p) => p.role !== "gateway");
    expectErrors(f, "infrapod-server ifr0: has no cabled infranet port");
    const warnings = checkFacility(f)
      .filter((p) => p.severity === "warning")
      .map((p) => `${p.element}: ${p.message}`);
    assert.deepEqual(warnings, [
      "gateway gw0: has no port of role gateway, so no interconnect can end on it",
      "gateway gw0: has no cabled xpnet or infranet port, so nothing inside the facility reaches it",
    ]);
  });

  it("warns about a facility without an infrapod server and an emulator off the xpnet", () => {
    const b = new FacilityBuilder("w");
    const leaf = b.switch("leaf", { layer: "leaf", network: "infranet", ports: 4, capacity: gbps(10) });
    const n = b.node("n", { cores: 1, memory: gb(1), nics: [{ role: "infranet", capacity: gbps(1) }] });
    b.emulator("emu", { nics: [{ role: "xpnet", capacity: gbps(10) }] });
    b.connect(n, leaf);
    b.vlans("infranet", { first: 2, last: 9 }).vnis({ first: 2, last: 9 });
    const problems = checkFacility(b.build());
    assert.deepEqual(problems.map(formatProblem), [
      "warning: emulator emu: has no cabled xpnet port, so no emulated link can pass through it",
      "warning: facility w: has testbed nodes but no infrapod server; no experiment can be given an infrapod",
    ]);
  });

  it("schema errors of a loaded document come first, with exact paths", () => {
    const doc = loaded() as unknown as { resources: { ports: { capacity: unknown }[] }[] };
    (doc.resources[3]?.ports[0] as { capacity: unknown }).capacity = "fast";
    const r = checkFacilityDocument(doc);
    assert.equal(r.facility, undefined);
    assert.ok(
      r.problems.some((p: Problem) => p.element === "resources[3].ports[0].capacity" && p.message.includes("number")),
      JSON.stringify(r.problems),
    );
    const ok = checkFacilityDocument(loaded());
    assert.ok(ok.facility);
    assert.deepEqual(ok.problems, []);
  });
});
