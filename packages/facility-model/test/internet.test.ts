import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkResourceInternet,
  FacilityModelError,
  generateResourceInternet,
  InternetBuilder,
  joinFacilities,
  phobos,
} from "@merge/facility-model";
import { canonicalJSON, gbps, type Interconnect, ms, validateResourceInternet } from "@merge/xir";

function link(over: Partial<Interconnect> = {}): Interconnect {
  return {
    id: "pd",
    a: { facility: "phobos", resource: "gw0", port: "eth3" },
    b: { facility: "deimos", resource: "gw0", port: "eth3" },
    capacity: gbps(10),
    latency: ms(5),
    shared: true,
    ...over,
  };
}

function errorsOf(ics: Interconnect[]): string[] {
  return checkResourceInternet({ facilities: [phobos(), phobos({ name: "deimos" })], interconnects: ics })
    .filter((p) => p.severity === "error")
    .map((p) => `${p.element}: ${p.message}`);
}

describe("resource internet", () => {
  it("joins facilities through gateway ports", () => {
    const ri = joinFacilities([phobos(), phobos({ name: "deimos" })], [link()]);
    assert.equal(ri.facilities.length, 2);
    assert.equal(validateResourceInternet(JSON.parse(JSON.stringify(ri))).ok, true);
  });

  it("the builder picks free gateway ports and marks links shared by default", () => {
    const b = new InternetBuilder().add(phobos(), phobos({ name: "deimos" }));
    const first = b.connect("phobos", "deimos", { capacity: gbps(10), latency: ms(20) });
    const second = b.connect("phobos", "deimos", { capacity: gbps(1), latency: ms(3), shared: false });
    assert.deepEqual(first.a, { facility: "phobos", resource: "gw0", port: "eth3" });
    assert.deepEqual(second.a, { facility: "phobos", resource: "gw0", port: "eth4" });
    assert.equal(first.shared, true);
    assert.equal(second.shared, false);
    assert.throws(
      () => b.connect("phobos", "deimos", { capacity: 1, latency: 1 }),
      /facility phobos: no free gateway port/,
    );
    assert.equal(b.build().interconnects.length, 2);
  });

  it("reports an unknown facility, gateway, port, a non-gateway end and a port used twice", () => {
    const cases: [Interconnect[], string][] = [
      [
        [link({ a: { facility: "mars", resource: "gw0", port: "eth3" } })],
        "interconnect pd: end a names facility mars, which is not in the resource internet",
      ],
      [
        [link({ b: { facility: "deimos", resource: "gw9", port: "eth3" } })],
        "interconnect pd: end b names resource gw9, which facility deimos does not have",
      ],
      [
        [link({ b: { facility: "deimos", resource: "gw0", port: "eth9" } })],
        "interconnect pd: end b names port eth9 of gateway gw0 (facility deimos), which has no such port (gateway ports: eth3, eth4)",
      ],
      [
        [link({ b: { facility: "deimos", resource: "n0", port: "eth1" } })],
        "interconnect pd: end b is on node n0 of facility deimos; interconnects end on gateways",
      ],
      [
        [link({ b: { facility: "deimos", resource: "gw0", port: "eth2" } })],
        "interconnect pd: end b: port gw0.eth2 of facility deimos has role xpnet, not gateway",
      ],
      [
        [link(), link({ id: "again", a: { facility: "phobos", resource: "gw0", port: "eth4" } })],
        "interconnect again: gateway port deimos/gw0/eth3 is already used by interconnect pd",
      ],
    ];
    for (const [ics, expected] of cases) assert.deepEqual(errorsOf(ics), [expected]);
  });

  it("reports bad link properties, same-facility ends, duplicate ids and facility names", () => {
    const found = errorsOf([
      link({ capacity: 0, latency: -1 }),
      link({ b: { facility: "phobos", resource: "gw0", port: "eth4" } }),
    ]);
    assert.ok(found.includes("interconnect pd: capacity must be a positive number of bits/s, got 0"), found.join("\n"));
    assert.ok(found.includes("interconnect pd: latency must be a non-negative number of ns, got -1"));
    assert.ok(found.includes("interconnect pd: duplicate interconnect id pd"));
    assert.ok(
      found.includes("interconnect pd: both ends are in facility phobos; interconnects join different facilities"),
    );
    const dup = checkResourceInternet({ facilities: [phobos(), phobos()], interconnects: [] });
    assert.ok(dup.some((p) => p.message.includes("is in the resource internet twice")));
  });

  it("reports a malformed interconnect from JSON instead of crashing", () => {
    const bad = [
      { id: "x", a: null },
      { id: "y", a: { facility: "phobos", resource: "gw0", port: "eth3" }, b: { facility: "deimos", resource: "gw0" } },
      { ...link(), id: "z", latency: "5ms" },
      7,
    ] as unknown as Interconnect[];
    assert.deepEqual(errorsOf(bad), [
      "interconnects[0]: a must be a gateway port {facility, resource, port}",
      "interconnects[1]: b.port must be a string",
      "interconnects[2]: latency must be a number of ns",
      "interconnects[3]: must be an object {id, a, b, capacity, latency, shared}",
    ]);
  });

  it("prefixes each facility's own problems with its name; joinFacilities throws on errors", () => {
    const broken = phobos({ name: "deimos" });
    broken.cables = broken.cables.filter((c) => !(c.ends[0].resource === "n0" && c.ends[0].port === "eth0"));
    const problems = checkResourceInternet({ facilities: [phobos(), broken], interconnects: [] });
    assert.ok(problems.some((p) => p.element === "facility deimos: node n0" && p.message.includes("not cabled")));
    assert.throws(() => joinFacilities([phobos(), broken], []), FacilityModelError);
  });

  it("generateResourceInternet: a valid full mesh, deterministic for a seed", () => {
    const ri = generateResourceInternet({ facilities: 3, nodesPerFacility: 300, seed: 4 });
    assert.deepEqual(
      ri.facilities.map((f) => f.name),
      ["site0", "site1", "site2"],
    );
    assert.equal(ri.interconnects.length, 3);
    assert.deepEqual(
      checkResourceInternet(ri).filter((p) => p.severity === "error"),
      [],
    );
    assert.equal(
      canonicalJSON(ri),
      canonicalJSON(generateResourceInternet({ facilities: 3, nodesPerFacility: 300, seed: 4 })),
    );
    for (const ic of ri.interconnects) {
      assert.ok(ic.latency >= ms(1) && ic.latency <= ms(40));
      assert.ok(ic.capacity >= gbps(1));
    }
    // Facilities differ from one another.
    assert.notEqual(canonicalJSON(ri.facilities[0]?.resources), canonicalJSON(ri.facilities[1]?.resources));
  });
});
