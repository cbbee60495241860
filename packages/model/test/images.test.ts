// The image catalog: aliases compile to the catalog's names; an unknown image
// is one warning however many nodes use it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { canonicalImage, compileExperiment, image, Network } from "../src/index.ts";

test("aliases people write name catalog images", () => {
  const cases: [string, string][] = [
    ["ubuntu:1804", "1804"],
    ["1804", "1804"],
    ["Ubuntu-22.04", "2204"],
    ["jammy", "2204"],
    ["bookworm", "bookworm"],
    ["debian:12", "bookworm"],
    ["debian11", "bullseye"],
    ["debian:trixie", "trixie"],
    ["rockylinux:9", "rocky9"],
  ];
  for (const [alias, name] of cases) assert.equal(canonicalImage(alias), name, alias);
  assert.equal(canonicalImage("windows11"), undefined);
});

test("an aliased image compiles to the catalog's name, with no warning", () => {
  const net = new Network("aliases");
  const a = net.node("a", image("ubuntu:1804"));
  const b = net.node("b", image("debian:12"));
  net.connect([a, b]);
  const r = compileExperiment(net.toXIR());
  assert.equal(r.ok, true);
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(
    r.xir?.nodes.map((n) => n.image),
    ["1804", "bookworm"],
  );
});

test("an unknown image used by 512 nodes is one warning, naming how many", () => {
  const net = new Network("many");
  const hub = net.node("hub", image("winxp"));
  const rest = net.nodesNamed("n", 511, image("winxp"));
  net.connect([hub, ...rest]);
  net.connect([hub, net.node("odd", image("bookwrom"))]);
  const r = compileExperiment(net.toXIR());
  const warnings = r.diagnostics.filter((d) => d.code === "unknown-image");
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]?.message ?? "", /^512 nodes \(hub, n0, n1, .*\): unknown image "winxp"/);
  assert.equal(warnings[0]?.path, "nodes[0].image");
  assert.match(warnings[1]?.message ?? "", /^node odd: unknown image "bookwrom" \(did you mean "bookworm"\?\)/);
});
