/**
 * The wide-area facility of shared hosts (facility-model's `wideArea` sample,
 * ProtoGENI "version zero"): at most one node of an experiment per shared
 * host, links between hosts tagged as VXLAN segments, and what the hosts'
 * agents measured free bounds what a host accepts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { wideArea } from "@merge/facility-model";
import {
  AllocationTable,
  checkRealizations,
  formatProblem,
  type MeasuredRoom,
  prepareInternet,
  realize,
} from "@merge/realize";
import type { Experiment, ResourceInternet } from "@merge/xir";
import { c, experiment, GiB, node } from "./fixtures.ts";

const MiB = 2 ** 20;
const net: ResourceInternet = { facilities: [wideArea()], interconnects: [] };

/** `count` containers of `memory` bytes on one LAN. */
function lan(name: string, count: number, memory = 512 * MiB): Experiment {
  const ns = Array.from({ length: count }, (_, i) => node(`n${i}`, [c("memory.capacity", "==", memory)]));
  return experiment(name, ns, [{ ends: ns.map((n) => n.name) }]);
}

const why = (r: ReturnType<typeof realize>) => (r.ok ? "" : r.problems.map(formatProblem).join("; "));

test("the wide-area sample: one node per experiment on each shared host, links as VXLAN segments between hosts", () => {
  const table = new AllocationTable();
  const x = lan("x", 4);
  const r = realize(x, net, table, { id: "r.x.p" });
  if (!r.ok) assert.fail(why(r));
  const hosts = r.realization.nodes.map((n) => n.resource).sort();
  assert.deepEqual(hosts, ["s0", "s1", "s2", "s3"], "four nodes on four shared hosts");
  assert.deepEqual(checkRealizations(net, [{ experiment: x, realization: r.realization }]), []);
  assert.ok(
    JSON.stringify(r.realization.links).includes('"vni"'),
    `the LAN across hosts is tagged with a VNI: ${JSON.stringify(r.realization.links).slice(0, 400)}`,
  );
  assert.deepEqual(table.reserve(r.records, prepareInternet(net)), { ok: true });
  // Another experiment shares the same hosts.
  const y = realize(lan("y", 4), net, table, { id: "r.y.p" });
  assert.ok(y.ok, why(y));
  // Five nodes of one experiment need five shared hosts; there are four.
  const five = realize(lan("z", 5), net, table, { id: "r.z.p" });
  assert.equal(five.ok, false);
  assert.match(why(five), /s\d already has this experiment's one node \(one-per-experiment\)/);
});

test("measured free memory bounds what a shared host accepts, and the refusal names the host and the figure", () => {
  const room = (memory: number): MeasuredRoom[] => [
    { facility: "geni", host: "site2", resources: ["s2"], cores: 0.5, memory, disk: 50 * GiB },
  ];
  // site2 measures 256 MiB free: four nodes of 512 MiB do not fit on the four hosts.
  const busy = realize(lan("x", 4), net, new AllocationTable(), { id: "r.x.p", measured: room(256 * MiB) });
  assert.equal(busy.ok, false);
  assert.match(why(busy), /s2 on host site2 has 256 MiB memory free, as its agent measured/);
  // Three fit elsewhere; s2 is left out.
  const three = realize(lan("x", 3), net, new AllocationTable(), { id: "r.x.p", measured: room(256 * MiB) });
  if (!three.ok) assert.fail(why(three));
  assert.ok(!three.realization.nodes.some((n) => n.resource === "s2"));
  // Memory freed up on site2: it takes its node again (free cores are no limit: they are time-shared).
  const freed = realize(lan("x", 4), net, new AllocationTable(), { id: "r.x.p", measured: room(2 * GiB) });
  assert.ok(freed.ok, why(freed));
  // The model still bounds it: 16 GB modeled, 64 GiB measured free, a 20 GiB node does not fit.
  const big = realize(lan("b", 1, 20 * GiB), net, new AllocationTable(), { id: "r.b.p", measured: room(64 * GiB) });
  assert.equal(big.ok, false);
});
