/**
 * The linux data plane, for real on this host (root): time until every node of
 * an N-node experiment is configured (foundry applied) and answers on the
 * infranet, and the time to dematerialize 500 nodes. The experiment: LANs of
 * 10 nodes, their first nodes chained by point-to-point links that are emulated
 * (10 ms, 100 Mbit/s), static addresses; the default image (Debian bookworm
 * where built, else busybox). Fragments come from the materialization plan.
 *
 * `mininet-*` cases build the same shape with Mininet (Debian's `mininet`:
 * Linux bridges, no controller, no shaping) in the same run, for the ratio;
 * they are skipped, saying why, where `mn` is not installed.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { benchCase, defineBench } from "@merge/bench";
import type { Experiment, Link, Node } from "@merge/xir";
import { LinuxDataPlane } from "../src/linux/dataplane.ts";
import { prefixOf } from "../src/linux/names.ts";
import { sweep } from "../src/linux/sweep.ts";
import { localPlan } from "../test/linux/fixture.ts";
import { type CpuAccount, cpuAccount, cpuFigures, ownCpu } from "./cpu-account.ts";

/** Run `f` and say how much CPU everything this process started used meanwhile (`cpu_ms`; absent without cgroups). */
async function withCpu<R>(
  acct: CpuAccount | undefined,
  f: () => Promise<R>,
): Promise<{ r: R; cpu: { cpu_ms?: number; self_cpu_ms: number; tools_cpu_ms: number } }> {
  const c0 = acct?.ms();
  const o0 = ownCpu();
  const r = await f();
  const o1 = ownCpu();
  const c1 = acct?.ms();
  return {
    r,
    cpu: cpuFigures(c0 !== undefined && c1 !== undefined ? c1 - c0 : undefined, {
      self: o1.self - o0.self,
      tools: o1.tools - o0.tools,
    }),
  };
}

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
    const acct = cpuAccount("mrg-bench");
    const dataDir = mkdtempSync(join(tmpdir(), "mrg-bench-linux-"));
    const dp = await LinuxDataPlane.open({ dataDir });
    const mzid = `bench${n}.b${randomBytes(3).toString("hex")}.bench`;
    const xp = groupsExperiment(n);
    const plan = localPlan(xp, mzid);
    sweepOnSignal(mzid, dataDir);
    return {
      run: () => withCpu(acct, () => dp.materialize(plan, { timeoutMs: 300_000 })),
      fields: ({ r, cpu }) => ({
        nodes: n,
        links: xp.links.length,
        ready_ms: r.readyMs,
        ...cpu,
        ...Object.fromEntries(Object.entries(r.phases).map(([k, v]) => [`${k}_ms`, v])),
        emulation: dp.capabilities.netem ? "netem" : "mrg-emu",
      }),
      cleanup: async () => {
        await sweep(prefixOf(mzid), dataDir);
        rmSync(dataDir, { recursive: true, force: true });
        acct?.close();
      },
      targets: { max: { ms: maxMs } },
    };
  });
}

/** Mininet's python and its own (Debian's /usr/bin/python3; a python3 earlier on PATH may not have it). */
function mininetPython(): string | undefined {
  for (const py of ["/usr/bin/python3", "python3"]) {
    if (spawnSync(py, ["-c", "import mininet.net, mininet.nodelib"]).status === 0) return py;
  }
  return undefined;
}

