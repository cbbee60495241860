// A 1,000-node materialization on the sim backend with zero modeled durations:
// what is measured is rex's own overhead (claims, outcomes, watches) per action
// (cases sqlite, etcd); the plan alone (plan-1000-nodes); and the whole path
// from the portal's accept to every action complete, through commander,
// driver and rex over mutual TLS (portal-1000-nodes), with store ops per action.
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCase, defineBench } from "@merge/bench";
import { seedAcceptedRealization } from "@merge/e2e/portal-seed";
import { planMaterialization, synthetic } from "@merge/materialize";
import { credentialsConnector, Materializer } from "@merge/portal/materialize";
import { openMemoryStore, openStore, type Store } from "@merge/store";
import { startEtcd, startEtcdCluster } from "@merge/store/testing/etcd";
import { certFiles, loadTls, makeCerts } from "../src/certs.ts";
import { startCommander } from "../src/commander.ts";
import { Driver } from "../src/driver.ts";
import { startDriverServer } from "../src/driver-service.ts";
import { statFields } from "../src/linux/processes.ts";
import { Rex } from "../src/rex.ts";
import { SimBackend, ZERO_DURATIONS } from "../src/sim/sim.ts";
import { keys } from "../src/task.ts";

const NODES = 1000;
const MZID = "bench.exp.proj";

/** A rex worker on the sim backend with zero durations; `completed(n)` resolves once n actions completed. */
async function simRex(store: Store) {
  let done = 0;
  let wake = () => {};
  const rex = new Rex({
    store,
    backend: new SimBackend({ durations: ZERO_DURATIONS }),
    concurrency: 256,
    onEvent: (e) => {
      if (e.type === "complete") done++;
      if (e.type === "error") throw new Error(`${e.key}: ${e.error}`);
      wake();
    },
  });
  await rex.start();
  return {
    rex,
    completed: async (n: number) => {
      while (done < n) await new Promise<void>((r) => (wake = r));
    },
  };
}

async function materialize(store: Store) {
  const s = synthetic(NODES, { mzid: MZID, lanSize: 10 });
  const fragments = planMaterialization(s.realization, s.experiment, [s.facility]).facilities[0]!.fragments;
  const driver = new Driver(store);
  const rex = await simRex(store);
  return {
    run: async () => {
      const t0 = performance.now();
      // The driver writes the DAG; rex starts only once the materialization record
      // (written last) appears, so what follows is rex alone.
      const dag = await driver.materialize(MZID, fragments);
      const t1 = performance.now();
      await rex.completed(dag.actions.length);
      const t2 = performance.now();
      const s = (t2 - t1) / 1000;
      const total = (t2 - t0) / 1000;
      const st = await driver.status(MZID);
      if (st.summary.status !== "active") throw new Error(`materialization is ${st.summary.status}, not active`);
      await rex.rex.stop();
      return { actions: dag.actions.length, seconds: s, total };
    },
    fields: (r: { actions: number; seconds: number; total: number }) => ({
      nodes: NODES,
      actions: r.actions,
      /** Actions per second of rex alone (claims, backend calls, outcomes, watches). */
      ops_per_s: Math.round(r.actions / r.seconds),
      /** Including the driver building and storing the DAG. */
      with_driver_ops_per_s: Math.round(r.actions / r.total),
    }),
  };
}

/** Longest the cluster cases wait for any one step (start, the DAG written, the run, the kill): a hang is an error. */
const STEP_MS = 120_000;

/** `p`, or an error naming `what` once `ms` have passed without it. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The actions completed when the failover case kills the leader: work is in flight, most of it still to do. */
const KILL_AT = 50;

