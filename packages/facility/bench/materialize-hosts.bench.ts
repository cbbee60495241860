/**
 * A facility of several hosts on this machine (hosts as network namespaces,
 * each with its own agent process: test/linux/hosts-fixture.ts), through the
 * whole facility path: commander → driver → rex → each action's host agent →
 * the linux backend there. Timed from the materialize request until the
 * materialization is active and every node answers the infrapod on the
 * infranet (across hosts, over its VXLAN tunnels). The experiment: the
 * synthetic shape, LANs of 10 nodes round robin over the hosts (so every LAN
 * spans hosts) chained by emulated links; busybox image.
 */
import { benchCase, defineBench } from "@merge/bench";
import { linkHosts, type MaterializationPlan, planMaterialization, synthetic } from "@merge/materialize";
import * as pb from "@merge/proto";
import { run } from "../src/linux/command.ts";
import type { RexEvent } from "../src/rex.ts";
import { type HostsFixture, hostPrefix, materializePlan, startHosts } from "../test/linux/hosts-fixture.ts";

function setup(nodes: number, hostCount: number) {
  const hosts = Array.from({ length: hostCount }, (_, i) => `h${i + 1}`);
  const mzid = `bench${nodes}.h${hostCount}.bench`;
  const s = synthetic(nodes, { mzid, lanSize: 10, hosts });
  for (const n of s.experiment.nodes) delete n.image;
  const plan = planMaterialization(s.realization, s.experiment, [s.facility]);
  const crossHost = plan.facilities[0]!.fragments.filter(
    (f) => f.op === "link.create" && linkHosts(f.link).length > 1,
  ).length;
  return { hosts, s, plan, crossHost };
}

/**
 * Ping every node's infranet address from the infrapod (on h1) with mrg-reach (one process, one raw socket,
 * rounds for the silent ones: a busybox ping each, 64 at a time, timed out under load); throws naming the
 * silent ones.
 */
async function checkReachable(fx: HostsFixture, plan: MaterializationPlan): Promise<void> {
  const addrs: string[] = [];
  for (const f of plan.facilities[0]!.fragments) if (f.op === "node.setup") addrs.push(f.node.infranet.address);
  const ns = `/run/netns/${hostPrefix(plan.mzid, "h1")}-i`;
  const r = await run(fx.local.dataPlane.env.bin.reach, [ns, "15000", ...addrs]);
  if (r.code !== 0) throw new Error(`reachability check failed: ${r.stderr.trim()}`);
  const silent = r.stdout.split(/\s+/).filter(Boolean);
  if (silent.length)
    throw new Error(`${silent.length} nodes not reachable on the infranet: ${silent.slice(0, 10).join(", ")}`);
}

/**
 * Where a timed run's time went, from rex's outcome journal: per stage of the DAG (`task/stage`) the span from
 * its first action's start to its last action's end, and per kind of action (`recycle`, `link`, `node`, …:
 * the action id's first word) how many ran and their mean and longest time.
 */
function stageClock() {
  const began = new Map<string, number>();
  const took: { key: string; ms: number; at: number }[] = [];
  let on = false;
  const where = (key: string) => {
    const m = /\/action\/([^/]+)\/(\d+)\/([^/]+)$/.exec(key);
    return m
      ? { stage: `${decodeURIComponent(m[1]!)}/${Number(m[2])}`, kind: decodeURIComponent(m[3]!).split("-")[0]! }
      : undefined;
  };
  return {
    onRexEvent: (e: RexEvent) => {
      if (!on || e.type === "discarded") return;
      if (e.type === "start") began.set(e.key, performance.now());
      else if (e.type === "complete") {
        const t = began.get(e.key);
        if (t !== undefined) took.push({ key: e.key, ms: performance.now() - t, at: performance.now() });
      }
    },
    start: () => {
      on = true;
    },
    /** `stages`: `stage:ms` from the timed run's start; `kinds`: `kind:count×mean/max ms`. */
    fields: (t0: number): Record<string, string> => {
      const stages = new Map<string, { first: number; last: number }>();
      const kinds = new Map<string, { n: number; sum: number; max: number }>();
      for (const x of took) {
        const w = where(x.key);
        if (!w) continue;
        const st = stages.get(w.stage) ?? { first: Number.POSITIVE_INFINITY, last: 0 };
        st.first = Math.min(st.first, x.at - x.ms);
        st.last = Math.max(st.last, x.at);
        stages.set(w.stage, st);
        const k = kinds.get(w.kind) ?? { n: 0, sum: 0, max: 0 };
        k.n++;
        k.sum += x.ms;
        k.max = Math.max(k.max, x.ms);
        kinds.set(w.kind, k);
      }
      const r = (x: number) => Math.round(x);
      return {
        stages: [...stages]
          .sort((a, b) => a[1].first - b[1].first)
          .map(([s, v]) => `${s}:${r(v.first - t0)}-${r(v.last - t0)}`)
          .join(","),
        kinds: [...kinds].map(([k, v]) => `${k}:${v.n}x${r(v.sum / v.n)}/${r(v.max)}`).join(","),
      };
    },
  };
}

function materializeCase(nodes: number, hostCount: number, maxMs: number) {
  return benchCase(async () => {
    const { hosts, s, plan, crossHost } = setup(nodes, hostCount);
    const clock = stageClock();
    const fx: HostsFixture = await startHosts(s.facility, hosts, { onRexEvent: clock.onRexEvent });
    let t0 = 0;
    return {
      run: async () => {
        t0 = performance.now();
        clock.start();
        const st = await materializePlan(fx, plan);
        if (st.status !== pb.MzStatus.ACTIVE) throw new Error(`not active: ${JSON.stringify(st.failed.slice(0, 3))}`);
        await checkReachable(fx, plan);
      },
      fields: () => ({ nodes, hosts: hostCount, cross_host_links: crossHost, ...clock.fields(t0) }),
      cleanup: async () => {
        await materializePlan(fx, plan, "dematerialize").catch(() => undefined);
        await fx.close();
      },
      targets: { max: { ms: maxMs } },
    };
  });
}

export default defineBench({
  name: "materialize-hosts",
  cases: {
    "100-nodes-2-hosts": materializeCase(100, 2, 10_000),
    "500-nodes-4-hosts": materializeCase(500, 4, 30_000),
    "demat-500-nodes-4-hosts": benchCase(async () => {
      const { hosts, s, plan, crossHost } = setup(500, 4);
      const clock = stageClock();
      const fx = await startHosts(s.facility, hosts, { onRexEvent: clock.onRexEvent });
      let t0 = 0;
      try {
        const st = await materializePlan(fx, plan);
        if (st.status !== pb.MzStatus.ACTIVE) throw new Error(`not active: ${JSON.stringify(st.failed.slice(0, 3))}`);
      } catch (e) {
        // The case never started, so its cleanup never runs: the hosts and what got made on them go here.
        await materializePlan(fx, plan, "dematerialize").catch(() => undefined);
        await fx.close();
        throw e;
      }
      return {
        run: async () => {
          t0 = performance.now();
          clock.start();
          const d = await materializePlan(fx, plan, "dematerialize");
          if (d.status !== pb.MzStatus.DEMATERIALIZED) throw new Error("not dematerialized");
        },
        fields: () => ({ nodes: 500, hosts: 4, cross_host_links: crossHost, ...clock.fields(t0) }),
        cleanup: () => fx.close(),
        targets: { max: { ms: 10_000 } },
      };
    }),
  },
});
