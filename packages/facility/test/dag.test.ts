import assert from "node:assert/strict";
import { test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { FragmentError, materializeDag, teardownDag } from "../src/dag.ts";

const s = synthetic(25, { mzid: "r1.exp.proj", lanSize: 10 });
const fragments = fragmentsFor(s.realization, s.experiment, s.facility);

test("materialize DAG: infrapod stages in order, network and nodes depend on the infrapod", () => {
  const dag = materializeDag("r1.exp.proj", fragments);
  const byId = new Map(dag.tasks.map((t) => [t.id, t]));
  assert.deepEqual([...byId.keys()].sort(), ["infrapod", "network", "nodes"]);
  assert.deepEqual(byId.get("infrapod")?.deps, []);
  assert.deepEqual(byId.get("network")?.deps, ["infrapod"]);
  assert.deepEqual(byId.get("nodes")?.deps, ["infrapod"]);
  const pod = dag.actions.filter((a) => a.task === "infrapod").map((a) => [a.stage, a.spec.kind]);
  assert.deepEqual(pod, [
    [0, "infrapod.enclave"],
    [1, "infrapod.services"],
    [2, "infrapod.entries"],
  ]);
  const net = dag.actions.filter((a) => a.task === "network");
  assert.ok(net.filter((a) => a.spec.kind === "link.create").every((a) => a.stage === 0));
  assert.ok(net.filter((a) => a.spec.kind === "emulation.setup").every((a) => a.stage === 1));
  const nodes = dag.actions.filter((a) => a.task === "nodes");
  assert.equal(nodes.length, 25);
  assert.ok(nodes.every((a) => a.stage === 0 && a.state === "pending" && a.attempts === 0));
  assert.equal(new Set(dag.actions.map((a) => `${a.task}/${a.stage}/${a.id}`)).size, dag.actions.length);
});

test("teardown DAG: nodes recycle and network goes in parallel, then the infrapod", () => {
  const setup = materializeDag("r1.exp.proj", fragments).actions;
  const dag = teardownDag("r1.exp.proj", setup);
  const byId = new Map(dag.tasks.map((t) => [t.id, t]));
  assert.deepEqual(byId.get("teardown-infrapod")?.deps.sort(), ["teardown-network", "teardown-nodes"]);
  assert.deepEqual(byId.get("teardown-nodes")?.deps, []);
  const net = dag.actions.filter((a) => a.task === "teardown-network");
  assert.ok(net.filter((a) => a.spec.kind === "emulation.destroy").every((a) => a.stage === 0));
  assert.ok(net.filter((a) => a.spec.kind === "link.destroy").every((a) => a.stage === 1));
  assert.equal(dag.actions.filter((a) => a.spec.kind === "node.recycle").length, 25);
  assert.equal(dag.actions.filter((a) => a.spec.kind === "infrapod.destroy").length, 1);
  // The infrapod's sweep of every host comes last: links, emulators and what the nodes share are left to it.
  for (const a of dag.actions) {
    const s = a.spec;
    if (s.kind === "link.destroy") assert.equal(s.link.sweptAfter, true, a.id);
    if (s.kind === "emulation.destroy") assert.equal(s.emulation.sweptAfter, true, a.id);
    if (s.kind === "node.recycle") assert.equal(s.node.sweptAfter, true, a.id);
  }
  // Without an infrapod to sweep after, every teardown action does its whole part.
  const bare = teardownDag(
    "r1.exp.proj",
    setup.filter((a) => a.task !== "infrapod"),
  );
  for (const a of bare.actions) {
    const s = a.spec;
    const swept =
      s.kind === "link.destroy"
        ? s.link.sweptAfter
        : s.kind === "emulation.destroy"
          ? s.emulation.sweptAfter
          : s.kind === "node.recycle"
            ? s.node.sweptAfter
            : undefined;
    assert.equal(swept, undefined, a.id);
  }
});

test("bad fragments are refused with the fragment named", () => {
  const foreign = fragments.map((f) => (f.op === "node.setup" ? { ...f, node: { ...f.node, mzid: "x.y.z" } } : f));
  assert.throws(
    () => materializeDag("r1.exp.proj", foreign),
    (e: Error) => {
      assert.ok(e instanceof FragmentError);
      assert.match(e.message, /fragments\[\d+\] \(node\.setup m0\): belongs to materialization 'x\.y\.z'/);
      return true;
    },
  );
  const dup = [...fragments, fragments.find((f) => f.op === "node.setup")!];
  assert.throws(() => materializeDag("r1.exp.proj", dup), /duplicate of an earlier fragment for the same node m0/);
});