/**
 * A 1,000-node materialization carried out by `workers` rex workers, each with its own client of a
 * three-member etcd cluster. With `failover`, the leader is killed as soon as KILL_AT actions are
 * done (from the completion event itself, so a fast run cannot finish first; a run that ends without
 * the kill is an error); `stall_ms` is the longest gap between two completions after that (the
 * election and the workers' reconnect), `failover_ms` the time from the kill to the next completion.
 * Every wait is bounded (STEP_MS): a run that stops making progress fails with what it waited for.
 * What is measured comes after a warm-up (see warmUp): the cluster and the workers are as a running
 * facility's are.
 */
async function materializeCluster(workers: number, failover: boolean) {
  const cluster = await startEtcdCluster(3);
  // Transactions sent and how many failed their compares (claims that lost a race), by every client.
  const txns = { sent: 0, failed: 0 };
  // Writes cut short after 1.5 s and asked again of another member (see EtcdOptions.writeTimeoutMs): rex reads
  // back a write of unknown fate, and the driver's are idempotent or compared. 1.5 s is above any commit here
  // (the largest claims take 0.2 s at load 10) and about an election (etcd's 1 s timeout, then the vote).
  const url = `${cluster.url}?write_timeout_ms=1500`;
  const stores = Array.from({ length: workers + 1 }, () => countTxns(openStore(url), txns));
  const fragments = fragmentsOf(MZID);
  const driver = new Driver(stores[0]!);
  const measured = keys.mz(MZID);
  const warming = keys.mz(WARM_MZID);
  let warmDone = 0;
  let done = 0;
  /** Action key → the workers that reported it complete (and on which try). */
  const seen = new Map<string, string[]>();
  let wake = () => {};
  let killedAt: number | undefined;
  let killing: Promise<void> | undefined;
  let firstAfterKill: number | undefined;
  let last = 0;
  let stall = 0;
  let failure: Error | undefined;
  /** REX_TRACE=1: when each stage's first and last action completed (ms after the DAG was written). */
  const trace = process.env.REX_TRACE ? new Map<string, { first: number; last: number; n: number }>() : undefined;
  // One backend for all: the hosts the workers drive (the sim keeps their state in memory).
  const backend = new SimBackend({ durations: ZERO_DURATIONS });
  const rexes = stores.slice(1).map(
    (store, i) =>
      new Rex({
        store,
        backend,
        log: process.env.REX_LOG ? (m: string) => console.error(`${new Date().toISOString()} ${m}`) : undefined,
        concurrency: 256,
        id: `bench-rex-${i}`,
        onEvent: (e) => {
          if (e.type === "error") failure ??= new Error(`${e.key}: ${e.error}`);
          if (e.type !== "complete") return wake();
          if (e.key.startsWith(warming)) warmDone++;
          if (!e.key.startsWith(measured)) return;
          const now = performance.now();
          done++;
          seen.set(e.key, [...(seen.get(e.key) ?? []), `${e.worker} (try ${e.attempts})`]);
          if (trace) {
            const stage = e.key.split("/action/")[1]!.split("/").slice(0, 2).join("/");
            const t = trace.get(stage) ?? { first: now, last: now, n: 0 };
            t.last = now;
            t.n++;
            trace.set(stage, t);
          }
          if (killedAt !== undefined) {
            firstAfterKill ??= now;
            stall = Math.max(stall, now - last);
          }
          last = now;
          if (failover && killing === undefined && done >= KILL_AT)
            killing = killLeader().catch((e: Error) => {
              failure ??= e;
            });
          wake();
        },
      }),
  );
  /** Kill the member the others follow (asked until one answers), and note when. */
  const killLeader = async () => {
    const deadline = performance.now() + STEP_MS;
    let leader = await cluster.leader();
    while (leader < 0) {
      if (performance.now() > deadline) throw new Error(`etcd3-failover: no member named a leader in ${STEP_MS} ms`);
      await new Promise((r) => setTimeout(r, 100));
      leader = await cluster.leader();
    }
    killedAt = performance.now();
    last = killedAt;
    if (process.env.REX_LOG) console.error(`${new Date().toISOString()} killing etcd member ${leader}`);
    await within(cluster.kill(leader), STEP_MS, `killing etcd member ${leader}`);
  };
  for (const r of rexes) await within(r.start(), STEP_MS, `starting ${r.id}`);
  // A facility's workers and etcd run for months: the figures are of a warm cluster and warm workers (the
  // first materialization on a new cluster and fresh processes runs at about half the rate: Go's and node's
  // heaps grow, node compiles rex's paths, bbolt grows its file). The warm-up's own rate is reported.
  const cold = await within(
    warmUp(driver, () => warmDone),
    STEP_MS * 2,
    "the warm-up materialization",
  );
  [txns.sent, txns.failed] = [0, 0];
  return {
    run: async () => {
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const etcd0 = membersCpuMs(cluster);
      const dag = await within(driver.materialize(MZID, fragments), STEP_MS, "the driver writing the DAG");
      const t1 = performance.now();
      let progress = performance.now();
      let asked = progress;
      let seenDone = 0;
      while (done < dag.actions.length) {
        if (failure) throw failure;
        if (performance.now() - progress > STEP_MS) {
          // What is left, and who holds it, for whoever looks into the stall.
          const left = (await within(driver.status(MZID), STEP_MS, "the materialization's status")).actions.filter(
            (a) => a.state !== "complete",
          );
          const claims = await within(stores[0]!.range(keys.claimPrefix), STEP_MS, "the claims");
          throw new Error(
            `no action completed for ${STEP_MS} ms (${done} of ${dag.actions.length} done); not complete: ${left
              .slice(0, 10)
              .map((a) => `${a.task}/${a.id} ${a.state} (${a.attempts} tries)`)
              .join(
                ", ",
              )}${left.length > 10 ? ", …" : ""}; claims held: ${claims.map((c) => c.value).join(", ") || "none"}`,
          );
        }
        // The store is the truth: an outcome whose call failed in the election but committed is
        // recorded without a worker's "complete" event, so with no progress for a second, ask it.
        if (done !== seenDone) [seenDone, progress, asked] = [done, performance.now(), performance.now()];
        else if (performance.now() - asked > 1000) {
          const st = await within(driver.status(MZID), STEP_MS, "the materialization's status");
          if (st.summary.status === "active") break;
          asked = performance.now();
        }
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 200);
        });
      }
      const t2 = performance.now();
      const cpu = process.cpuUsage(cpu0);
      const etcdCpuMs = membersCpuMs(cluster) - etcd0;
      for (const [stage, t] of trace ?? [])
        console.error(`${stage}: ${t.n} actions, ${Math.round(t.first - t1)}-${Math.round(t.last - t1)} ms`);
      if (failover) {
        if (killing === undefined) throw new Error(`the run ended before ${KILL_AT} actions completed: no failover`);
        await within(killing, STEP_MS, "the leader's kill");
      }
      const st = await within(driver.status(MZID), STEP_MS, "the materialization's status");
      if (st.summary.status !== "active") throw new Error(`materialization is ${st.summary.status}, not active`);
      const twice = [...seen].filter(([, n]) => n.length > 1);
      if (twice.length > 0)
        throw new Error(
          `${twice.length} actions completed twice: ${twice
            .slice(0, 5)
            .map(([k, by]) => `${k} by ${by.join(", ")}`)
            .join("; ")}`,
        );
      return {
        actions: dag.actions.length,
        seconds: (t2 - t1) / 1000,
        total: (t2 - t0) / 1000,
        driverMs: t1 - t0,
        cpuMs: (cpu.user + cpu.system) / 1000,
        etcdCpuMs,
        txns: txns.sent,
        failedTxns: txns.failed,
        failover_ms: killedAt !== undefined && firstAfterKill !== undefined ? Math.round(firstAfterKill - killedAt) : 0,
        stall_ms: Math.round(stall),
        cold,
      };
    },
    fields: (r: {
      actions: number;
      seconds: number;
      total: number;
      driverMs: number;
      cpuMs: number;
      etcdCpuMs: number;
      txns: number;
      failedTxns: number;
      failover_ms: number;
      stall_ms: number;
      cold: number;
    }) => ({
      nodes: NODES,
      workers,
      etcd_members: 3,
      actions: r.actions,
      ops_per_s: Math.round(r.actions / r.seconds),
      with_driver_ops_per_s: Math.round(r.actions / r.total),
      /** The warm-up's materialization: the same, on a new cluster and new workers. */
      first_with_driver_ops_per_s: Math.round(r.cold),
      /** The driver's write of the DAG. */
      driver_ms: Math.round(r.driverMs),
      /**
       * CPU of this process (the driver, every worker and its client) from the driver's write to the
       * last completion: steadier than the rates on a loaded machine, and what the rates are mostly made of.
       */
      cpu_ms: Math.round(r.cpuMs),
      // CPU of the three etcd members over the same span (the other half of what a run costs); not with a
      // member killed (what it used is lost with it).
      ...(failover ? {} : { etcd_cpu_ms: Math.round(r.etcdCpuMs) }),
      /** Transactions of the driver and every worker, and those whose compares failed (lost races). */
      txns: r.txns,
      failed_txns: r.failedTxns,
      ...(failover ? { failover_ms: r.failover_ms, stall_ms: r.stall_ms } : {}),
    }),
    cleanup: async () => {
      for (const r of rexes) await r.stop().catch(() => undefined);
      for (const st of stores) await st.close().catch(() => undefined);
      await cluster.stop();
    },
  };
}

