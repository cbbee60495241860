/**
 * Nodes as containers. A node's network namespace (named, so it outlives
 * power cycles) holds `eth0` on the infranet and `eth<socket+1>` per
 * experiment socket. `mrg-node` starts the rest: new UTS (hostname = node
 * name), mount, PID and IPC namespaces, root = overlayfs over the image
 * directory with a per-node upper directory (wipe = drop it), and its init
 * running the merge boot (DHCP, foundry client). Limits go to cgroups when
 * the host has the controllers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { setPriority } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { createInterface } from "node:readline";
import { IprouteBatch, run } from "./command.ts";
import { type Env, mzDir } from "./env.ts";
import { foundryDir } from "./infrapod.ts";
import { infranetPort, namesOf } from "./names.ts";
import { alive, killAll, listNetns, pidInNetns, processesIn } from "./processes.ts";
import { cpuCapOf, type InfranetPlan, infranetHost, type NodePlan } from "./record.ts";
import { bindsField, nodeStorageBinds } from "./storage.ts";
import { vethAdd } from "./veth.ts";

export const nodeDir = (env: Env, prefix: string, node: string): string => join(mzDir(env, prefix), "nodes", node);

/**
 * Create the nodes' namespaces and infranet veths (idempotent). Many nodes go in
 * a few iproute2 processes at once (on a busy host a lone batch waits for a core;
 * /run/netns is already a mount, made with the infrapod's namespace, so
 * concurrent `netns add`s do not race to make it).
 *
 * The infranet is one bridge for every node, so a broadcast from a node reached
 * every node: each node's DHCP DISCOVER and ARP woke all the others (n² frames
 * at bring-up, the dominant cost at 500 nodes). A node's port therefore gets no
 * broadcasts from other ports (`bcast_flood off`; the bridge's own — the
 * infrapod's ARP, DHCP replies — still reach it) and the bridge answers ARP for
 * the nodes itself (`proxy_arp_wifi` on the target's port, from a permanent
 * neighbour entry on `ibr` and a static FDB entry per node: both known from the
 * plan), so node-to-node traffic on the infranet still resolves. An ARP for
 * anything else (the infrapod, an XDC behind its proxy ARP) reaches the
 * infrapod, as before. (`neigh_suppress` would not do: the bridge ignores
 * requests that come from a suppressing port.)
 *
 * `parallel: false`: one batch each, for a caller that keeps the other cores busy meanwhile (batches in
 * parallel wait on each other for the rtnl lock, spinning: CPU for nothing then).
 */
export async function nodesWire(
  env: Env,
  prefix: string,
  infranet: InfranetPlan,
  nodes: NodePlan[],
  opts: { parallel?: boolean } = {},
): Promise<void> {
  const n = namesOf(prefix);
  const have = new Set(listNetns());
  const chunks = nodes.length < 64 || opts.parallel === false ? 1 : 4;
  const size = Math.ceil(nodes.length / chunks);
  const podPort = (x: NodePlan) => infranetPort(infranetHost(infranet, x.infranet.address));
  // A port's neighbour entry and flags, once it exists (`bcast_flood off` before its node boots).
  const podFlags = (x: NodePlan) => [
    `neigh replace ${x.infranet.address} lladdr ${x.infranet.mac} dev ibr nud permanent`,
    `link set dev ${podPort(x)} type bridge_slave bcast_flood off proxy_arp_wifi on`,
  ];
  const wire = async (part: NodePlan[], host: IprouteBatch, pod: IprouteBatch) => {
    const hostLines: string[] = [];
    const podLines: string[] = [];
    for (const node of part) {
      const ns = n.node(node.name);
      if (!have.has(ns)) hostLines.push(`netns add ${ns}`);
      hostLines.push(
        vethAdd(`name eth0 netns ${ns} address ${node.infranet.mac}`, `name ${podPort(node)} netns ${n.infrapod}`),
      );
      podLines.push(`link set dev ${podPort(node)} master ibr up`);
    }
    await host.submit(hostLines);
    await pod.submit(podLines);
  };
  // The ports' flags in a batch of their own, after every port is enslaved: in the same batch as the
  // enslaving, standby nodes on other hosts were never leased (hosts-spread.test.ts).
  if (chunks === 1) await wire(nodes, env.ip, env.ipIn(n.infrapod));
  else
    await Promise.all(
      Array.from({ length: chunks }, (_, k) =>
        wire(nodes.slice(k * size, (k + 1) * size), new IprouteBatch("ip"), new IprouteBatch("ip", n.infrapod)),
      ),
    );
  // After the ports exist, one batch each (both dump the links first: fewer dumps, fewer interrupted ones).
  await Promise.all([
    env.ipIn(n.infrapod).submit(nodes.flatMap(podFlags)),
    env.bridgeIn(n.infrapod).submit(nodes.map((x) => `fdb replace ${x.infranet.mac} dev ${podPort(x)} master static`)),
  ]);
}