/** The Mininet driver (mininet-groups.py): one line out per command in. */
class MininetRun {
  private readonly lines: string[] = [];
  private readonly waiters: ((l: string) => void)[] = [];
  private readonly child: ChildProcess;
  private stderr = "";
  constructor(py: string, n: number, prefix: string) {
    this.child = spawn(py, [join(import.meta.dirname, "mininet-groups.py"), String(n), prefix], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      this.stderr += d;
    });
    createInterface({ input: this.child.stdout! }).on("line", (l) => {
      const w = this.waiters.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
  }
  next(what: string): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`mininet exited before ${what}: ${this.stderr.trim().slice(-500)}`));
      this.child.once("exit", onExit);
      this.waiters.push((line) => {
        this.child.off("exit", onExit);
        resolve(line);
      });
    });
  }
  async command(cmd: "build" | "stop"): Promise<number> {
    this.child.stdin?.write(`${cmd}\n`);
    const l = await this.next(cmd);
    const m = /^(built|stopped) (\d+)$/.exec(l);
    if (!m) throw new Error(`mininet: unexpected "${l}" after ${cmd}: ${this.stderr.trim().slice(-500)}`);
    return Number(m[2]);
  }
  /** Kill the driver (by its pid) and remove what its network left: the bridges and host links carry the prefix. */
  kill(prefix: string): void {
    if (this.child.exitCode === null && this.child.pid) process.kill(this.child.pid, "SIGKILL");
    const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout ?? "";
    for (const m of links.matchAll(/^\d+: ([^:@]+)/gm)) {
      const name = m[1] as string;
      if (name.startsWith(prefix)) spawnSync("ip", ["link", "del", name]);
    }
  }
}

/**
 * Mininet on the same shape: `build` times net.build() + net.start() (every
 * host a shell in its own namespace, links and bridges up, addresses set);
 * `stop` times net.stop().
 */
function mininetCase(n: number, timed: "build" | "stop") {
  return benchCase(async () => {
    const py = mininetPython();
    if (!py) {
      return {
        run: async () => ({ r: 0, cpu: {} as Awaited<ReturnType<typeof withCpu>>["cpu"] }),
        fields: () => ({
          nodes: n,
          skipped: "mininet is not installed (apt-get install mininet bridge-utils; scripts/setup.sh does)",
        }),
      };
    }
    const acct = cpuAccount("mrg-bench");
    const prefix = `mn${randomBytes(1).toString("hex")}`;
    const mn = new MininetRun(py, n, prefix);
    const ready = await mn.next("ready");
    if (ready !== "ready") throw new Error(`mininet: expected "ready", got "${ready}"`);
    if (timed === "stop") await mn.command("build");
    let stopped = false;
    return {
      run: () =>
        withCpu(acct, async () => {
          const ms = await mn.command(timed);
          if (timed === "stop") stopped = true;
          return ms;
        }),
      fields: ({ r, cpu }) => ({
        nodes: n,
        [`mininet_${timed}_ms`]: r,
        // Its python and every process it starts are in the cgroup; self/tools would only count this process.
        ...(cpu.cpu_ms !== undefined ? { cpu_ms: cpu.cpu_ms } : {}),
        switch: "linux-bridge",
        controller: "none",
      }),
      cleanup: async () => {
        if (!stopped) await mn.command("stop").catch(() => 0);
        mn.kill(prefix);
        acct?.close();
      },
    };
  });
}

export default defineBench({
  name: "materialize-linux",
  cases: {
    "10-nodes": materializeCase(10, 5_000),
    "100-nodes": materializeCase(100, 15_000),
    "500-nodes": materializeCase(500, 60_000),
    "1000-nodes": materializeCase(1000, 120_000),
    "mininet-100-nodes": mininetCase(100, "build"),
    "mininet-500-nodes": mininetCase(500, "build"),
    "mininet-1000-nodes": mininetCase(1000, "build"),
    "mininet-demat-500-nodes": mininetCase(500, "stop"),
    "demat-500-nodes": benchCase(async () => {
      const acct = cpuAccount("mrg-bench");
      const dataDir = mkdtempSync(join(tmpdir(), "mrg-bench-linux-"));
      const dp = await LinuxDataPlane.open({ dataDir });
      const mzid = `demat500.b${randomBytes(3).toString("hex")}.bench`;
      sweepOnSignal(mzid, dataDir);
      await dp.materialize(localPlan(groupsExperiment(500), mzid), { timeoutMs: 300_000 });
      return {
        run: () => withCpu(acct, () => dp.dematerialize(mzid)),
        fields: ({ cpu }) => ({ nodes: 500, ...cpu }),
        cleanup: async () => {
          await sweep(prefixOf(mzid), dataDir);
          rmSync(dataDir, { recursive: true, force: true });
          acct?.close();
        },
        targets: { max: { ms: 10_000 } },
      };
    }),
  },
});