/** CPU (user + system) the cluster's live members have used so far, from /proc. */
function membersCpuMs(cluster: { members: { pid?: number; alive: boolean }[] }): number {
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  let ms = 0;
  for (const m of cluster.members) {
    // A member that exited between the check and the read counts as none.
    const f = m.alive && m.pid !== undefined ? statFields(m.pid) : undefined;
    if (f) ms += (Number(f[11]) + Number(f[12])) * tick;
  }
  return ms;
}

const WARM_MZID = "warm.exp.proj";

function fragmentsOf(mzid: string) {
  const s = synthetic(NODES, { mzid, lanSize: 10 });
  return planMaterialization(s.realization, s.experiment, [s.facility]).facilities[0]!.fragments;
}

/**
 * A materialization of WARM_MZID (the same shape as the measured one, on the same nodes) carried out and
 * torn down by the running workers; resolves to its actions per second, the driver's write included, as
 * the workers' completion events count them (`completed`).
 */
async function warmUp(driver: Driver, completed: () => number): Promise<number> {
  const t0 = performance.now();
  const dag = await driver.materialize(WARM_MZID, fragmentsOf(WARM_MZID));
  while (completed() < dag.actions.length) await new Promise((r) => setTimeout(r, 2));
  const rate = dag.actions.length / ((performance.now() - t0) / 1000);
  await driver.dematerialize(WARM_MZID);
  while ((await driver.status(WARM_MZID)).summary.status !== "dematerialized")
    await new Promise((r) => setTimeout(r, 20));
  return rate;
}

