/**
 * The linux data plane, for real on this host (root): time until every node of
 * an N-node experiment is configured (foundry applied) and answers on the
 * infranet, and the time to dematerialize 500 nodes. The experiment: LANs of
 * 10 nodes, their first nodes chained by point-to-point links that are emulated
 * (10 ms, 100 Mbit/s), static addresses; busybox image.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCase, defineBench } from "@merge/bench";
import type { Experiment, Link, Node } from "@merge/xir";
import { LinuxDataPlane } from "../src/linux/dataplane.ts";
import { prefixOf } from "../src/linux/names.ts";
import { sweep } from "../src/linux/sweep.ts";
import { localPlan } from "../test/linux/fixture.ts";

export function groupsExperiment(n: number): Experiment {
  const nodes: Node[] = [];
  const links: Link[] = [];
  const groups = Math.ceil(n / 10);
  for (let g = 0; g < groups; g++) {
    const members: string[] = [];
    for (let k = 0; k < 10 && g * 10 + k < n; k++) {
      const name = `n${g * 10 + k}`;
      members.push(name);
      const sockets = [{ index: 0, addrs: [`10.${100 + (g >> 8)}.${g & 255}.${k + 1}/24`], constraints: [] }];
      nodes.push({ name, constraints: [], properties: {}, sockets });
    }
    links.push({
      name: `lan${g}`,
      endpoints: members.map((m) => ({ node: m, socket: 0 })),
      constraints: [],
      properties: {},
    });
  }
  for (let g = 0; g + 1 < groups; g++) {
    const a = nodes[g * 10] as Node;
    const b = nodes[(g + 1) * 10] as Node;
    const sa = a.sockets.length;
    const sb = b.sockets.length;
    a.sockets.push({ index: sa, addrs: [`10.200.${g >> 6}.${(g & 63) * 4 + 1}/30`], constraints: [] });
    b.sockets.push({ index: sb, addrs: [`10.200.${g >> 6}.${(g & 63) * 4 + 2}/30`], constraints: [] });
    links.push({
      name: `chain${g}`,
      endpoints: [
        { node: a.name, socket: sa },
        { node: b.name, socket: sb },
      ],
      constraints: [
        { prop: "latency", op: "==", value: 10e6 },
        { prop: "capacity", op: "<=", value: 100e6 },
      ],
      properties: {},
    });
  }
  return { xir: "1.0", name: `groups${n}`, parameters: {}, nodes, links };
}

/** Sweep on SIGINT/SIGTERM too: an interrupted run must not leave 500 containers behind. */
function sweepOnSignal(mzid: string, dataDir: string): void {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      void sweep(prefixOf(mzid), dataDir).finally(() => {
        rmSync(dataDir, { recursive: true, force: true });
        process.exit(130);
      });
    });
  }
}

function materializeCase(n: number, maxMs: number) {
  return benchCase(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "mrg-bench-linux-"));
    const dp = await LinuxDataPlane.open({ dataDir });
    const mzid = `bench${n}.b${randomBytes(3).toString("hex")}.bench`;
    const xp = groupsExperiment(n);
    const plan = localPlan(xp, mzid);
    sweepOnSignal(mzid, dataDir);
    return {
      run: () => dp.materialize(plan, { timeoutMs: 300_000 }),
      fields: (r) => ({
        nodes: n,
        links: xp.links.length,
        ready_ms: r.readyMs,
        ...Object.fromEntries(Object.entries(r.phases).map(([k, v]) => [`${k}_ms`, v])),
        emulation: dp.capabilities.netem ? "netem" : "mrg-emu",
      }),
      cleanup: async () => {
        await sweep(prefixOf(mzid), dataDir);
        rmSync(dataDir, { recursive: true, force: true });
      },
      targets: { max: { ms: maxMs } },
    };
  });
}

export default defineBench({
  name: "materialize-linux",
  cases: {
    "10-nodes": materializeCase(10, 5_000),
    "100-nodes": materializeCase(100, 15_000),
    "500-nodes": materializeCase(500, 60_000),
    "demat-500-nodes": benchCase(async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "mrg-bench-linux-"));
      const dp = await LinuxDataPlane.open({ dataDir });
      const mzid = `demat500.b${randomBytes(3).toString("hex")}.bench`;
      sweepOnSignal(mzid, dataDir);
      await dp.materialize(localPlan(groupsExperiment(500), mzid), { timeoutMs: 300_000 });
      return {
        run: () => dp.dematerialize(mzid),
        fields: () => ({ nodes: 500 }),
        cleanup: async () => {
          await sweep(prefixOf(mzid), dataDir);
          rmSync(dataDir, { recursive: true, force: true });
        },
        targets: { max: { ms: 10_000 } },
      };
    }),
  },
});
