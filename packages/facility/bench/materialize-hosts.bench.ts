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

function materializeCase(nodes: number, hostCount: number, maxMs: number) {
  return benchCase(async () => {
    const { hosts, s, plan, crossHost } = setup(nodes, hostCount);
    const fx: HostsFixture = await startHosts(s.facility, hosts);
    return {
      run: async () => {
        const st = await materializePlan(fx, plan);
        if (st.status !== pb.MzStatus.ACTIVE) throw new Error(`not active: ${JSON.stringify(st.failed.slice(0, 3))}`);
        await checkReachable(fx, plan);
      },
      fields: () => ({ nodes, hosts: hostCount, cross_host_links: crossHost }),
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
      const fx = await startHosts(s.facility, hosts);
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
          const d = await materializePlan(fx, plan, "dematerialize");
          if (d.status !== pb.MzStatus.DEMATERIALIZED) throw new Error("not dematerialized");
        },
        fields: () => ({ nodes: 500, hosts: 4, cross_host_links: crossHost }),
        cleanup: () => fx.close(),
        targets: { max: { ms: 10_000 } },
      };
    }),
  },
});
