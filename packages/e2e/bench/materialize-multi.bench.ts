/**
 * One experiment across two facilities on this machine (e2e multi-fixture: each
 * facility its own process in its own site, an emulated wide area between the
 * sites, one portal).
 *
 * - `2-facilities-20-nodes`: from the materialize request (the realization
 *   accepted) until the portal reports it active at both facilities and every
 *   node answers its facility's infrapod on the infranet. Target < 15 s.
 * - `cross-rtt`: the round trip (ms, median of 10 pings; `min_ms` the fastest)
 *   across a realized external link between two facilities, materialized: a
 *   line of four bare-metal nodes one facility cannot hold, with a 15 ms
 *   one-way wide area; the link is a VXLAN segment over the facilities'
 *   gateway tunnel (linux/external.ts). Expected 30 ± 3.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { benchCase, defineBench } from "@merge/bench";
import type { MaterializationStatus } from "@merge/portal/client";
import type { Realization } from "@merge/xir";
import { compiledHere, facilityPrefix, LINE4, type MultiStack, startMulti } from "../test/multi-fixture.ts";

/** 20 containers of 30 GB each: phobos's hypervisors hold 12, so the experiment needs deimos too. */
const NODES20 = `
import { addressing, gb, image, memory, Network, routing } from "@merge/model";
const net = new Network("twenty", addressing.ipv4, routing.static);
const n = Array.from({ length: 20 }, (_, i) => net.node(\`n\${i}\`, image("busybox"), memory.ge(gb(30))));
for (let i = 0; i + 1 < n.length; i++) net.connect([n[i]!, n[i + 1]!]);
export default net;
`;

/** Ping every node's infranet address from its facility's infrapod; throws naming the silent ones. */
function checkReachable(mzid: string, st: MaterializationStatus): void {
  const silent: string[] = [];
  for (const f of new Set(st.nodes.map((n) => n.facility))) {
    const addrs = st.nodes.filter((n) => n.facility === f && n.infranet).map((n) => n.infranet as string);
    const script = `for a in ${addrs.join(" ")}; do (busybox ping -c 1 -W 1 $a || busybox ping -c 2 -W 2 $a) >/dev/null 2>&1 || echo $a & done; wait`;
    const ns = `/run/netns/${facilityPrefix(mzid, f)}-i`;
    const r = spawnSync("nsenter", [`--net=${ns}`, "--", "busybox", "sh", "-c", script], { encoding: "utf8" });
    silent.push(
      ...r.stdout
        .split(/\s+/)
        .filter(Boolean)
        .map((a) => `${f}/${a}`),
    );
  }
  if (silent.length) throw new Error(`nodes not reachable on their infranet: ${silent.join(", ")}`);
}

export default defineBench({
  name: "materialize-multi",
  cases: {
    "2-facilities-20-nodes": benchCase(async () => {
      const stack: MultiStack = await startMulti({ backend: "linux" });
      const project = `bench${randomBytes(2).toString("hex")}`;
      const mzid = `r1.twenty.${project}`;
      await stack.accepted(project, "twenty", JSON.stringify(await compiledHere(NODES20)), "xir");
      const rz = (await stack.admin.realization(project, "twenty", "r1")).realization as Realization;
      return {
        run: async () => {
          const up = await stack.mrg(["materialize", mzid, "--timeout", "300"]);
          if (up.code !== 0) throw new Error(`materialize: ${up.stderr}${up.stdout}`);
          const st = JSON.parse((await stack.mrg(["show", "materialization", mzid, "--json"])).stdout);
          if (st.status !== "active") throw new Error(`not active: ${JSON.stringify(st.facilities)}`);
          checkReachable(mzid, st as MaterializationStatus);
        },
        fields: () => ({
          nodes: rz.nodes.length,
          facilities: new Set(rz.nodes.map((n) => n.facility)).size,
          external_links: rz.links.filter((l) => l.external).length,
        }),
        cleanup: async () => {
          await stack.mrg(["dematerialize", mzid, "--timeout", "180"]).catch(() => undefined);
          await stack.close();
        },
        targets: { max: { ms: 15_000 } },
      };
    }),
    "cross-rtt": benchCase(async () => {
      const stack: MultiStack = await startMulti({ backend: "linux" });
      const project = `bench${randomBytes(2).toString("hex")}`;
      const mzid = `r1.line.${project}`;
      const cleanup = async () => {
        await stack.mrg(["dematerialize", mzid, "--timeout", "180"]).catch(() => undefined);
        await stack.close();
      };
      try {
        return await crossRtt(stack, mzid, project, cleanup);
      } catch (e) {
        await cleanup();
        throw e;
      }
    }),
  },
});

/** The cross-rtt case once the stack is up: realized and materialized, then pinged across. */
async function crossRtt(stack: MultiStack, mzid: string, project: string, cleanup: () => Promise<void>) {
  await stack.accepted(project, "line", JSON.stringify(await compiledHere(LINE4)), "xir");
  const rz = (await stack.admin.realization(project, "line", "r1")).realization as Realization;
  const ext = rz.links.find((l) => l.external);
  if (!ext) throw new Error("the line was realized without an external link");
  const up = await stack.mrg(["materialize", mzid, "--timeout", "300"]);
  if (up.code !== 0) throw new Error(`materialize: ${up.stderr}${up.stdout}`);
  const st = JSON.parse((await stack.mrg(["show", "materialization", mzid, "--json"])).stdout) as MaterializationStatus;
  // The external link's two endpoints, each at its facility: ping from one node's namespace to the other's address.
  const [from, to] = ext.segments
    .flatMap((g) => g.endpoints)
    .map((e) => {
      const n = st.nodes.find((x) => x.node === e.node);
      if (!n) throw new Error(`node ${e.node} is not in the status`);
      return {
        netns: `${facilityPrefix(mzid, n.facility)}-n-${e.node}`,
        address: (n.addresses?.[e.socket] ?? "").split("/")[0] ?? "",
      };
    });
  if (!from || !to) throw new Error("the external link has fewer than two endpoints");
  // ARP and the first frames out of the way: the figure is the link's steady round trip.
  spawnSync("ip", ["netns", "exec", from.netns, "ping", "-c", "3", "-W", "3", to.address]);
  let rtt = Number.NaN;
  let min = Number.NaN;
  return {
    run: () => {
      const r = spawnSync("ip", ["netns", "exec", from.netns, "ping", "-c", "10", "-i", "0.2", "-W", "2", to.address], {
        encoding: "utf8",
      });
      const v = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
      if (v.length < 5) throw new Error(`ping across the external link: ${r.stdout}${r.stderr}`);
      rtt = v[Math.floor(v.length / 2)]!;
      min = v[0]!;
    },
    fields: () => ({
      rtt_ms: rtt,
      min_ms: min,
      wan_one_way_ms: 15,
      facilities: new Set(rz.nodes.map((n) => n.facility)).size,
      external_links: rz.links.filter((l) => l.external).length,
    }),
    cleanup,
  };
}