/** Host pid of a node's init, if it runs (checked against the node's namespace, not trusted from the file). */
export function nodePid(env: Env, prefix: string, node: string): number | undefined {
  return pidInNetns(join(nodeDir(env, prefix, node), "pid"), namesOf(prefix).node(node));
}

function cgroupFiles(env: Env, prefix: string, node: NodePlan): string[] {
  const files: string[] = [];
  const cg = env.caps.cgroup;
  const name = `${prefix}-${node.name}`;
  try {
    const cap = cpuCapOf(node);
    if (cap && cg.cpu) {
      const dir = join(cg.cpu, name);
      mkdirSync(dir, { recursive: true });
      if (cg.version === 1) {
        writeFileSync(join(dir, "cpu.cfs_period_us"), "100000");
        writeFileSync(join(dir, "cpu.cfs_quota_us"), String(Math.round(cap * 100000)));
      } else writeFileSync(join(dir, "cpu.max"), `${Math.round(cap * 100000)} 100000`);
      files.push(join(dir, "cgroup.procs"));
    }
    if (node.memory && cg.memory && cg.memory !== cg.cpu) {
      const dir = join(cg.memory, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, cg.version === 1 ? "memory.limit_in_bytes" : "memory.max"), String(node.memory));
      files.push(join(dir, "cgroup.procs"));
    } else if (node.memory && cg.memory) {
      writeFileSync(join(cg.memory, name, "memory.max"), String(node.memory));
    }
  } catch (e) {
    env.log(`node ${node.name}: limits not applied (${(e as Error).message})`);
  }
  return [...new Set(files)];
}

/**
 * Start these nodes' containers (those not running) with one mrg-node process.
 * `images` maps node name to its image directory.
 */
export async function nodesStart(
  env: Env,
  prefix: string,
  nodes: NodePlan[],
  images: Map<string, string>,
  opts: { standby?: boolean } = {},
): Promise<void> {
  const n = namesOf(prefix);
  const lines: string[] = [];
  // The members' homes and the project directory, when this host has the portal's storage (storage.ts).
  const binds = bindsField(nodeStorageBinds(env.storage, foundryDir(env, prefix)));
  for (const node of nodes) {
    if (nodePid(env, prefix, node.name)) continue;
    const dir = nodeDir(env, prefix, node.name);
    for (const d of ["upper", "work", "root"]) mkdirSync(join(dir, d), { recursive: true });
    rmSync(join(dir, "upper/etc/mrg/ready"), { force: true });
    rmSync(join(dir, "upper/etc/mrg/failed"), { force: true });
    // A node in the harbor's standby keeps asking for its lease and configuration (mrg-boot.h).
    if (opts.standby) {
      mkdirSync(join(dir, "upper/etc/mrg"), { recursive: true });
      writeFileSync(join(dir, "upper/etc/mrg/standby"), "");
    }
    const image = images.get(node.name);
    if (!image) throw new Error(`node ${node.name}: no image directory`);
    const cg = cgroupFiles(env, prefix, node);
    lines.push(
      [
        `/run/netns/${n.node(node.name)}`,
        node.name,
        image,
        `${dir}/upper`,
        `${dir}/work`,
        `${dir}/root`,
        cg.length ? cg.join(",") : "-",
        binds,
      ].join(" "),
    );
  }
  if (lines.length === 0) return;
  const results = await Promise.all(lines.map((line) => queueStart(env, prefix, line)));
  const errors = results.filter((e): e is string => e !== undefined);
  if (errors.length > 0)
    throw new Error(
      `starting nodes failed: ${errors.slice(0, 5).join("; ")}${errors.length > 5 ? ` (and ${errors.length - 5} more)` : ""}`,
    );
}

