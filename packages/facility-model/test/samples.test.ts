import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkFacility, phobos, resourceDetail, SAMPLES, summarize, twoRack } from "@merge/facility-model";
import { type Facility, satisfies, validateFacility } from "@merge/xir";

function nodes(f: Facility) {
  return f.resources.filter((r) => r.kind === "node");
}

describe("samples", () => {
  for (const [name, make] of Object.entries(SAMPLES)) {
    it(`${name} is schema-valid and has no problems`, () => {
      const f = make();
      const schema = validateFacility(JSON.parse(JSON.stringify(f)));
      assert.equal(schema.ok, true, JSON.stringify(schema));
      assert.deepEqual(checkFacility(f), []);
    });
  }

  it("phobos: 4 nodes, infrapod server, storage, emulator, mgmt/infranet/xpnet leaves", () => {
    const f = phobos();
    const s = summarize(f);
    assert.equal(s.nodes.total, 4);
    assert.equal(s.byKind["infrapod-server"], 1);
    assert.equal(s.byKind.storage, 1);
    assert.equal(s.byKind.emulator, 1);
    assert.deepEqual(
      s.switches.map((x) => `${x.network}/${x.layer}`),
      ["xpnet/leaf", "infranet/leaf", "mgmt/leaf"],
    );
    // The demo: a 3-node line on bare metal, and a 25-node LAN of VMs.
    const metal = nodes(f).filter((n) => n.alloc.includes("physical"));
    const hypervisors = nodes(f).filter((n) => n.alloc.includes("virtual"));
    assert.ok(metal.length >= 3);
    assert.ok(hypervisors.length >= 2);
    const vmCores = hypervisors.reduce((a, n) => a + (n.props["proc.cores"] as number), 0);
    assert.ok(vmCores >= 25, "25 one-core VMs fit on the hypervisors");
    // Constraints match through the generic semantics.
    const big = nodes(f).filter((n) =>
      satisfies(n.props["memory.capacity"], { prop: "memory.capacity", op: ">=", value: 64 * 2 ** 30 }),
    );
    assert.equal(big.length, 4);
    // Every node has xpnet ports on the xpnet leaf, the emulator too.
    for (const n of nodes(f)) {
      assert.equal(n.ports.filter((p) => p.role === "xpnet").length, 2);
      assert.ok(f.cables.some((c) => c.ends[0].resource === n.id && c.ends[1].resource === "xleaf"));
    }
    assert.ok(f.cables.some((c) => c.ends[0].resource === "emu0" && c.ends[1].resource === "xleaf"));
  });

  it("phobos can be made again under another name for a second facility", () => {
    const deimos = phobos({ name: "deimos" });
    assert.equal(deimos.name, "deimos");
    const macs = (f: Facility) => new Set(f.resources.flatMap((r) => r.ports.map((p) => p.mac)).filter(Boolean));
    const a = macs(phobos());
    for (const m of macs(deimos)) assert.ok(!a.has(m), `MAC ${m} appears in both facilities`);
  });

  it("two-rack: 40 heterogeneous nodes, 2 xpnet leaves under a spine, infranet leaves, emulator", () => {
    const f = twoRack();
    const s = summarize(f);
    assert.equal(s.nodes.total, 40);
    assert.deepEqual(
      s.switches.map((x) => `${x.network}/${x.layer}:${x.count}`),
      ["xpnet/spine:1", "xpnet/leaf:2", "infranet/spine:1", "infranet/leaf:2", "mgmt/leaf:1"],
    );
    assert.equal(s.byKind.emulator, 1);
    assert.ok(s.hardware.length >= 4);
    assert.equal(s.gpus, 16);
    assert.equal(s.nodes.both + s.nodes.virtual, 12);
    assert.deepEqual(
      s.vlanPools.map((p) => p.domain),
      ["infranet-r1", "infranet-r2", "xpnet-r1", "xpnet-r2"],
    );
    const racks = new Set(nodes(f).map((n) => n.props.rack));
    assert.deepEqual([...racks], ["r1", "r2"]);
  });

  it("resourceDetail says where each port of a resource is cabled", () => {
    const f = phobos();
    const d = resourceDetail(f, "emu0");
    assert.ok(d);
    assert.deepEqual(
      d.ports.map((p) => [p.port.name, p.peer ? `${p.peer.resource}.${p.peer.port}` : "-"]),
      [
        ["eth0", "mleaf.swp9"],
        ["eth1", "xleaf.swp9"],
        ["eth2", "xleaf.swp10"],
      ],
    );
    const gw = resourceDetail(f, "gw0");
    assert.equal(gw?.ports.find((p) => p.port.role === "gateway")?.cable, undefined);
    assert.equal(resourceDetail(f, "nope"), undefined);
  });
});
