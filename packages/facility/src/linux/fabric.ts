/**
 * A facility of several hosts on this one machine (`npm start -- --hosts N`,
 * the multi-host tests and benchmarks): each host is a network namespace with
 * its own underlay address on a fabric bridge, its own data directory, its own
 * host certificate and its own agent process (`daemon.ts agent`, run in the
 * host's namespace, qualifying its kernel object names with the host's name).
 * The fabric's first address is the facility's own (its host registry and
 * VTEP listen there). Optionally a routed underlay: some hosts on a second
 * subnet behind a router namespace that delays each way (a wide-area facility).
 *
 * Every kernel object name of the fabric itself starts with its `run` prefix;
 * what the agents make carries their materializations' prefixes, each
 * journaled in the host's data directory before first use. `close()` removes
 * everything: agents (by pid), what each host holds of every prefix it
 * journaled (or has a directory or state of, or was told of by `track`), any
 * process still running from or on the fabric's directory and any mount under
 * it, the host and router namespaces, the bridges.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeHostCert } from "../certs.ts";
import { unmountUnder } from "./env.ts";
import { prefixOn } from "./names.ts";
import { nativeProgram } from "./native.ts";
import { alive, killAll, listNetns } from "./processes.ts";
import { journaledPrefixes, prefixesOwned } from "./state.ts";
import { isClean, sweep } from "./sweep.ts";
import { UNDERLAY_MTU } from "./vtep.ts";

const DAEMON = fileURLToPath(new URL("../daemon.ts", import.meta.url));
/** How long an agent may take to register (tsx compiles it first; a loaded machine is slow). */
// A first start compiles the native programs into the host's data directory: slow on a loaded machine.
const REGISTER_MS = 180_000;

export interface FabricHost {
  name: string;
  netns: string;
  underlay: string;
  dataDir: string;
  /** The host's certificate directory (made by `startAgent` from the facility CA). */
  certs: string;
  /** The running agent, if any. */
  agent?: ChildProcess;
}

export interface AgentStart {
  /** The facility's host registry URL (on the fabric's gateway). */
  registry: string;
  /** The facility's certificate directory (its CA signs the host's certificate). */
  ca: string;
  defaultImage?: string;
  /** An fd the agent watches (`--parent-fd`): its end stops the agent (however this process ends). */
  parentPipe?: boolean;
  /** More arguments for the agent (e.g. a shared host's `--nat`). */
  args?: string[];
}

export interface Fabric {
  run: string;
  dir: string;
  /** The fabric's first address: the facility's own underlay address. */
  gateway: string;
  hosts: FabricHost[];
  host(name: string): FabricHost;
  /**
   * What a host's agent qualifies its kernel object names with (`<host>@<run>`): two fabrics (concurrent or
   * one after another) with the same host names and the same mzid never share a name. `prefixOn(mzid, it)`.
   */
  qualifier(host: string): string;
  /** Start (or restart) a host's agent; resolves once the facility has taken its registration. */
  startAgent(host: string, o: AgentStart): Promise<void>;
  /** Signal a host's agent (SIGKILL: as if its machine died; what it made stays) and wait until it is gone. */
  killAgent(host: string, signal?: NodeJS.Signals): Promise<void>;
  /**
   * A materialization the hosts may carry: `close` sweeps its objects on every
   * host even where no state of it was written (an agent killed mid-setup).
   */
  track(mzid: string): void;
  /** Stop every agent (SIGTERM, then SIGKILL after 10 s). */
  stopAgents(): Promise<void>;
  /** Stop the agents and remove everything; throws naming what could not be removed. */
  close(): Promise<void>;
}

export interface FabricOptions {
  /** Prefix of every kernel object name (≤ 8 characters); default a random `mf` + 4 hex. */
  run?: string;
  /** Where each host's data directory, certificates and agent log go. */
  dir: string;
  hosts: string[];
  /** A routed underlay: these hosts behind a router that delays each way by `delayMs`. */
  routed?: { hosts: string[]; delayMs: number };
  log?: (m: string) => void;
}

function ip(args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
}

/** A /24 in 10.200-249.x whose addresses no interface or route of this machine uses yet. */
function freeSubnet(): string {
  const used = spawnSync("ip", ["-4", "-o", "route", "show", "table", "all"], { encoding: "utf8" }).stdout;
  for (let i = 0; i < 100; i++) {
    const b = randomBytes(2);
    const s = `10.${200 + (b[0]! % 50)}.${b[1]! % 250}`;
    if (!used.includes(`${s}.`)) return s;
  }
  throw new Error("no free 10.200-249.x/24 subnet for the fabric");
}

/** What a fabric records in its directory while it is up: a start killed outright leaves it for the next (`removeStaleFabric`). */
const RECORD = "fabric.json";