/**
 * mrg-node's environment: glibc registers no restartable sequence in it (nor in the inits, forked from it), which
 * the kernel otherwise updates each time one is scheduled (~4% of the starters' and boots' CPU at bring-up: 32
 * containers starting and up to 128 booting on 2 cores are scheduled often). Each init drops the variable, so
 * what it runs has the default.
 */
const starterEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  GLIBC_TUNABLES: [process.env.GLIBC_TUNABLES, "glibc.pthread.rseq=0"].filter(Boolean).join(":"),
});

/** The niceness of a booting node (mrg-node's starters and the inits until their boot ends). */
const BOOT_NICE = 5;

interface StartJob {
  line: string;
  /** Called with the error (`node: why`), or undefined once the node's init runs. */
  done: (error?: string) => void;
}

/**
 * Containers waiting for an mrg-node, per materialization: one mrg-node at a time per materialization, and
 * whatever is asked meanwhile goes in the next one. Rex sets nodes up a few at a time on a host agent; an
 * mrg-node each cost a fork of this (large) process, tens of ms on a loaded host, with the event loop
 * blocked. (Per materialization because mrg-node reports by node name.)
 */
const starting = new Map<string, { queue: StartJob[]; running: boolean }>();

function queueStart(env: Env, prefix: string, line: string): Promise<string | undefined> {
  const key = `${env.dataDir}\0${prefix}`;
  const q = starting.get(key) ?? { queue: [], running: false };
  starting.set(key, q);
  return new Promise((resolve) => {
    q.queue.push({ line, done: resolve });
    const next = () => {
      if (q.running) return;
      const jobs = q.queue.splice(0);
      if (jobs.length === 0) {
        starting.delete(key);
        return;
      }
      q.running = true;
      void startWith(env, prefix, jobs).finally(() => {
        q.running = false;
        next();
      });
    };
    setImmediate(next);
  });
}

/** One mrg-node for these containers; each job is told how its node fared. */
async function startWith(env: Env, prefix: string, jobs: StartJob[]): Promise<void> {
  const byName = new Map<string, StartJob[]>();
  for (const j of jobs) {
    const name = j.line.split(" ")[1] as string;
    byName.set(name, [...(byName.get(name) ?? []), j]);
  }
  const tell = (name: string, error?: string) => {
    for (const j of byName.get(name) ?? []) j.done(error);
    byName.delete(name);
  };
  await new Promise<void>((resolve) => {
    const c = spawn(env.bin.node, [resolvePath(env.dataDir)], { stdio: ["pipe", "pipe", "pipe"], env: starterEnv() });
    // Booting nodes yield the cores to what wires the next ones (iproute2, this process, nex, foundry): at equal
    // priority a share's single iproute2 batch got a 40th of the cores beside the previous share's boots, and the
    // next share's wiring finished only once they were done. Set before its input (mrg-node forks after reading
    // it all), so every init inherits it; each init goes back to 0 when its boot ends (mrg-node.c).
    if (c.pid) setPriority(c.pid, BOOT_NICE);
    const rl = createInterface({ input: c.stdout });
    rl.on("line", (l) => {
      const m = /^(ok|err) (\S+) (.*)$/.exec(l);
      if (!m) return;
      const name = m[2] as string;
      if (m[1] === "ok") {
        writeFileSync(join(nodeDir(env, prefix, name), "pid"), `${m[3]}\n`);
        tell(name);
      } else tell(name, `${name}: ${m[3]}`);
    });
    let stderr = "";
    c.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const end = (why: string) => {
      for (const name of [...byName.keys()]) tell(name, `${name}: ${why}`);
      resolve();
    };
    c.on("error", (e) => end(`mrg-node: ${e.message}`));
    c.on("close", (code, signal) => end(`mrg-node exited ${code ?? signal}: ${stderr.trim()}`));
    // Unique lines: a node asked twice meanwhile is started once, both callers told.
    c.stdin.end(`${[...new Set(jobs.map((j) => j.line))].join("\n")}\n`);
  });
}

