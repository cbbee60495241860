// Every shape a materialization can have (with or without links, emulations,
// nodes, an infrapod) gives well-formed setup and teardown DAGs: each task's
// declared stage count is the stages its actions use, numbered from 0 without
// gaps; dependencies name tasks of the DAG; teardown undoes everything setup
// makes. And rex carries each one through materialize and dematerialize to the
// end (nothing waits for a stage or a task that never comes).
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { Fragment } from "@merge/materialize";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openMemoryStore } from "@merge/store";
import { type Dag, materializeDag, teardownDag } from "../src/dag.ts";
import { Driver } from "../src/driver.ts";
import { keys } from "../src/task.ts";
import { startRex, statusIs, until } from "./fixture.ts";

const stores: { close(): Promise<void> }[] = [];
after(async () => {
  for (const s of stores) await s.close();
});

function fragmentsOf(mzid: string): Fragment[] {
  const s = synthetic(12, { mzid, lanSize: 4 });
  return fragmentsFor(s.realization, s.experiment, s.facility);
}

const without =
  (...ops: Fragment["op"][]) =>
  (f: Fragment) =>
    !ops.includes(f.op);

const SHAPES: Record<string, (f: Fragment) => boolean> = {
  everything: () => true,
  "links, no emulation": without("emulation.setup"),
  "emulation, no links": without("link.create"),
  "no experiment network": without("link.create", "emulation.setup"),
  "nodes only (infrapod on another driver)": without("infrapod.setup", "link.create", "emulation.setup"),
  "network only": without("node.setup", "infrapod.setup"),
  "infrapod only": (f) => f.op === "infrapod.setup",
};

function wellFormed(what: string, dag: Dag): void {
  const ids = new Set(dag.tasks.map((t) => t.id));
  assert.equal(ids.size, dag.tasks.length, `${what}: task ids are unique`);
  for (const t of dag.tasks) {
    const stages = [...new Set(dag.actions.filter((a) => a.task === t.id).map((a) => a.stage))].sort((a, b) => a - b);
    assert.ok(stages.length > 0, `${what}: task ${t.id} has actions`);
    assert.deepEqual(
      stages,
      Array.from({ length: t.stages }, (_, i) => i),
      `${what}: task ${t.id} declares ${t.stages} stages; its actions use ${stages}`,
    );
    for (const d of t.deps) assert.ok(ids.has(d), `${what}: task ${t.id} depends on ${d}, which is not in the DAG`);
  }
  for (const a of dag.actions) assert.ok(ids.has(a.task), `${what}: action ${a.id} is in task ${a.task}`);
  assert.equal(new Set(dag.actions.map((a) => keys.action(a))).size, dag.actions.length, `${what}: unique keys`);
}

for (const [name, keep] of Object.entries(SHAPES)) {
  test(`DAG shape "${name}": setup and teardown are well formed; teardown undoes setup`, () => {
    const mzid = "r1.shape.proj";
    const setup = materializeDag(mzid, fragmentsOf(mzid).filter(keep));
    wellFormed(`${name} setup`, setup);
    const down = teardownDag(mzid, setup.actions);
    wellFormed(`${name} teardown`, down);
    const undone = (kind: string, target: (s: Dag["actions"][number]["spec"]) => string | undefined) =>
      new Set(down.actions.filter((a) => a.spec.kind === kind).map((a) => target(a.spec)));
    const linkOf = (s: Dag["actions"][number]["spec"]) => ("link" in s ? s.link.link : undefined);
    const emuOf = (s: Dag["actions"][number]["spec"]) => ("emulation" in s ? s.emulation.emulation : undefined);
    const nodeOf = (s: Dag["actions"][number]["spec"]) =>
      "node" in s ? `${s.node.resource}/${s.node.node}` : undefined;
    for (const a of setup.actions) {
      const s = a.spec;
      if (s.kind === "link.create") assert.ok(undone("link.destroy", linkOf).has(linkOf(s)), `${name}: link ${a.id}`);
      if (s.kind === "emulation.setup")
        assert.ok(undone("emulation.destroy", emuOf).has(emuOf(s)), `${name}: emulation ${a.id}`);
      if (s.kind === "node.setup") assert.ok(undone("node.recycle", nodeOf).has(nodeOf(s)), `${name}: node ${a.id}`);
      if (s.kind === "infrapod.enclave")
        assert.equal(down.actions.filter((x) => x.spec.kind === "infrapod.destroy").length, 1, `${name}: infrapod`);
    }
  });
}

test("a realization using two emulators of a facility: one emulation each, set up and torn down", async () => {
  const mzid = "r1.twoemu.proj";
  const s = synthetic(12, { mzid, lanSize: 3 });
  s.facility.resources.push({ ...s.facility.resources.find((r) => r.id === "emu0")!, id: "emu1" });
  const emulated = s.realization.links.filter((l) => l.emulator);
  assert.ok(emulated.length >= 2);
  emulated.forEach((l, i) => {
    if (i % 2) l.emulator = { ...l.emulator!, resource: "emu1" };
  });
  const setup = materializeDag(mzid, fragmentsFor(s.realization, s.experiment, s.facility));
  wellFormed("two emulators", setup);
  const emus = setup.actions.filter((a) => a.spec.kind === "emulation.setup");
  assert.deepEqual(emus.map((a) => (a.spec.kind === "emulation.setup" ? a.spec.emulation.emulator : "")).sort(), [
    "emu0",
    "emu1",
  ]);
  const down = teardownDag(mzid, setup.actions);
  assert.equal(down.actions.filter((a) => a.spec.kind === "emulation.destroy").length, 2);

  const store = openMemoryStore();
  stores.push(store);
  const driver = new Driver(store);
  const { rex, backend } = await startRex(store, { durations: { imaging: 0, power: 0, network: 0, infrapod: 0 } });
  try {
    await driver.materialize(mzid, fragmentsFor(s.realization, s.experiment, s.facility));
    await statusIs(driver, mzid, "active", 5000);
    assert.equal(backend.emulations.size, 2);
    await driver.dematerialize(mzid);
    await statusIs(driver, mzid, "dematerialized", 5000);
  } finally {
    await rex.stop();
  }
});

test("rex carries every DAG shape through materialize and dematerialize to the end", async () => {
  const store = openMemoryStore();
  stores.push(store);
  const driver = new Driver(store);
  const { rex } = await startRex(store, {
    durations: { imaging: 0, power: 0, network: 0, infrapod: 0 },
    strict: false,
  });
  try {
    // One after another: the shapes share the synthetic facility's machines.
    for (const [i, keep] of Object.values(SHAPES).entries()) {
      const mzid = `r${i}.shape.proj`;
      await driver.materialize(mzid, fragmentsOf(mzid).filter(keep));
      await statusIs(driver, mzid, "active", 5000);
      await driver.dematerialize(mzid);
      await statusIs(driver, mzid, "dematerialized", 5000);
    }
    await until("records discarded", async () => ((await store.range(keys.mzPrefix)).length ? undefined : true), 5000);
  } finally {
    await rex.stop();
  }
});
