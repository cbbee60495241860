import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FacilityBuilder, FacilityModelError } from "@merge/facility-model";
import { gb, gbps, tb, validateFacility } from "@merge/xir";

function tiny(): FacilityBuilder {
  const f = new FacilityBuilder("tiny");
  const ileaf = f.switch("ileaf", { layer: "leaf", network: "infranet", ports: 4, capacity: gbps(10) });
  const xleaf = f.switch("xleaf", { layer: "leaf", network: "xpnet", ports: 4, capacity: gbps(25), vlanDomain: "xp" });
  const n0 = f.node("n0", {
    cores: 16,
    memory: gb(64),
    disks: [tb(1), tb(2)],
    gpus: { model: "a100", count: 2 },
    alloc: "both",
    hardware: "r740",
    nics: [
      { role: "infranet", capacity: gbps(1), model: "e1000e" },
      { role: "xpnet", capacity: gbps(10), model: "i40e", ports: 2 },
    ],
  });
  f.infrapodServer("ifr0", { nics: [{ role: "infranet", capacity: gbps(10) }] });
  f.cable(n0.port("eth0"), ileaf.port("swp1"));
  f.connect(n0, xleaf);
  f.connect(f.get("ifr0"), ileaf);
  f.vlans("infranet", { first: 10, last: 20 }).vlans("xp", { first: 100, last: 200 });
  f.vnis({ first: 5000, last: 5999 });
  return f;
}