/** Stop a node: SIGTERM its init (which stops everything inside), SIGKILL after `graceMs`. */
export async function nodeStop(
  env: Env,
  prefix: string,
  node: string,
  graceMs = 2000,
  opts: { downInterfaces?: boolean } = {},
): Promise<void> {
  const pid = nodePid(env, prefix, node);
  if (pid) {
    if (graceMs > 0) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {}
      const end = Date.now() + graceMs;
      while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    }
    await killAll([pid]);
  }
  // Whatever else still runs in the node's namespace (a process that escaped the pid namespace, e.g. an exec),
  // but not our own iproute2 batches working in it meanwhile (a link teardown in parallel with this recycle):
  // killed, they fail that action, and a failed teardown action stalls the dematerialize.
  const ns = namesOf(prefix).node(node);
  const rest = processesIn([ns])
    .map((p) => p.pid)
    .filter((pid) => !ownTool(pid));
  if (rest.length) await killAll(rest);
  rmSync(join(nodeDir(env, prefix, node), "pid"), { force: true });
  // A powered-off machine answers nothing: its interfaces go down and lose their addresses (the boot sets them again).
  if ((opts.downInterfaces ?? true) && listNetns().includes(ns)) {
    const ifs = (await run("ip", ["-n", ns, "-o", "link", "show"])).stdout
      .split("\n")
      .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
      .filter((x): x is string => !!x && x !== "lo");
    await env.ipIn(ns).submit(
      ifs.flatMap((i) => [`link set dev ${i} down`, `addr flush dev ${i}`]),
      { absentOk: true },
    );
  }
}

/** An iproute2 process this process started (an `IprouteBatch` in command.ts), visiting a namespace to change it. */
export function ownTool(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const ppid = Number(stat.slice(close + 2).split(" ")[1]);
    return ppid === process.pid && (comm === "ip" || comm === "tc");
  } catch {
    return false;
  }
}

/** Drop the node's writable layer: the next start is a freshly imaged node. */
export function nodeWipe(env: Env, prefix: string, node: string): void {
  const dir = nodeDir(env, prefix, node);
  rmSync(join(dir, "upper"), { recursive: true, force: true });
  rmSync(join(dir, "work"), { recursive: true, force: true });
}

export type NodeBoot = "ready" | "failed" | "booting";

export function nodeBoot(env: Env, prefix: string, node: string): { state: NodeBoot; reason?: string } {
  const dir = join(nodeDir(env, prefix, node), "upper/etc/mrg");
  if (existsSync(join(dir, "ready"))) return { state: "ready" };
  if (existsSync(join(dir, "failed")))
    return { state: "failed", reason: readFileSync(join(dir, "failed"), "utf8").trim() };
  return { state: "booting" };
}

/** Wait until every node reports configured; throws naming the nodes that failed or are late. */
export async function waitReady(
  env: Env,
  prefix: string,
  nodes: string[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  let pending = nodes;
  for (;;) {
    const failed: string[] = [];
    pending = pending.filter((node) => {
      const b = nodeBoot(env, prefix, node);
      if (b.state === "failed") failed.push(`${node}: ${b.reason}`);
      return b.state === "booting";
    });
    if (failed.length) throw new Error(`nodes failed to configure: ${failed.slice(0, 5).join("; ")}`);
    if (pending.length === 0) return;
    if (Date.now() > end) {
      throw new Error(
        `nodes not configured after ${timeoutMs} ms: ${pending.slice(0, 10).join(", ")}${pending.length > 10 ? ` (${pending.length} in all)` : ""}`,
      );
    }
    if (signal?.aborted) throw new Error("aborted while waiting for nodes");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Run a command in a running node (all its namespaces, its root), streaming
 * output: the returned child's stdout/stderr, or the caller's terminal with
 * `stdio: "inherit"` (an interactive shell: `["/bin/sh", "-l"]`).
 */
export function nodeExec(
  env: Env,
  prefix: string,
  node: string,
  argv: string[],
  opts: { stdio?: "pipe" | "inherit" } = {},
): ChildProcess {
  const pid = nodePid(env, prefix, node);
  if (!pid) throw new Error(`node ${node} is not running (power it on first)`);
  return spawn("nsenter", ["-t", String(pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--", ...argv], {
    stdio: opts.stdio ?? "pipe",
    env: {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: "/root",
      TERM: process.env.TERM ?? "xterm",
    },
  });
}

/** Run to completion and collect output. */
export function nodeRun(
  env: Env,
  prefix: string,
  node: string,
  argv: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = nodeExec(env, prefix, node, argv);
    let stdout = "";
    let stderr = "";
    c.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    c.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    c.on("error", reject);
    c.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
