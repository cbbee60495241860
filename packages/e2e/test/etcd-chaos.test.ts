// The distributed form on a real etcd cluster: three members on loopback, two
// portal replicas, a facility (commander, driver, rex) and three more rex
// workers, four in all, every one on the cluster; the sim backend stands in
// for hosts. The etcd leader is killed while a materialization runs: the
// work completes after the election, no action completes twice (every
// worker's journal), and the realization is there once, seen alike from both
// replicas. Then a follower is down for a while and comes back.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { makeCerts, Rex, type RexEvent, type RunningFacility, SimBackend, startFacility } from "@merge/facility";
import { phobos } from "@merge/facility-model";
import { PortalClient } from "@merge/portal/client";
import { type Started, startPortal } from "@merge/portal/main";
import { credentialsConnector, materializationPlugin } from "@merge/portal/materialize";
import { openStore, type Store } from "@merge/store";
import { type EtcdCluster, startEtcdCluster } from "@merge/store/testing/etcd";
import type { Facility } from "@merge/xir";

const tmp = mkdtempSync(join(tmpdir(), "merge-etcd-chaos-"));
let cluster: EtcdCluster;
const replicas: Started[] = [];
let facilityStore: Store;
let facility: RunningFacility | undefined;
const workers: Rex[] = [];
const journal: RexEvent[] = [];

before(async () => {
  cluster = await startEtcdCluster(3);
  const certs = join(tmp, "certs");
  makeCerts(certs);
  const plugins = [materializationPlugin({ connect: credentialsConnector(join(tmp, "creds")), backoffMs: 200 })];
  for (const name of ["a", "b"]) {
    replicas.push(
      await startPortal({
        dataDir: join(tmp, `portal-${name}`),
        port: 0,
        storeUrl: cluster.url,
        seed: [{ model: phobos(), endpoint: "https://127.0.0.1:6000", description: "demo facility" }],
        plugins,
      }),
    );
  }
  for (const f of ["ca.pem", "portal.pem", "portal-key.pem"]) cpSync(join(certs, f), join(tmp, "creds", "phobos", f));
  facilityStore = openStore(cluster.url);
  const backend = new SimBackend({ durations: { imaging: 400, power: 100, network: 20, infrapod: 100 } });
  const onEvent = (e: RexEvent) => journal.push(e);
  facility = await startFacility({
    store: facilityStore,
    backend,
    model: phobos() as Facility,
    certs,
    rex: { leaseTtl: 5, onEvent },
  });
  // Three more workers: four in all, every one journaling its outcomes.
  for (let i = 0; i < 3; i++) {
    const w = new Rex({ store: facilityStore, backend, id: `rex-extra-${i}`, leaseTtl: 5, onEvent });
    await w.start();
    workers.push(w);
  }
});

after(async () => {
  try {
    for (const w of workers) await w.stop().catch(() => undefined);
    await facility?.close().catch(() => undefined);
    await facilityStore?.close().catch(() => undefined);
    for (const r of replicas) await r.stop().catch(() => undefined);
  } finally {
    await cluster?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
});

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test("kill the etcd leader mid-materialization: it completes, no action twice, one realization; a follower down and back", {
  timeout: 300_000,
}, async () => {
  const [a, b] = replicas as [Started, Started];
  const token = (await new PortalClient(a.url).login("admin", a.admin.password as string)).token;
  const ca = new PortalClient(a.url, token);
  const cb = new PortalClient(b.url, token);
  await ca.updateFacility("phobos", { endpoint: (facility as RunningFacility).url });
  await ca.createExperiment("admin", { name: "demo" });
  const rev = await ca.push(
    "admin",
    "demo",
    readFileSync(new URL("../../../examples/demo.ts", import.meta.url), "utf8"),
    "ts",
  );
  assert.equal(rev.status, "compiled");
  await cb.realize("admin", "demo", { name: "r1", accept: true });
  const mz = `${a.url}/projects/admin/experiments/demo/realizations/r1/materialization`;
  const auth = { authorization: `Bearer ${token}` };
  assert.equal((await fetch(mz, { method: "POST", headers: auth })).status, 202);
  // Mid-materialization: some actions done, not all.
  await until("some actions complete", async () => (journal.some((e) => e.type === "complete") ? true : undefined));
  const leader = await cluster.leader();
  assert.ok(leader >= 0);
  const t0 = Date.now();
  await cluster.kill(leader);
  const status = await until("active", async () => {
    const res = await fetch(`${b.url}/projects/admin/experiments/demo/realizations/r1/materialization`, {
      headers: auth,
    });
    const s = (await res.json()) as { status: string; actions: number; complete: number };
    return s.status === "active" ? s : undefined;
  });
  const stall = Date.now() - t0;
  assert.equal(status.complete, status.actions);
  // No action ran to completion twice (the extra workers' journals; the facility's worker records completedBy).
  const completions = new Map<string, number>();
  for (const e of journal) if (e.type === "complete") completions.set(e.key, (completions.get(e.key) ?? 0) + 1);
  assert.ok(
    [...completions.values()].every((n) => n === 1),
    "an action completed twice",
  );
  // The realization is there once, the same from both replicas.
  for (const c of [ca, cb]) {
    const rs = await c.realizations("admin", "demo");
    assert.deepEqual(
      rs.map((r) => `${r.id} ${r.state}`),
      ["r1.demo.admin accepted"],
    );
  }
  // A follower down for a while, then back: reads and writes go on meanwhile.
  await cluster.restart(leader);
  const now = await until("a leader", async () => {
    const l = await cluster.leader();
    return l >= 0 ? l : undefined;
  });
  const follower = [0, 1, 2].find((i) => i !== now) as number;
  await cluster.kill(follower);
  await until("realize on the survivors", async () => cb.realize("admin", "demo", { name: "r2", accept: true }));
  assert.equal((await ca.realization("admin", "demo", "r2")).state, "accepted");
  await new Promise((r) => setTimeout(r, 5000));
  await cluster.restart(follower);
  const health = await until("all members reachable", async () => {
    const h = await ca.healthDetail();
    return h.store.members?.every((m) => m.reachable) ? h : undefined;
  });
  assert.equal(health.replicas.length, 2);
  process.stdout.write(`etcd3-failover: ${stall} ms from the leader's kill to an active materialization\n`);
});
