/**
 * Bandwidth-aware placement, best-effort answers and MergeTB's VM default,
 * on the shapes the issues name: the homogeneous 1,000-PC testbed (5 leaves,
 * 10 Gbit/s trunks) with sparse random experiments, and the phobos demo
 * facility with a published 52-node MX shape.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateHomogeneousFacility, phobos } from "@merge/facility-model";
import { checkRealizations, formatProblem, prepareInternet, realize } from "@merge/realize";
import { gbps, type ResourceInternet } from "@merge/xir";
import { c, experiment, GiB, node } from "./fixtures.ts";
import { runSuite, SUITES, trunkUse } from "./suites.ts";
import { random, sparseExperiment } from "./workload.ts";

const homogeneous: ResourceInternet = { facilities: [generateHomogeneousFacility()], interconnects: [] };
const homogeneousIx = prepareInternet(homogeneous);

for (const size of [300, 400]) {
  test(`homogeneous 1,000 PCs: ${size} sparse random nodes at 100 Mbit/s realize, the checker finds nothing`, () => {
    const x = sparseExperiment(random(size), `homog${size}`, size);
    assert.equal(x.links.length, Math.round(size * 1.5));
    const r = realize(x, homogeneousIx, undefined, { id: `r.homog${size}.p` });
    assert.ok(r.ok, r.ok ? "" : r.problems.map(formatProblem).join("\n"));
    assert.deepEqual(checkRealizations(homogeneous, [{ experiment: x, realization: r.realization }]), []);
    // The trunks were the constraint: some links cross them, none over capacity.
    const use = trunkUse(homogeneous, r.records);
    assert.ok(use.interSwitch > 0 && use.busiest <= 1, JSON.stringify(use));
  });
}

test("the same input and seed give the same realization; the seed is an input", () => {
  const x = sparseExperiment(random(7), "det", 400);
  const one = realize(x, homogeneousIx, undefined, { id: "r.det.p", seed: 3 });
  const two = realize(x, prepareInternet(homogeneous), undefined, { id: "r.det.p", seed: 3 });
  assert.ok(one.ok && two.ok);
  assert.deepEqual(two.realization, one.realization);
  assert.deepEqual(two.records, one.records);
  const other = realize(x, homogeneousIx, undefined, { id: "r.det.p", seed: 4 });
  assert.ok(other.ok);
  assert.deepEqual(checkRealizations(homogeneous, [{ experiment: x, realization: other.realization }]), []);
});

test("best effort: trunks too small for any mapping give the closest one, every unmet link named", () => {
  // 1 Gbit/s trunks: 10 links of 100 Mbit/s per leaf; 400 nodes cannot stay under one leaf of 200.
  const net: ResourceInternet = { facilities: [generateHomogeneousFacility({ trunk: gbps(1) })], interconnects: [] };
  const ix = prepareInternet(net);
  const x = sparseExperiment(random(11), "tight", 400);
  const refused = realize(x, ix, undefined, { id: "r.tight.p" });
  assert.equal(refused.ok, false);
  assert.ok(!refused.ok && refused.closest === undefined, "the normal mode refuses without a mapping");
  const best = realize(x, ix, undefined, { id: "r.tight.p", bestEffort: true, maxProblems: 1000 });
  assert.ok(!best.ok, "best effort never turns a violation into a realization");
  const closest = best.closest!;
  assert.equal(closest.nodes.length, 400);
  assert.equal(closest.links.length, x.links.length);
  const lines = best.problems.map(formatProblem);
  assert.ok(lines.length > 0);
  for (const l of lines) {
    assert.match(
      l,
      /^link l\d+: no path between n\d+ and n\d+ with 100 Mbit\/s free; the closest mapping routes it anyway, over-committing homog-1000\/xfab0—homog-1000\/xleaf\d: [\d.]+ Gbit\/s reserved of 1 Gbit\/s/,
    );
  }
  // The checker sees exactly the over-commitment the answer admits to.
  const violations = checkRealizations(net, [{ experiment: x, realization: closest }]);
  assert.ok(violations.length > 0);
  assert.ok(
    violations.every((v) => / bit\/s reserved on \d+ bit\/s$/.test(v.message)),
    JSON.stringify(violations.slice(0, 3)),
  );
});

test("best effort: a node no resource can take is left out and its links say why", () => {
  const x = experiment(
    "huge",
    [node("a"), node("b"), node("big", [c("memory.capacity", ">=", 100_000 * GiB)])],
    [{ ends: ["a", "b"] }, { ends: ["b", "big"] }],
  );
  const r = realize(x, { facilities: [phobos()], interconnects: [] }, undefined, { bestEffort: true });
  assert.ok(!r.ok);
  assert.deepEqual(
    r.closest!.nodes.map((n) => n.node),
    ["a", "b"],
  );
  assert.deepEqual(
    r.closest!.links.map((l) => l.link),
    ["l0"],
  );
  const lines = r.problems.map(formatProblem);
  assert.match(lines[0]!, /^node big: memory\.capacity >= /);
  assert.equal(lines[1], "link l1: not realized: its endpoint big has no resource");
});

/** A published MergeTB MX shape: two LANs of 25 clients, each with its server, the servers joined: 52 nodes. */
function twoLans() {
  const nodes = [node("s0"), node("s1")];
  const links: { ends: string[] }[] = [{ ends: ["s0", "s1"] }];
  for (const lan of [0, 1]) {
    const clients = Array.from({ length: 25 }, (_, i) => `c${lan}_${i}`);
    for (const n of clients) nodes.push(node(n));
    links.push({ ends: [`s${lan}`, ...clients] });
  }
  return experiment("mx52", nodes, links);
}