interface FabricRecord {
  run: string;
  hosts: { name: string; netns: string; dataDir: string }[];
  /** A routed underlay's delay line (mrg-emu), a process of its own. */
  delayPid?: number;
}

/** Every namespace and interface whose name starts with `run`. */
function removeRun(run: string): void {
  for (const ns of listNetns().filter((n) => n.startsWith(run))) spawnSync("ip", ["netns", "del", ns]);
  const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
  for (const l of links.split("\n")) {
    const name = /^\d+: ([^:@]+)/.exec(l)?.[1];
    if (name?.startsWith(run)) spawnSync("ip", ["link", "del", name], { stdio: "ignore" });
  }
}

/**
 * Processes that run from the fabric's directory or name it (native programs
 * compiled into a host's data directory, dnsmasq on a host's config): the
 * fabric's by construction, whatever namespace they are in.
 */
function processesOf(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const exe = readlinkSync(`/proc/${pid}/exe`);
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      // An agent is a node process running the facility's daemon, its data directory in its arguments.
      if (exe.startsWith(`${dir}/`) || cmd.split("\0").some((a) => a.includes(`${dir}/`))) out.push(pid);
    } catch {}
  }
  return out;
}

/** What a host's agents used: every prefix it journaled, has a directory of, or was told of. */
function prefixesOfHost(dataDir: string, tracked: string[]): string[] {
  const here = existsSync(dataDir) ? [...prefixesOwned(dataDir), ...journaledPrefixes(dataDir)] : [];
  return [...new Set([...here, ...tracked])];
}

/**
 * Remove what a fabric in `dir` left when its process was killed outright
 * (its agents watch that process's pipe and stopped with it): what its hosts
 * hold, its namespaces and interfaces. Returns its run prefix, if there was one.
 */
export async function removeStaleFabric(dir: string): Promise<string | undefined> {
  const file = join(dir, RECORD);
  if (!existsSync(file)) return undefined;
  const r = JSON.parse(readFileSync(file, "utf8")) as FabricRecord;
  // The delay line outlives a start killed outright; it is ours if it serves this run's delay namespace.
  if (r.delayPid && alive(r.delayPid)) {
    let argv = "";
    try {
      argv = readFileSync(`/proc/${r.delayPid}/cmdline`, "utf8");
    } catch {}
    if (argv.includes(`/run/netns/${r.run}-dl`)) process.kill(r.delayPid, "SIGKILL");
  }
  for (const h of r.hosts) for (const prefix of prefixesOfHost(h.dataDir, [])) await sweep(prefix, h.dataDir);
  await killAll(processesOf(dir));
  unmountUnder(dir);
  for (const h of r.hosts) rmSync(h.dataDir, { recursive: true, force: true });
  removeRun(r.run);
  rmSync(file, { force: true });
  return r.run;
}

