// A wide-area facility's NAT for control access is part of its model (`hosts.<host>.nat`): the sample
// carries it when asked, a JSON model with it passes the schema and the checker, and every bad field is
// refused naming the field and what would be valid.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  checkFacility,
  checkFacilityDocument,
  FacilityModelError,
  WIDE_AREA_NAT,
  wideArea,
} from "@merge/facility-model";
import type { Facility, HostNat } from "@merge/xir";

const ADDRESSES = ["203.0.113.10", "203.0.113.11", "203.0.113.12"];

/** The sample with NAT, as loaded from a JSON file: a plain document. */
function loaded(): Facility {
  return JSON.parse(JSON.stringify(wideArea({ sites: 3, nat: { addresses: ADDRESSES } }))) as Facility;
}

/** `element: message` of every error of the document. */
function errors(doc: unknown): string[] {
  return checkFacilityDocument(doc)
    .problems.filter((p) => p.severity === "error")
    .map((p) => `${p.element}: ${p.message}`);
}

function withNat(host: string, nat: Partial<HostNat> | Record<string, unknown>): Facility {
  const f = loaded();
  const hosts = f.hosts as Record<string, { nat: HostNat }>;
  hosts[host] = { nat: { ...(hosts[host]?.nat as HostNat), ...nat } as HostNat };
  return f;
}

test("the wide-area sample carries each site's NAT: its public address and the ports a node gets", () => {
  const f = wideArea({ sites: 3, nat: { addresses: ADDRESSES, perNode: 5 } });
  assert.deepEqual(f.hosts, {
    site0: { nat: { address: ADDRESSES[0], first: WIDE_AREA_NAT.first, last: WIDE_AREA_NAT.last, perNode: 5 } },
    site1: { nat: { address: ADDRESSES[1], first: WIDE_AREA_NAT.first, last: WIDE_AREA_NAT.last, perNode: 5 } },
    site2: { nat: { address: ADDRESSES[2], first: WIDE_AREA_NAT.first, last: WIDE_AREA_NAT.last, perNode: 5 } },
  });
  assert.deepEqual(errors(loaded()), [], "a valid model with NAT, from JSON");
  assert.equal(wideArea({ sites: 3 }).hosts, undefined, "no NAT unless asked");
  assert.deepEqual(checkFacility(wideArea({ sites: 3 })), checkFacility(wideArea({ sites: 3 })));
});

test("a bad NAT field is refused naming the field and what would be valid", () => {
  assert.deepEqual(errors(withNat("site1", { first: 80 })), [
    "hosts.site1.nat.first: port 80 is not usable: expected a whole number within 1024-65535 (e.g. first 20000, last 29999)",
  ]);
  assert.deepEqual(errors(withNat("site1", { first: 30000 })), [
    "hosts.site1.nat.last: 29999 is below first (30000): expected first ≤ last (e.g. 20000-29999)",
  ]);
  assert.deepEqual(errors(withNat("site2", { last: 20009, perNode: 11 })), [
    "hosts.site2.nat.perNode: 11 ports a node: expected a whole number from 1 to 10",
  ]);
  assert.deepEqual(errors(withNat("site0", { address: "site0.example" })), [
    "hosts.site0.nat.address: 'site0.example' is not an IPv4 address: expected the address people reach the host on, e.g. 203.0.113.7",
  ]);
  // Two hosts behind one address: their blocks must not overlap (one port, two nodes).
  assert.deepEqual(errors(withNat("site1", { address: ADDRESSES[0], first: 29000, last: 39999 })), [
    "hosts.site1.nat: ports 29000-39999 on 203.0.113.10 overlap host site0's 20000-29999 on the same address: expected disjoint ranges",
  ]);
  assert.deepEqual(errors(withNat("site1", { address: ADDRESSES[0], first: 30000, last: 39999 })), []);
  // A host no resource is on.
  assert.deepEqual(errors(withNat("site9", { address: "203.0.113.19", first: 20000, last: 20099, perNode: 10 })), [
    "hosts.site9: no resource is on host site9: expected one of the hosts resources name (site0, site1, site2)",
  ]);
  // The schema's part: types and fields, with their paths.
  const missing = loaded();
  const site1 = missing.hosts?.site1?.nat as Partial<HostNat>;
  delete site1.perNode;
  assert.deepEqual(errors(missing), ["hosts.site1.nat.perNode: is required"]);
  assert.match(errors(withNat("site1", { first: "20000" })).join("\n"), /^hosts\.site1\.nat\.first: must be integer/);
  assert.match(errors(withNat("site1", { port: 22 })).join("\n"), /^hosts\.site1\.nat\.port: is not a known field/);
});

test("the sample refuses NAT it cannot give, naming the field", () => {
  assert.throws(
    () => wideArea({ sites: 3, nat: { addresses: ADDRESSES.slice(0, 2) } }),
    /nat\.addresses has 2 addresses: expected one a site \(3\)/,
  );
  assert.throws(
    () => wideArea({ sites: 2, nat: { addresses: ["203.0.113.1", "203.0.113.2"], first: 80 } }),
    (e: unknown) =>
      e instanceof FacilityModelError &&
      /hosts\.site0\.nat\.first: port 80 is not usable/.test(e.message) &&
      /hosts\.site1\.nat\.first/.test(e.message),
  );
});
