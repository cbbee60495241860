import assert from "node:assert/strict";
import { test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { ACTIONS, parseActionSpec, performAction, undoAction } from "../src/actions.ts";
import { materializeDag } from "../src/dag.ts";
import { SimBackend, type SimMethod, ZERO_DURATIONS } from "../src/sim/sim.ts";
import type { ActionKind } from "../src/task.ts";

const camel = (kind: string) => kind.replace(/\.(\w)/g, (_, c: string) => c.toUpperCase());

test("one vocabulary: every action kind's backend method is its name in camel case, and is what `do` calls", async () => {
  const s = synthetic(6, { mzid: "v.e.p", lanSize: 3 });
  const dag = materializeDag("v.e.p", fragmentsFor(s.realization, s.experiment, s.facility));
  const specs = [...dag.actions.map((a) => a.spec)];
  for (const a of dag.actions) {
    const undo = undoAction(a.spec);
    if (undo) specs.push(undo);
  }
  specs.push({ kind: "node.power", resource: s.realization.nodes[0]!.resource, power: "cycle" });
  const seen = new Set<ActionKind>(specs.map((x) => x.kind));
  // Teardown needs node.reset's spec too (a reimage in the DAG): derive it from a setup.
  const setup = specs.find((x) => x.kind === "node.setup");
  assert.ok(setup?.kind === "node.setup");
  specs.push({ kind: "node.reset", node: setup.node });
  seen.add("node.reset");
  assert.deepEqual([...seen].sort(), Object.keys(ACTIONS).sort(), "the specs cover every kind");

  const calls: SimMethod[] = [];
  const sim = new SimBackend({ durations: ZERO_DURATIONS, strict: false, onCall: (m) => calls.push(m) });
  const ctx = { signal: new AbortController().signal, log: () => {} };
  for (const spec of specs) {
    calls.length = 0;
    await performAction(sim, spec, ctx);
    assert.deepEqual(calls, [camel(spec.kind)], `${spec.kind} → ${camel(spec.kind)}`);
  }
});

test("the sim refuses a node set up for another materialization, unless not strict (another worker may have recycled it)", async () => {
  const s = synthetic(2, { mzid: "a.e.p", lanSize: 2 });
  const dag = materializeDag("a.e.p", fragmentsFor(s.realization, s.experiment, s.facility));
  const setup = dag.actions.find((a) => a.spec.kind === "node.setup")?.spec;
  assert.ok(setup?.kind === "node.setup");
  const inA = setup.node;
  const inB = { ...inA, mzid: "b.e.p" };
  const ctx = { signal: new AbortController().signal, log: () => {} };
  const strict = new SimBackend({ durations: ZERO_DURATIONS });
  await strict.nodeSetup(inA, ctx);
  await assert.rejects(strict.nodeSetup(inB, ctx), /belongs to a\.e\.p/);
  const loose = new SimBackend({ durations: ZERO_DURATIONS, strict: false });
  await loose.nodeSetup(inA, ctx);
  await loose.nodeSetup(inB, ctx);
  assert.equal(loose.nodes.get(inA.resource)?.mzid, "b.e.p");
});

test("undo: each setup kind names its teardown; teardown kinds have none", () => {
  const undone = Object.entries(ACTIONS).map(([k, d]) => [k, d.undo !== undefined]);
  assert.deepEqual(Object.fromEntries(undone), {
    "infrapod.enclave": true,
    "infrapod.services": false,
    "infrapod.entries": false,
    "infrapod.destroy": false,
    "node.setup": true,
    "node.reset": true,
    "node.recycle": false,
    "node.power": false,
    "link.create": true,
    "link.destroy": false,
    "emulation.setup": true,
    "emulation.destroy": false,
  });
});

test("an action stored under the earlier kind name 'emulation.create' is read as emulation.setup", () => {
  const spec = parseActionSpec(JSON.stringify({ kind: "emulation.create", emulation: { mzid: "a.b.c" } }));
  assert.equal(spec.kind, "emulation.setup");
  assert.equal(parseActionSpec(JSON.stringify({ kind: "link.destroy", link: {} })).kind, "link.destroy");
});