test("phobos: 52 nodes with no metal constraint realize as VMs (MergeTB's default)", () => {
  const net: ResourceInternet = { facilities: [phobos()], interconnects: [] };
  const x = twoLans();
  assert.equal(x.nodes.length, 52);
  const r = realize(x, net, undefined, { id: "r.mx52.p" });
  assert.ok(r.ok, r.ok ? "" : r.problems.map(formatProblem).join("\n"));
  assert.ok(r.realization.nodes.every((n) => n.mode === "virtual"));
  assert.deepEqual(checkRealizations(net, [{ experiment: x, realization: r.realization }]), []);
  // Asked for, bare metal is still given.
  const metal = experiment("m", [node("a", [c("metal", "==", true)]), node("b")], [{ ends: ["a", "b"] }]);
  const rm = realize(metal, net);
  assert.ok(rm.ok);
  assert.deepEqual(
    rm.realization.nodes.map((n) => n.mode),
    ["physical", "virtual"],
  );
});

test("phobos: when nodes with no metal constraint took whole hypervisors, the refusal says so and suggests metal == false", () => {
  // Sockets asking for the i40e NIC can only be bare metal: three such nodes take n3, then n0 and n1 (both
  // hypervisor-capable), leaving n2's 32 cores for VMs; 40 VMs of one core do not fit.
  const nics = [c("port.model", "==", "i40e")];
  const nodes = [0, 1, 2].map((i) => node(`p${i}`, [], 1, [nics]));
  for (let i = 0; i < 40; i++) nodes.push(node(`v${i}`, [c("metal", "==", false)]));
  const x = experiment("crowd", nodes, [{ ends: nodes.map((n) => n.name) }]);
  const r = realize(x, { facilities: [phobos()], interconnects: [] });
  assert.ok(!r.ok);
  const first = formatProblem(r.problems[0]!);
  assert.match(first, /^node v\d+: metal == false: no free resource has it/);
  assert.match(
    first,
    /2 nodes of this experiment with no metal constraint \(p\d, p\d\) took whole machines that could host VMs: give nodes that need not be bare metal `metal == false`/,
  );
});

for (const [suite, what] of [
  ["homogeneous", "up to 95 % of the PCs"],
  [
    "heterogeneous",
    "hardware classes and hypervisors, up to 95 % of the bare metal, node constraints from the planted host",
  ],
  ["trunk-tight", "trunks planted at up to 95 %"],
] as const) {
  test(`planted suites: every ${suite} instance realizes (${what}), with no checker violations`, () => {
    const { figures, results } = runSuite(SUITES[suite]!());
    const refused = results.flatMap((r) => (r.ok ? [] : r.problems.slice(0, 3).map(formatProblem)));
    assert.equal(figures.success_rate, 1, `${JSON.stringify(figures)}\n${refused.join("\n")}`);
    assert.equal(figures.realized, figures.instances);
    assert.equal(figures.checker_violations, 0);
    assert.ok(figures.busiest_trunk <= 1);
  });
}