describe("FacilityBuilder", () => {
  it("builds a node with XIR property names in base units", () => {
    const fac = tiny().build();
    const n0 = fac.resources.find((r) => r.id === "n0");
    assert.ok(n0);
    assert.equal(n0.kind, "node");
    assert.deepEqual(n0.alloc, ["physical", "virtual"]);
    assert.equal(n0.props["proc.cores"], 16);
    assert.equal(n0.props["memory.capacity"], 64 * 2 ** 30);
    assert.equal(n0.props["disk.capacity"], 3 * 2 ** 40);
    assert.equal(n0.props["disk.count"], 2);
    assert.equal(n0.props["gpu.model"], "a100");
    assert.equal(n0.props["gpu.count"], 2);
    assert.equal(n0.props.platform, "x86_64");
    assert.equal(n0.props.hardware, "r740");
    assert.deepEqual(
      n0.ports.map((p) => [p.name, p.role, p.capacity, p.model]),
      [
        ["eth0", "infranet", 1e9, "e1000e"],
        ["eth1", "xpnet", 1e10, "i40e"],
        ["eth2", "xpnet", 1e10, "i40e"],
      ],
    );
    for (const p of n0.ports) assert.match(p.mac ?? "", /^02(:[0-9a-f]{2}){5}$/);
    assert.equal(new Set(n0.ports.map((p) => p.mac)).size, 3);
  });

  it("builds switches with layer, network, VXLAN and VLAN domain, and schema-valid output", () => {
    const fac = tiny().build();
    const xleaf = fac.resources.find((r) => r.id === "xleaf");
    assert.deepEqual(xleaf?.switch, { layer: "leaf", network: "xpnet", vxlan: false, vlanDomain: "xp" });
    assert.deepEqual(
      xleaf?.ports.map((p) => p.name),
      ["swp1", "swp2", "swp3", "swp4"],
    );
    assert.equal(xleaf?.ports[0]?.role, "xpnet");
    assert.equal(xleaf?.ports[0]?.mac, undefined, "switch ports get no generated MAC");
    const fabric = new FacilityBuilder("x").switch("f", { layer: "fabric", network: "xpnet", ports: 1, capacity: 1 });
    assert.equal(fabric.info.vxlan, true, "fabrics terminate VXLAN by default");
    assert.equal(validateFacility(JSON.parse(JSON.stringify(fac))).ok, true);
    assert.deepEqual(fac.tags, {
      vlan: { infranet: [{ first: 10, last: 20 }], xp: [{ first: 100, last: 200 }] },
      vni: [{ first: 5000, last: 5999 }],
    });
  });

  it("groups resources by kind in a fixed order and names cables by their ends", () => {
    const fac = tiny().build();
    assert.deepEqual(
      fac.resources.map((r) => r.id),
      ["ileaf", "xleaf", "n0", "ifr0"],
    );
    assert.deepEqual(
      fac.cables.map((c) => c.id),
      ["n0/eth0~ileaf/swp1", "n0/eth1~xleaf/swp1", "ifr0/eth0~ileaf/swp2"],
    );
    assert.equal(JSON.stringify(tiny().build()), JSON.stringify(fac), "same declarations, same JSON");
  });

  it("allocates uplinks and downlinks in order", () => {
    const f = new FacilityBuilder("up");
    const spine = f.switch("spine", { layer: "spine", network: "xpnet", ports: 4, capacity: gbps(100) });
    const leaf = f.switch("leaf", {
      layer: "leaf",
      network: "xpnet",
      ports: 2,
      capacity: gbps(10),
      uplinks: { count: 2, capacity: gbps(100) },
    });
    const cables = f.uplink(leaf, spine, 2);
    assert.deepEqual(
      cables.map((c) => [c.ends[0].port, c.ends[1].port]),
      [
        ["swp3", "swp1"],
        ["swp4", "swp2"],
      ],
    );
    assert.equal(leaf.resource.ports[2]?.capacity, 1e11);
    assert.throws(() => leaf.uplink(), /all 2 uplink ports are cabled/);
  });

  it("throws at the call for a duplicate id, an unknown port and a port cabled twice", () => {
    const f = tiny();
    assert.throws(() => f.node("n0", { cores: 1, memory: gb(1) }), /resource id n0 is already used by node n0/);
    assert.throws(
      () => f.node("n5", { cores: 2.5, memory: gb(1) }),
      /node n5: cores must be a whole number above 0, got 2.5/,
    );
    assert.throws(() => f.node("n6", { cores: 2, memory: 0 }), /node n6: memory must be a number of bytes above 0/);
    assert.throws(() => f.get("n0").port("eth9"), /node n0 has no port eth9 \(it has eth0, eth1, eth2\)/);
    assert.throws(
      () => f.cable(f.get("n0").port("eth0"), f.get("ileaf").port("swp4")),
      /n0\.eth0 is already cabled by n0\/eth0~ileaf\/swp1/,
    );
    assert.throws(
      () => f.cable({ resource: "nope", port: "eth0" }, f.get("ileaf").port("swp4")),
      /has no resource nope/,
    );
    assert.throws(() => f.cable(f.get("n0").port("eth2"), f.get("n0").port("eth2")), /both ends are the same port/);
  });

  it("build() reports whole-model errors as a FacilityModelError listing each problem", () => {
    const f = new FacilityBuilder("bad");
    f.node("lonely", { cores: 4, memory: gb(8), nics: [{ role: "xpnet", capacity: gbps(1) }] });
    f.vnis({ first: 10, last: 20 }, { first: 15, last: 30 });
    assert.throws(
      () => f.build(),
      (e: unknown) => {
        assert.ok(e instanceof FacilityModelError);
        const messages = e.problems.map((p) => `${p.element}: ${p.message}`);
        assert.ok(
          messages.some((m) => m.startsWith("node lonely: has no infranet port")),
          messages.join("\n"),
        );
        assert.ok(
          messages.some((m) => m.includes("tags.vni: VNI ranges 10-20 ([0]) and 15-30 ([1]) overlap")),
          messages.join("\n"),
        );
        assert.match(e.message, /facility bad: 2 problems/);
        return true;
      },
    );
    assert.equal(f.build({ validate: false }).resources.length, 1);
  });

  it("refuses a handle of another facility", () => {
    const a = new FacilityBuilder("a");
    const b = new FacilityBuilder("b");
    const leaf = a.switch("leaf", { layer: "leaf", network: "infranet", ports: 2, capacity: gbps(1) });
    const n = b.node("n", { cores: 1, memory: gb(1), nics: [{ role: "infranet", capacity: gbps(1) }] });
    assert.throws(() => a.connect(n, leaf), /node n belongs to facility b, not a/);
  });

  it("generates serial cable ids when asked", () => {
    const f = new FacilityBuilder("s", { cableIds: "serial", macs: false });
    const leaf = f.switch("l", { layer: "leaf", network: "infranet", ports: 2, capacity: 1 });
    const n = f.node("n", { cores: 1, memory: 1, nics: [{ role: "infranet", capacity: 1 }] });
    assert.equal(f.connect(n, leaf).id, "c0");
    assert.equal(n.resource.ports[0]?.mac, undefined);
  });
});
