import assert from "node:assert/strict";
import { test } from "node:test";
import { validateFacility } from "@merge/xir";
import { facilityHosts, hostOf, phobos, resourcesOn, spreadOverHosts } from "../src/index.ts";

test("spreadOverHosts: testbed nodes round robin, infrastructure on the first host, switches on none", () => {
  const f = spreadOverHosts(phobos(), ["h0", "h1", "h2"]);
  assert.ok(validateFacility(f).ok);
  assert.deepEqual(facilityHosts(f), ["h0", "h1", "h2"]);
  assert.deepEqual(
    ["n0", "n1", "n2", "n3", "ifr0", "emu0", "stor0", "gw0", "ileaf"].map((r) => hostOf(f, r)),
    ["h0", "h1", "h2", "h0", "h0", "h0", "h0", "h0", undefined],
  );
  assert.deepEqual(
    resourcesOn(f, "h1").map((r) => r.id),
    ["n1"],
  );
  // The model of one machine: no host anywhere, everything on the facility's own.
  assert.deepEqual(facilityHosts(phobos()), []);
  assert.equal(resourcesOn(phobos(), undefined).length, 8);
});

test("spreadOverHosts refuses bad or repeated host names, naming them", () => {
  assert.throws(() => spreadOverHosts(phobos(), []), /at least one host/);
  assert.throws(() => spreadOverHosts(phobos(), ["a b"]), /host name 'a b' is not valid/);
  assert.throws(() => spreadOverHosts(phobos(), ["h0", "h0"]), /host names repeat: h0, h0/);
});
