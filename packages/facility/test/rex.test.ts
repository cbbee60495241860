import assert from "node:assert/strict";
import { after, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openMemoryStore } from "@merge/store";
import { Driver } from "../src/driver.ts";
import { clearErrors, completeByHand, mask, pendingTasks } from "../src/operations.ts";
import { SimBackend } from "../src/sim/sim.ts";
import { keys, type NodeRecord } from "../src/task.ts";
import { startRex, statusIs, until } from "./fixture.ts";

const stores: { close(): Promise<void> }[] = [];
after(async () => {
  for (const s of stores) await s.close();
});

function setup(n: number, mzid: string) {
  const store = openMemoryStore();
  stores.push(store);
  const s = synthetic(n, { mzid, lanSize: 4 });
  return { store, driver: new Driver(store), fragments: fragmentsFor(s.realization, s.experiment, s.facility) };
}

test("actions of a stage run in parallel; stages and task dependencies are barriers", async () => {
  const { store, driver, fragments } = setup(12, "par.exp.proj");
  const { rex, journal } = await startRex(store, { durations: { imaging: 40, power: 10, network: 10, infrapod: 20 } });
  await driver.materialize("par.exp.proj", fragments);
  const done = await statusIs(driver, "par.exp.proj", "active");
  await rex.stop();
  assert.equal(done.summary.complete, done.summary.actions);

  const start = new Map(journal.of("start").map((e) => ["key" in e ? e.key : "", e.t]));
  const end = new Map(journal.of("complete").map((e) => ["key" in e ? e.key : "", e.t]));
  const nodeKeys = [...start.keys()].filter((k) => k.includes("/action/nodes/"));
  assert.equal(nodeKeys.length, 12);
  // Parallel: some node setup starts before another one ends.
  const overlap = Math.max(
    ...nodeKeys.map((k) => nodeKeys.filter((o) => start.get(o)! < end.get(k)! && end.get(o)! > start.get(k)!).length),
  );
  assert.ok(overlap >= 6, `expected node setups to overlap, saw at most ${overlap} at once`);
  // Stage barrier inside the infrapod task, and the dependency on it.
  const pod = (id: string, stage: number) => keys.action({ mzid: "par.exp.proj", task: "infrapod", stage, id });
  assert.ok(end.get(pod("enclave", 0))! <= start.get(pod("services", 1))!);
  assert.ok(end.get(pod("services", 1))! <= start.get(pod("entries", 2))!);
  const firstDependent = Math.min(...[...start].filter(([k]) => !k.includes("/infrapod/")).map(([, t]) => t));
  assert.ok(end.get(pod("entries", 2))! <= firstDependent, "network and nodes start after the infrapod is done");
  // Links before emulation in the network task.
  const linkEnds = [...end].filter(([k]) => k.includes("/network/000/")).map(([, t]) => t);
  const emuStarts = [...start].filter(([k]) => k.includes("/network/001/")).map(([, t]) => t);
  assert.ok(emuStarts.length === 1 && Math.max(...linkEnds) <= emuStarts[0]!);
  // Node state machine driven to the target.
  const rec = JSON.parse((await store.get(keys.node("m3")))!.value) as NodeRecord;
  assert.deepEqual([rec.current, rec.target, rec.mzid], ["ready", "ready", "par.exp.proj"]);
  assert.equal(done.info?.infrapod?.serviceAddress, "172.31.0.1");
});

test("an error stops its task until cleared; clearing retries it", async () => {
  const { store, driver, fragments } = setup(8, "err.exp.proj");
  const { rex, backend, journal } = await startRex(store, {
    durations: { imaging: 0, power: 0, network: 0, infrapod: 0 },
    failures: [{ method: "linkCreate", target: "lan1", times: 1, message: "switch leaf0 refused vlan 101" }],
  });
  await driver.materialize("err.exp.proj", fragments);
  const failed = await statusIs(driver, "err.exp.proj", "error");
  await rex.idle();
  const bad = failed.actions.find((a) => a.state === "error");
  assert.equal(bad?.id, "link-lan1");
  assert.equal(bad?.error, "switch leaf0 refused vlan 101");
  assert.equal(bad?.attempts, 1);
  // The network task stopped: its emulation stage never ran; the nodes task went on.
  const again = await driver.status("err.exp.proj");
  assert.ok(again.actions.filter((a) => a.spec.kind === "emulation.setup").every((a) => a.state === "pending"));
  assert.ok(again.actions.filter((a) => a.task === "nodes").every((a) => a.state === "complete"));
  assert.equal(backend.emulations.size, 0);
  assert.deepEqual(
    (await pendingTasks(store, "err.exp.proj")).map((t) => [t.task.id, t.errors]),
    [["network", 1]],
  );

  const cleared = await clearErrors(store, "err.exp.proj", "network/link-lan1");
  assert.equal(cleared.length, 1);
  const ok = await statusIs(driver, "err.exp.proj", "active");
  await rex.stop();
  const link = ok.actions.find((a) => a.id === "link-lan1");
  assert.equal(link?.attempts, 2);
  assert.equal(link?.error, undefined);
  assert.equal(journal.of("error").length, 1);
  assert.equal(backend.emulations.size, 1);
});

