// Rex on etcd (Debian's etcd on loopback): two workers, one materialization,
// every action completed exactly once.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openStore, type Store } from "@merge/store";
import { type EtcdServer, startEtcd } from "@merge/store/testing/etcd";
import { Driver } from "../src/driver.ts";
import { SimBackend } from "../src/sim/sim.ts";
import { keys } from "../src/task.ts";
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