export async function openFabric(o: FabricOptions): Promise<Fabric> {
  const run = o.run ?? `mf${randomBytes(2).toString("hex")}`;
  const log = o.log ?? (() => {});
  const subnet = freeSubnet();
  const gateway = `${subnet}.1`;
  const bridge = `${run}fab`;
  // The far side of a routed underlay: its own bridge and subnet, a router namespace between.
  const far = `${run}far`;
  const router = `${run}-rt`;
  const delay = `${run}-dl`;
  const farNet = `10.${200 + ((Number(subnet.split(".")[1]) - 200 + 25) % 50)}.${subnet.split(".")[2]}`;
  let delayLine: ChildProcess | undefined;
  const hosts: FabricHost[] = [];
  const tracked = new Set<string>();
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });

  const host = (name: string): FabricHost => {
    const h = hosts.find((x) => x.name === name);
    if (!h) throw new Error(`the fabric has no host '${name}' (hosts: ${hosts.map((x) => x.name).join(", ")})`);
    return h;
  };
  const logFile = (h: FabricHost) => join(o.dir, `${h.name}-agent.log`);

  const killAgent = async (name: string, signal: NodeJS.Signals = "SIGKILL") => {
    const c = host(name).agent;
    if (!c?.pid || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill(signal);
    const t = setTimeout(() => c.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
    if (alive(c.pid)) throw new Error(`agent ${name} (pid ${c.pid}) is still running`);
  };
  const stopAgents = async () => {
    await Promise.all(hosts.map((h) => killAgent(h.name, "SIGTERM").catch(() => killAgent(h.name, "SIGKILL"))));
  };

  const qualifier = (name: string) => `${name}@${run}`;
  const startAgent = async (name: string, a: AgentStart) => {
    const h = host(name);
    await killAgent(name);
    makeHostCert(a.ca, h.certs, name, { addresses: [h.underlay] });
    const out = createWriteStream(logFile(h), { flags: "a" });
    // nsenter only enters the network namespace: mounts (node roots) stay the machine's, as on a host.
    const child = spawn(
      "nsenter",
      [
        `--net=/run/netns/${h.netns}`,
        "--",
        process.execPath,
        "--import",
        "tsx",
        DAEMON,
        "agent",
        "--name",
        name,
        "--registry",
        a.registry,
        "--certs",
        h.certs,
        "--data-dir",
        h.dataDir,
        "--underlay",
        h.underlay,
        ...(a.defaultImage ? ["--default-image", a.defaultImage] : []),
        "--qualify-names",
        "--name-qualifier",
        qualifier(name),
        ...(a.parentPipe ? ["--parent-fd", "3"] : []),
        ...(a.args ?? []),
      ],
      { stdio: ["ignore", "pipe", "pipe", ...(a.parentPipe ? (["pipe"] as const) : [])] },
    );
    h.agent = child;
    child.stdout?.pipe(out);
    // The agent says when the facility has taken its registration (daemon.ts agent).
    await new Promise<void>((res, rej) => {
      let seen = "";
      const t = setTimeout(
        () => done(new Error(`agent ${name} did not register in ${REGISTER_MS / 1000} s`)),
        REGISTER_MS,
      );
      const onData = (d: Buffer) => {
        out.write(d);
        seen = (seen + d.toString()).slice(-4096);
        if (seen.includes(`host agent ${name}: registered`)) done();
      };
      const onExit = (code: number | null, sig: string | null) =>
        done(
          new Error(
            `agent ${name} exited (${sig ?? `code ${code}`}): ${readFileSync(logFile(h), "utf8").slice(-2000)}`,
          ),
        );
      const done = (e?: Error) => {
        clearTimeout(t);
        child.off("exit", onExit);
        child.stderr?.off("data", onData);
        child.stderr?.pipe(out);
        if (e) rej(e);
        else res();
      };
      child.stderr?.on("data", onData);
      child.once("exit", onExit);
    });
  };

  const close = async () => {
    log(`fabric ${run}: stopping the agents`);
    await stopAgents();
    log(`fabric ${run}: sweeping the hosts`);
    const left: string[] = [];
    for (const h of hosts) {
      for (const prefix of prefixesOfHost(
        h.dataDir,
        [...tracked].map((m) => prefixOn(m, qualifier(h.name))),
      )) {
        const l = await sweep(prefix, h.dataDir);
        if (!isClean(l)) left.push(`${h.name} ${prefix}: ${JSON.stringify(l)}`);
      }
    }
    // Whatever still runs from or on the fabric's directory, and what is mounted under it.
    const stray = await killAll(processesOf(o.dir));
    if (stray.length) left.push(`processes ${stray.join(", ")} would not die`);
    unmountUnder(o.dir);
    for (const h of hosts) if (listNetns().includes(h.netns)) spawnSync("ip", ["netns", "del", h.netns]);
    // Killed above already (it runs from the fabric's directory): a signal's end leaves exitCode null, and
    // waiting for an 'exit' already past would hang close() until the event loop drained.
    if (delayLine?.pid && delayLine.exitCode === null && delayLine.signalCode === null) {
      const gone = new Promise((r) => delayLine?.once("exit", r));
      delayLine.kill("SIGKILL");
      await gone;
    }
    for (const ns of [router, delay]) if (listNetns().includes(ns)) spawnSync("ip", ["netns", "del", ns]);
    for (const dev of [bridge, far]) spawnSync("ip", ["link", "del", dev], { stdio: "ignore" });
    removeRun(run);
    // Images are in the machine's cache (image.ts), not here: nothing of a host is kept.
    for (const h of hosts) rmSync(h.dataDir, { recursive: true, force: true });
    if (!left.length) rmSync(join(o.dir, RECORD), { force: true });
    if (left.length) throw new Error(`fabric ${run} left behind: ${left.join("; ")}`);
  };

  writeFileSync(join(o.dir, RECORD), JSON.stringify({ run, hosts: [] } satisfies FabricRecord));
  const fabric: Fabric = {
    run,
    dir: o.dir,
    gateway,
    hosts,
    host,
    qualifier,
    startAgent,
    killAgent,
    track: (mzid) => tracked.add(mzid),
    stopAgents,
    close,
  };
  try {
    // The underlay carries the tunnels' overhead (vtep.ts): 1550 on the fabric, 1500 for nodes.
    ip(["link", "add", bridge, "mtu", String(UNDERLAY_MTU), "type", "bridge"]);
    ip(["addr", "add", `${gateway}/24`, "dev", bridge]);
    ip(["link", "set", bridge, "up"]);
    if (o.routed) {
      // fabric (subnet.0/24) ⇄ router ⇄ delay line ⇄ far bridge (farNet.0/24). The delay line is the
      // data plane's own userspace one (mrg-emu: this kernel may have no netem), each way delayed.
      ip(["link", "add", far, "mtu", String(UNDERLAY_MTU), "type", "bridge"]);
      ip(["link", "set", far, "up"]);
      ip(["netns", "add", router]);
      ip(["netns", "add", delay]);
      const mtu = ["mtu", String(UNDERLAY_MTU)];
      ip(["link", "add", `${run}ra`, ...mtu, "type", "veth", "peer", "name", "ra", "netns", router]);
      ip(["link", "set", `${run}ra`, "master", bridge, "up"]);
      ip(["-n", router, "link", "add", "rb", ...mtu, "type", "veth", "peer", "name", "d0", "netns", delay]);
      ip(["link", "add", `${run}rf`, ...mtu, "type", "veth", "peer", "name", "d1", "netns", delay]);
      ip(["link", "set", `${run}rf`, "master", far, "up"]);
      ip(["-n", router, "addr", "add", `${subnet}.254/24`, "dev", "ra"]);
      ip(["-n", router, "addr", "add", `${farNet}.1/24`, "dev", "rb"]);
      // A veth's peer takes the default MTU: every leg carries the tunnels' overhead.
      for (const dev of ["ra", "rb"]) ip(["-n", router, "link", "set", dev, ...mtu]);
      for (const dev of ["d0", "d1"]) ip(["-n", delay, "link", "set", dev, ...mtu]);
      for (const dev of ["lo", "ra", "rb"]) ip(["-n", router, "link", "set", dev, "up"]);
      for (const dev of ["lo", "d0", "d1"]) ip(["-n", delay, "link", "set", dev, "up"]);
      const emu = await nativeProgram(o.dir, "mrg-emu");
      const ns = `${o.routed.delayMs * 1e6}`;
      delayLine = spawn(
        emu,
        ["-n", `/run/netns/${delay}`, "-c", join(o.dir, `${run}-delay.sock`), `d0:${ns}:0`, `d1:${ns}:0`],
        { stdio: ["ignore", "ignore", openSync(join(o.dir, `${run}-delay.log`), "a")] },
      );
      ip(["netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
      // The facility (on the fabric) reaches the far side through the router; the route goes with the bridge.
      ip(["route", "add", `${farNet}.0/24`, "via", `${subnet}.254`, "dev", bridge]);
    }
    const record = (): FabricRecord => ({
      run,
      hosts: hosts.map((h) => ({ name: h.name, netns: h.netns, dataDir: h.dataDir })),
      ...(delayLine?.pid ? { delayPid: delayLine.pid } : {}),
    });
    o.hosts.forEach((name, i) => {
      const netns = `${run}-${name}`;
      const isFar = o.routed?.hosts.includes(name) ?? false;
      const underlay = `${isFar ? farNet : subnet}.${10 + i}`;
      const dataDir = join(o.dir, name);
      mkdirSync(dataDir, { recursive: true });
      const h: FabricHost = { name, netns, underlay, dataDir, certs: join(o.dir, `${name}-certs`) };
      hosts.push(h);
      writeFileSync(join(o.dir, RECORD), JSON.stringify(record()));
      ip(["netns", "add", netns]);
      const veth = `${run}v${i}`;
      ip(["link", "add", veth, "mtu", String(UNDERLAY_MTU), "type", "veth", "peer", "name", "ul0", "netns", netns]);
      ip(["link", "set", veth, "master", isFar ? far : bridge, "up"]);
      ip(["-n", netns, "addr", "add", `${underlay}/24`, "dev", "ul0"]);
      ip(["-n", netns, "link", "set", "ul0", "mtu", String(UNDERLAY_MTU), "up"]);
      ip(["-n", netns, "link", "set", "lo", "up"]);
      // Across the router: each side's hosts reach the other subnet through it.
      if (o.routed)
        ip([
          "-n",
          netns,
          "route",
          "add",
          `${isFar ? subnet : farNet}.0/24`,
          "via",
          isFar ? `${farNet}.1` : `${subnet}.254`,
        ]);
    });
    log(
      `fabric ${run}: bridge ${bridge} ${gateway}/24, hosts ${hosts.map((h) => `${h.name} ${h.underlay}`).join(", ")}`,
    );
    return fabric;
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}

/** The veth on the fabric bridge of a host (index in the fabric's host list): taking it down cuts the host off. */
export function fabricVeth(f: Fabric, host: string): string {
  return `${f.run}v${f.hosts.findIndex((h) => h.name === host)}`;
}