test("a masked action is skipped and no longer holds its stage", async () => {
  const { store, driver, fragments } = setup(8, "mask.exp.proj");
  const { rex, journal } = await startRex(store, {
    durations: { imaging: 0, power: 0, network: 0, infrapod: 0 },
    failures: [{ method: "nodeSetup", target: "m5", message: "m5: BMC does not answer" }],
  });
  await driver.materialize("mask.exp.proj", fragments);
  await statusIs(driver, "mask.exp.proj", "error");
  await rex.idle();
  const starts = journal.of("start").length;
  const masked = await mask(store, "mask.exp.proj", "nodes/setup-m5");
  assert.equal(masked.length, 1);
  const s = await statusIs(driver, "mask.exp.proj", "active");
  await rex.idle();
  await rex.stop();
  assert.equal(s.summary.masked, 1);
  assert.equal(journal.of("start").length, starts, "the masked action never ran again");
});

test("an action completed by hand lets dependent work go ahead and sets the node state", async () => {
  const { store, driver, fragments } = setup(4, "hand.exp.proj");
  const { rex, backend } = await startRex(store, {
    durations: { imaging: 0, power: 0, network: 0, infrapod: 0 },
    failures: [{ method: "infrapodServices", message: "registry unreachable" }],
  });
  await driver.materialize("hand.exp.proj", fragments);
  const failed = await statusIs(driver, "hand.exp.proj", "error");
  assert.ok(
    failed.actions.filter((a) => a.task !== "infrapod").every((a) => a.state === "pending"),
    "dependents wait",
  );
  // An operator started the services by hand.
  backend.infrapods.get("hand.exp.proj")!.services = true;
  const done = await completeByHand(store, "hand.exp.proj", "infrapod/services");
  assert.equal(done[0]?.completedBy, "manual");
  const s = await statusIs(driver, "hand.exp.proj", "active");
  await rex.stop();
  assert.equal(s.summary.complete, s.summary.actions);
  await assert.rejects(() => completeByHand(store, "hand.exp.proj", "nodes/nope"), /no action matching 'nodes\/nope'/);
});

test("dematerialize tears down, recycles nodes to clean, and forgets the materialization", async () => {
  const { store, driver, fragments } = setup(6, "gone.exp.proj");
  const { rex, backend } = await startRex(store, { durations: { imaging: 0, power: 0, network: 0, infrapod: 0 } });
  await driver.materialize("gone.exp.proj", fragments);
  await statusIs(driver, "gone.exp.proj", "active");
  await driver.dematerialize("gone.exp.proj");
  await statusIs(driver, "gone.exp.proj", "dematerialized");
  // Rex forgets a torn-down materialization once it sees the teardown done.
  await until("records discarded", async () =>
    (await store.range(keys.mz("gone.exp.proj"))).length ? undefined : true,
  );
  await rex.stop();
  assert.equal((await store.range(keys.claimPrefix)).length, 0);
  assert.equal((await store.range(keys.vindexPrefix)).length, 0);
  const rec = JSON.parse((await store.get(keys.node("m2")))!.value) as NodeRecord;
  assert.deepEqual([rec.current, rec.target, rec.mzid], ["clean", "clean", undefined]);
  assert.equal(backend.links.size, 0);
  assert.equal(backend.infrapods.size, 0);
  assert.ok([...backend.nodes.values()].every((n) => n.state === "clean"));
  // Repeating a dematerialize of something gone is fine.
  assert.deepEqual(await driver.dematerialize("gone.exp.proj"), { tasks: [], actions: [] });
});

test("two rex workers on one store share the work and never run an action twice", async () => {
  const { store, driver, fragments } = setup(40, "two.exp.proj");
  // One facility, two workers: they share the (modeled) facility.
  const sim = new SimBackend({ durations: { imaging: 5, power: 0, network: 1, infrapod: 1 } });
  const a = await startRex(store, sim, { id: "rex-a", concurrency: 8 });
  const b = await startRex(store, sim, { id: "rex-b", concurrency: 8 });
  await driver.materialize("two.exp.proj", fragments);
  const s = await statusIs(driver, "two.exp.proj", "active");
  await Promise.all([a.rex.stop(), b.rex.stop()]);
  const completes = [...a.journal.of("complete"), ...b.journal.of("complete")].map((e) => ("key" in e ? e.key : ""));
  assert.equal(completes.length, s.summary.actions);
  assert.equal(new Set(completes).size, completes.length, "no action completed twice");
  assert.ok(a.journal.of("complete").length > 0 && b.journal.of("complete").length > 0, "both workers worked");
  await until("claims released", async () => ((await store.range(keys.claimPrefix)).length === 0 ? true : undefined));
});