/** Counts a store's transactions, and those whose compares failed, into `into`. */
function countTxns(store: Store, into: { sent: number; failed: number }): Store {
  const txn = store.txn.bind(store);
  return Object.assign(Object.create(store) as Store, {
    txn: async (t: Parameters<Store["txn"]>[0]) => {
      into.sent++;
      const r = await txn(t);
      if (!r.succeeded) into.failed++;
      return r;
    },
  });
}

/** Counts the calls a store serves (every read, write, transaction, watch and lease call is one op). */
function counted(store: Store): { store: Store; ops: () => number } {
  let ops = 0;
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function" || prop === "close") return v;
      return (...args: unknown[]) => {
        ops++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, ops: () => ops };
}

export default defineBench({
  name: "materialize-sim",
  cases: {
    "plan-1000-nodes": benchCase(() => {
      const s = synthetic(NODES, { mzid: MZID, lanSize: 10 });
      return {
        run: () => planMaterialization(s.realization, s.experiment, [s.facility]),
        fields: (plan) => ({
          nodes: NODES,
          fragments: plan.facilities[0]!.fragments.length,
          plan_kb: Math.round(JSON.stringify(plan).length / 1024),
        }),
        targets: { max: { ms: 200 } },
      };
    }),
    "portal-1000-nodes": benchCase(async () => {
      const tmp = mkdtempSync(join(tmpdir(), "mz-bench-portal-"));
      const s = synthetic(NODES, { mzid: MZID, lanSize: 10 });
      const certs = join(tmp, "certs");
      makeCerts(certs, { facility: s.facility.name });
      for (const f of ["ca.pem", "portal.pem", "portal-key.pem"]) {
        cpSync(join(certs, f), join(tmp, "creds", s.facility.name, f));
      }
      const portalStore = counted(openMemoryStore());
      const facilityStore = counted(openMemoryStore());
      const commander = await startCommander({ tls: loadTls(certFiles(certs, "commander")) });
      const driverServer = await startDriverServer({
        driver: new Driver(facilityStore.store),
        tls: loadTls(certFiles(certs, "driver")),
        name: "driver-0",
        resources: s.facility.resources.map((r) => r.id),
        registry: commander.registry.url,
      });
      const [, experiment, project] = MZID.split(".") as [string, string, string];
      await seedAcceptedRealization(portalStore.store, s, {
        project,
        experiment,
        realization: "bench",
        endpoint: commander.facility.url,
      });
      const rex = await simRex(facilityStore.store);
      const materializer = new Materializer({
        store: portalStore.store,
        connect: credentialsConnector(join(tmp, "creds")),
        backoffMs: 50,
      });
      return {
        run: async () => {
          const before = { portal: portalStore.ops(), facility: facilityStore.ops() };
          const created = await materializer.create(project, experiment, "bench", "bench");
          const actions = created.facilities[0]!.fragments + 2; // the infrapod fragment is three actions
          await rex.completed(actions);
          const st = await materializer.status(project, experiment, "bench");
          if (st.status !== "active") throw new Error(`materialization is ${st.status}, not active`);
          return {
            actions: st.actions,
            portalOps: portalStore.ops() - before.portal,
            facilityOps: facilityStore.ops() - before.facility,
          };
        },
        fields: (r) => ({
          nodes: NODES,
          actions: r.actions,
          portal_store_ops: r.portalOps,
          facility_store_ops: r.facilityOps,
          store_ops_per_action: Number(((r.portalOps + r.facilityOps) / r.actions).toFixed(2)),
        }),
        cleanup: async () => {
          materializer.close();
          await rex.rex.stop();
          await driverServer.close();
          await commander.close();
          await portalStore.store.close();
          await facilityStore.store.close();
          rmSync(tmp, { recursive: true, force: true });
        },
      };
    }),
    sqlite: benchCase(async () => {
      const dir = mkdtempSync(join(tmpdir(), "mz-bench-"));
      const store = openStore({ backend: "sqlite", dir });
      const m = await materialize(store);
      return {
        ...m,
        targets: { min: { ops_per_s: 2000 } },
        cleanup: async () => {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }),
    "etcd3-4-rex": benchCase(async () => ({
      ...(await materializeCluster(4, false)),
      targets: { min: { with_driver_ops_per_s: 2000 } },
    })),
    "etcd3-failover": benchCase(() => materializeCluster(4, true)),
    etcd: benchCase(async () => {
      const etcd = await startEtcd();
      const store = openStore({ backend: "etcd", endpoints: etcd.endpoints });
      const m = await materialize(store);
      return {
        ...m,
        cleanup: async () => {
          await store.close();
          await etcd.stop();
        },
      };
    }),
  },
});
