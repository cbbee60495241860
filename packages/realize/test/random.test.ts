/**
 * Randomized: hundreds of generated experiments on generated facilities and
 * two-facility resource internets, several realizations held at once, some
 * freed. Every realization the engine returns must pass the independent
 * checker together with everything else held, and reserve cleanly; every
 * refusal must come with problems; feasible instances must always succeed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateFacility, generateResourceInternet } from "@merge/facility-model";
import { AllocationTable, checkRealizations, formatProblem, prepareInternet, realize } from "@merge/realize";
import { canonicalJSON, type Experiment, type Realization, type ResourceInternet } from "@merge/xir";
import { feasibleExperiment, random, randomExperiment } from "./workload.ts";

const TRIALS = 80;

function internetFor(seed: number, rand: () => number): ResourceInternet {
  if (seed % 4 === 3) {
    return generateResourceInternet({
      facilities: 2,
      nodesPerFacility: 30 + Math.floor(rand() * 50),
      seed,
      facility: { rackSize: 8 + Math.floor(rand() * 16), racksPerPod: 2 + Math.floor(rand() * 3) },
    });
  }
  const f = generateFacility({
    nodes: 30 + Math.floor(rand() * 150),
    seed,
    rackSize: 6 + Math.floor(rand() * 30),
    racksPerPod: 2 + Math.floor(rand() * 6),
    hypervisorShare: rand() * 0.5,
  });
  return { facilities: [f], interconnects: [] };
}

test(`randomized: ${TRIALS} facilities × 5 experiments pass the independent checker`, () => {
  let realized = 0;
  let refused = 0;
  let external = 0;
  let emulated = 0;
  let directions = 0;
  let virtual = 0;
  for (let seed = 0; seed < TRIALS; seed++) {
    const rand = random(seed * 7919 + 1);
    const net = internetFor(seed, rand);
    const ix = prepareInternet(net);
    const table = new AllocationTable();
    const held: { experiment: Experiment; realization: Realization }[] = [];
    for (let k = 0; k < 5; k++) {
      const x = randomExperiment(rand, `x${seed}-${k}`, 2 + Math.floor(rand() * 30));
      const id = `r${k}.${x.name}.p`;
      const r = realize(x, ix, table, { id });
      if (k === 0) assert.equal(canonicalJSON(realize(x, ix, table, { id })), canonicalJSON(r), "deterministic");
      if (!r.ok) {
        refused++;
        assert.ok(r.problems.length > 0);
        for (const p of r.problems) assert.ok(formatProblem(p).length > p.name.length + 3, "a problem says something");
        continue;
      }
      realized++;
      const reserved = table.reserve(r.records, ix);
      assert.deepEqual(reserved, { ok: true }, `seed ${seed} ${x.name}: records over-commit the table`);
      held.push({ experiment: x, realization: r.realization });
      const violations = checkRealizations(net, held);
      assert.deepEqual(violations, [], `seed ${seed} ${x.name}`);
      external += r.realization.links.filter((l) => l.external).length;
      emulated += r.realization.links.filter((l) => l.emulator).length;
      directions += r.realization.links.reduce((n, l) => n + (l.emulation?.toward?.length ?? 0), 0);
      virtual += r.realization.nodes.filter((n) => n.mode === "virtual").length;
      if (rand() < 0.3) {
        const gone = held.splice(Math.floor(rand() * held.length), 1)[0]!;
        assert.ok(table.free(gone.realization.id) > 0);
      }
    }
  }
  // The mix must actually exercise the engine, not refuse everything.
  assert.ok(realized > TRIALS * 1.5, `realized ${realized}, refused ${refused}`);
  assert.ok(refused > 0);
  assert.ok(external > 0, "some links crossed facilities");
  assert.ok(emulated > 0, "some links were emulated");
  assert.ok(directions > 0, "some emulated links set a direction apart");
  assert.ok(virtual > 0, "some nodes were virtual machines");
});

test("feasible instances with 10% slack always realize", () => {
  for (let seed = 0; seed < 40; seed++) {
    const rand = random(seed * 104729 + 3);
    const net = internetFor(seed, rand);
    let physical = 0;
    for (const f of net.facilities)
      for (const r of f.resources) if (r.kind === "node" && r.alloc.includes("physical")) physical++;
    const size = Math.floor(physical / 1.1);
    const x = feasibleExperiment(rand, net, `feasible${seed}`, size);
    const r = realize(x, net, undefined, { id: `f.${x.name}.p` });
    assert.ok(r.ok, `seed ${seed}: ${r.ok ? "" : r.problems.map(formatProblem).join("; ")}`);
    assert.deepEqual(checkRealizations(net, [{ experiment: x, realization: r.realization }]), []);
  }
});
