import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkFacility, generateFacility, summarize } from "@merge/facility-model";
import { canonicalJSON, type Facility, validateFacility } from "@merge/xir";

function uplinkOf(f: Facility, leaf: string): string[] {
  return f.cables.flatMap((c) =>
    c.ends[0].resource === leaf ? [c.ends[1].resource] : c.ends[1].resource === leaf ? [c.ends[0].resource] : [],
  );
}

describe("generateFacility", () => {
  it("is deterministic for a seed and differs across seeds", () => {
    const a = canonicalJSON(generateFacility({ nodes: 500, seed: 7 }));
    const b = canonicalJSON(generateFacility({ nodes: 500, seed: 7 }));
    const c = canonicalJSON(generateFacility({ nodes: 500, seed: 8 }));
    assert.equal(a, b);
    assert.notEqual(a, c);
  });

  it("1,000 nodes: valid, racks of 40 under leaves, pods under fabrics, heterogeneous", () => {
    const f = generateFacility({ nodes: 1000, seed: 3 });
    assert.equal(validateFacility(JSON.parse(JSON.stringify(f))).ok, true);
    assert.deepEqual(
      checkFacility(f).filter((p) => p.severity === "error"),
      [],
    );
    const s = summarize(f);
    assert.equal(s.nodes.total, 1000);
    // 25 racks of 40: an xpnet and an infranet leaf each; 2 pods (16 racks each) with fabrics, and spines.
    const count = (network: string, layer: string) =>
      s.switches.find((x) => x.network === network && x.layer === layer)?.count;
    assert.equal(count("xpnet", "leaf"), 25);
    assert.equal(count("infranet", "leaf"), 25);
    assert.equal(count("xpnet", "fabric"), 2);
    assert.equal(count("xpnet", "spine"), 2);
    assert.equal(s.byKind.emulator, 2);
    assert.ok(s.byKind["infrapod-server"] >= 1 && s.byKind.storage >= 1 && s.byKind.gateway >= 1);
    assert.deepEqual(
      s.vlanPools.map((p) => `${p.domain}:${p.ids}`),
      ["infranet-p0:4093", "infranet-p1:4093", "xpnet-p0:4093", "xpnet-p1:4093"],
    );
    const rack0 = f.resources.filter((r) => r.kind === "node" && r.props.rack === "r0");
    assert.equal(rack0.length, 40);
    assert.deepEqual(new Set(uplinkOf(f, "xleaf0")).has("xfab0"), true);
    assert.deepEqual(new Set(uplinkOf(f, "xfab1")).has("xspine0"), true);
    // Heterogeneous: several hardware classes, platforms, GPUs, NIC counts and speeds.
    assert.ok(s.hardware.length >= 5, s.hardware.map((h) => h.name).join());
    assert.ok(Object.keys(s.platforms).length >= 3);
    assert.ok(s.gpus > 0);
    assert.ok(new Set(s.hardware.map((h) => h.xpnetPorts)).size >= 3);
    assert.ok(new Set(s.hardware.map((h) => h.xpnetCapacity)).size >= 3);
    // About 20% hypervisors, all of hypervisor-capable classes.
    const hyper = s.nodes.both + s.nodes.virtual;
    assert.ok(hyper > 150 && hyper < 250, `${hyper} hypervisors`);
    for (const h of s.hardware) if (h.hypervisors > 0) assert.ok(["r430", "r740", "altra"].includes(h.name), h.name);
  });

  it("honours racks, hypervisorShare and the infrastructure counts", () => {
    const f = generateFacility({ nodes: 90, racks: 2, seed: 1, hypervisorShare: 0, emulatorsPerPod: 2, gateways: 2 });
    const s = summarize(f);
    assert.equal(s.nodes.total, 90);
    assert.equal(s.nodes.both + s.nodes.virtual, 0);
    assert.equal(f.resources.filter((r) => r.kind === "node" && r.props.rack === "r0").length, 45);
    assert.equal(s.byKind.emulator, 2);
    assert.equal(s.byKind.gateway, 2);
    assert.equal(
      s.switches.find((x) => x.layer === "spine"),
      undefined,
      "one pod needs no spines",
    );
    assert.deepEqual(
      checkFacility(f).filter((p) => p.severity === "error"),
      [],
    );
    const all = generateFacility({ nodes: 100, seed: 1, hypervisorShare: 1 });
    assert.equal(summarize(all).nodes.physical, 0);
  });

  it("100,000 nodes: valid, the right size, every node reachable on its infranet", () => {
    const f = generateFacility({ nodes: 100_000, seed: 1 });
    const s = summarize(f);
    assert.equal(s.nodes.total, 100_000);
    assert.equal(s.switches.find((x) => x.network === "xpnet" && x.layer === "leaf")?.count, 2500);
    assert.ok(s.byKind.emulator >= 100);
    assert.deepEqual(
      checkFacility(f).filter((p) => p.severity === "error"),
      [],
    );
  });

  it("rejects a nonsensical size", () => {
    assert.throws(() => generateFacility({ nodes: -1 }), /nodes must be a whole number/);
    assert.throws(() => generateFacility({ nodes: 10, racks: 0 }), /racks must be >= 1/);
  });
});
