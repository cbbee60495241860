// Rex on etcd (Debian's etcd on loopback): two workers, one materialization,
// every action completed exactly once; four racing for actions with no key yet.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openStore, type Store } from "@merge/store";
import { type EtcdServer, startEtcd } from "@merge/store/testing/etcd";
import { Driver } from "../src/driver.ts";
import { SimBackend } from "../src/sim/sim.ts";
import { type Action, keys } from "../src/task.ts";
import { startRex, statusIs, until } from "./fixture.ts";

let etcd: EtcdServer;
let store: Store;
before(async () => {
  etcd = await startEtcd();
  store = openStore({ backend: "etcd", endpoints: etcd.endpoints });
});
after(async () => {
  await store?.close();
  await etcd?.stop();
});

test("two rex workers on etcd: all actions complete once, claims released, teardown forgets it", async () => {
  const s = synthetic(30, { mzid: "etcd.exp.proj", lanSize: 5 });
  const driver = new Driver(store);
  // One facility, two workers: they share the (modeled) facility.
  const sim = new SimBackend({ durations: { imaging: 5, power: 0, network: 1, infrapod: 1 } });
  const a = await startRex(store, sim, { id: "rex-a", concurrency: 8 });
  const b = await startRex(store, sim, { id: "rex-b", concurrency: 8 });
  const dag = await driver.materialize("etcd.exp.proj", fragmentsFor(s.realization, s.experiment, s.facility));
  await statusIs(driver, "etcd.exp.proj", "active", 30_000);
  const completes = [...a.journal.of("complete"), ...b.journal.of("complete")].map((e) => ("key" in e ? e.key : ""));
  assert.equal(completes.length, dag.actions.length);
  assert.equal(new Set(completes).size, completes.length);
  await driver.dematerialize("etcd.exp.proj");
  await statusIs(driver, "etcd.exp.proj", "dematerialized", 30_000);
  await Promise.all([a.rex.stop(), b.rex.stop()]);
  await until("nothing left", async () => ((await store.range("/cogs/mz/")).length === 0 ? true : undefined));
  assert.equal((await store.range(keys.claimPrefix)).length, 0);
});

test("an action with no key yet (implied pending) is claimed by one of four racing workers only", async () => {
  const mzid = "implied.exp.proj";
  const s = synthetic(20, { mzid, lanSize: 5 });
  const driver = new Driver(store);
  const dag = await driver.materialize(mzid, fragmentsFor(s.realization, s.experiment, s.facility));
  // The driver wrote no state key: every action is pending, untried, as readers see it.
  assert.deepEqual(await store.range(keys.actions(mzid)), []);
  const read = (await driver.status(mzid)).actions;
  assert.equal(read.length, dag.actions.length);
  assert.ok(read.every((a: Action) => a.state === "pending" && a.attempts === 0 && !a.masked));
  // Four workers, each its own client, none waiting for an action's owner (stealAfterMs 0), every first
  // claim held until all four are sent: they are claims of the DAG's one runnable action (the infrapod's
  // first stage), which has no key, so the claims race on one absent key; the store counts the losers.
  const failed = { n: 0 };
  const gate = barrier(4);
  const clients = Array.from({ length: 4 }, () => openStore({ backend: "etcd", endpoints: etcd.endpoints }));
  const sim = new SimBackend({ durations: { imaging: 2, power: 0, network: 1, infrapod: 1 } });
  const workers = [];
  try {
    for (const [i, c] of clients.entries())
      workers.push(await startRex(racing(c, gate, failed), sim, { id: `rex-${i}`, concurrency: 64, stealAfterMs: 0 }));
    await statusIs(driver, mzid, "active", 30_000);
    const started = workers.flatMap((w) => w.journal.of("start")).map((e) => ("key" in e ? e.key : ""));
    const completes = workers.flatMap((w) => w.journal.of("complete")).map((e) => ("key" in e ? e.key : ""));
    assert.ok(failed.n > 0, "claims raced (some failed their compares)");
    assert.equal(new Set(started).size, started.length, "no action started by two workers");
    assert.equal(completes.length, dag.actions.length);
    assert.equal(new Set(completes).size, completes.length, "no action completed twice");
    const done = (await driver.status(mzid)).actions;
    assert.ok(
      done.every((a: Action) => a.state === "complete" && a.attempts === 1),
      "each claimed once",
    );
  } finally {
    await Promise.all(workers.map((w) => w.rex.stop()));
    await Promise.all(clients.map((c) => c.close()));
  }
  await driver.dematerialize(mzid);
  const rex = await startRex(store, sim, { id: "rex-teardown" });
  try {
    await statusIs(driver, mzid, "dematerialized", 30_000);
  } finally {
    await rex.rex.stop();
  }
});

/** Resolves for all once `n` have arrived (or after 5 s: a worker that never claims fails the test elsewhere). */
function barrier(n: number): () => Promise<void> {
  let arrived = 0;
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
    setTimeout(resolve, 5000).unref();
  });
  return () => {
    if (++arrived >= n) open();
    return opened;
  };
}

/** The store, its first claim sent once `gate` opens, counting transactions whose compares failed into `into`. */
function racing(store: Store, gate: () => Promise<void>, into: { n: number }): Store {
  const txn = store.txn.bind(store);
  let first = true;
  return Object.assign(Object.create(store) as Store, {
    txn: async (t: Parameters<Store["txn"]>[0]) => {
      if (first && t.success.some((op) => op.op === "put" && op.key.startsWith(keys.claimPrefix))) {
        first = false;
        await gate();
      }
      const r = await txn(t);
      if (!r.succeeded) into.n++;
      return r;
    },
  });
}
