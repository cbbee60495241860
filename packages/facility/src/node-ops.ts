/**
 * Operations on a running materialization, outside its task DAG: power a node,
 * change an emulated link at runtime, run a command in a node. They act at once
 * on the backend held in this process (the single-machine facility keeps rex,
 * driver and backend together), and record what they changed in the store next
 * to the materialization, so status shows it and teardown discards it.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Writable } from "node:stream";
import { type Store, updateJSON } from "@merge/store";
import type { EmulationValues } from "@merge/xir";
import { type CatalogCode, MergeError } from "@merge/xir/errors";
import type {
  ActionContext,
  Backend,
  EmulationParams,
  EmulationSpec,
  GatewayEndSpec,
  MzId,
  NodeAction,
  NodeSpec,
} from "./backend.ts";
import { readActions, readJSON } from "./driver.ts";
import type { NodeActivity } from "./linux/activity.ts";
import { type AttachGrant, attachPeer, detachPeer } from "./linux/attach.ts";
import { nodePid } from "./linux/container.ts";
import type { Env } from "./linux/env.ts";
import { prefixOf } from "./linux/names.ts";
import { keys, type MzInfo, type NodeRecord } from "./task.ts";

/** on/off once settled; the others while a change is under way. */
export type PowerState = "on" | "off" | "starting" | "stopping" | "cycling" | "reimaging";

export interface PowerRecord {
  state: PowerState;
  /** Why the last change failed. */
  error?: string;
  updated: string;
}

export type ExecChunk = { stdout: Uint8Array } | { stderr: Uint8Array } | { exit: number };

export interface WindowSize {
  rows: number;
  cols: number;
}

/** What a shell's caller sends: keystrokes or piped input, a new window size, the end of input. */
export type ShellInput = { stdin: Uint8Array } | { resize: WindowSize } | { eof: true };

export class NodeOpsError extends MergeError<"node-ops"> {
  constructor(code: CatalogCode<"node-ops">, message: string) {
    super("node-ops", code, message);
  }
}

const DURING: Record<NodeAction, PowerState> = {
  on: "starting",
  off: "stopping",
  cycle: "cycling",
  "soft-cycle": "cycling",
  reimage: "reimaging",
};

/** A backend whose nodes are processes on this host (the linux data plane). */
interface ProcessHost {
  dataPlane: {
    env: Env;
    exec(mzid: string, node: string, argv: string[], opts?: { stdio?: "pipe" }): ChildProcess;
    /** A shell on a pty the node makes itself (a VM's guest agent); undefined when the host makes it (`ptyShell`). */
    vmShell?(mzid: string, node: string, size?: WindowSize): ChildProcess | undefined;
    /** What each node did so far (linux/activity.ts). */
    activity?(mzid: string): Promise<NodeActivity[]>;
  };
}

function processHost(b: Backend): ProcessHost | undefined {
  const dp = (b as unknown as Partial<ProcessHost>).dataPlane;
  return dp && typeof dp.exec === "function" ? (b as unknown as ProcessHost) : undefined;
}

function unmeasured(node: string, why: string): NodeActivity {
  return { node, cpuSeconds: 0, rxPackets: 0, txPackets: 0, sshSessions: 0, unmeasured: why };
}

/**
 * What a materialization's nodes on this machine did so far (a host agent's,
 * or the facility's own); none when this machine holds none of them.
 */
export async function localActivity(backend: Backend, mzid: MzId): Promise<NodeActivity[]> {
  const dp = processHost(backend)?.dataPlane;
  if (!dp?.activity) return [];
  try {
    return await dp.activity(mzid);
  } catch (e) {
    if (/is not known to this linux backend/.test((e as Error).message)) return [];
    throw e;
  }
}

/** Check runtime emulation values; names the field and what is valid. */
export function checkEmulation(p: EmulationValues): void {
  if (p.capacity !== undefined && !(Number.isFinite(p.capacity) && p.capacity > 0))
    throw new NodeOpsError("invalid_argument", `capacity ${p.capacity}: expected bits/s > 0`);
  if (p.latency !== undefined && !(Number.isFinite(p.latency) && p.latency >= 0 && p.latency <= 10e9))
    throw new NodeOpsError("invalid_argument", `latency ${p.latency}: expected 0..10 s in ns`);
  if (p.loss !== undefined && !(Number.isFinite(p.loss) && p.loss >= 0 && p.loss <= 1))
    throw new NodeOpsError("invalid_argument", `loss ${p.loss}: expected a fraction 0..1`);
}

const FIELDS = ["capacity", "latency", "loss"] as const;

/** A link's emulation after a change, in every direction or toward one node (see `NodeOps.emulation`). */
export function changedEmulation(cur: EmulationParams, change: EmulationValues, toward?: string): EmulationParams {
  const { toward: directions = [], ...link } = cur;
  if (toward === undefined) {
    const next: EmulationParams = { ...link };
    for (const k of FIELDS) if (change[k] !== undefined) next[k] = change[k];
    // The change holds in every direction: what a direction had of its own for these fields goes.
    const left = directions.flatMap((d) => {
      const own: typeof d = { node: d.node };
      for (const k of FIELDS) if (d[k] !== undefined && change[k] === undefined) own[k] = d[k];
      return Object.keys(own).length > 1 ? [own] : [];
    });
    if (left.length) next.toward = left;
    return next;
  }
  const had = directions.find((d) => d.node === toward) ?? { node: toward };
  const mine = { ...had };
  for (const k of FIELDS) if (change[k] !== undefined) mine[k] = change[k];
  return { ...link, toward: [...directions.filter((d) => d.node !== toward), mine] };
}

export class NodeOps {
  /** Nodes with a power change under way in this process: one at a time per node. */
  private readonly busy = new Set<string>();

  constructor(
    readonly store: Store,
    readonly backend: Backend,
    private readonly log: (m: string) => void = () => {},
  ) {}

  /**
   * What each node of a materialization did so far (CPU time, packets on its
   * experiment interfaces, ssh sessions now), for the portal's idle detection.
   * A backend without real nodes reports each node as unmeasured, with why.
   */
  async activity(mzid: MzId): Promise<NodeActivity[]> {
    const info = await this.info(mzid);
    if (!processHost(this.backend)) {
      return info.nodes.map((n) =>
        unmeasured(n.node, `the ${this.backend.name} backend runs no real nodes to measure`),
      );
    }
    // Nodes on other hosts are measured by their hosts' agents, all at once; the rest here.
    const routed = this.backend as unknown as Partial<RemoteNodes>;
    const hosts = new Set<string>();
    for (const n of info.nodes) {
      const host = routed.hostOfResource?.(n.resource);
      if (host) hosts.add(host);
    }
    const byHost = new Map<string, Map<string, NodeActivity>>();
    const failed = new Map<string, string>();
    const keep = (host: string, all: NodeActivity[]) => byHost.set(host, new Map(all.map((a) => [a.node, a])));
    await Promise.all([
      localActivity(this.backend, mzid).then((all) => keep("", all)),
      ...[...hosts].map((host) =>
        routed.nodeActivity!(host, mzid, AbortSignal.timeout(30_000)).then(
          (all) => keep(host, all),
          (e: Error) => failed.set(host, e.message),
        ),
      ),
    ]);
    return info.nodes.map((n) => {
      const host = routed.hostOfResource?.(n.resource) ?? "";
      const why = failed.get(host);
      return (
        byHost.get(host)?.get(n.node) ??
        unmeasured(n.node, why ? `its host ${host} did not answer: ${why}` : "not running on its host")
      );
    });
  }

  private ctx(signal?: AbortSignal): ActionContext {
    return { signal: signal ?? new AbortController().signal, log: this.log };
  }

  private async info(mzid: MzId): Promise<MzInfo> {
    const info = (await readJSON<MzInfo>(this.store, keys.info(mzid)))?.value;
    if (!info || info.phase === "incoming")
      throw new NodeOpsError("not_found", `materialization ${mzid} is not materialized on this facility`);
    if (info.phase === "dematerializing")
      throw new NodeOpsError("failed_precondition", `materialization ${mzid} is being dematerialized`);
    return info;
  }

  /** The node, which must be set up (ready) in the materialization. */
  private async readyNode(mzid: MzId, node: string): Promise<{ node: string; resource: string }> {
    const info = await this.info(mzid);
    const n = info.nodes.find((x) => x.node === node);
    if (!n) {
      const names = info.nodes.map((x) => x.node).join(", ");
      throw new NodeOpsError("not_found", `materialization ${mzid} has no node '${node}' (nodes: ${names})`);
    }
    const rec = (await readJSON<NodeRecord>(this.store, keys.node(n.state ?? n.resource)))?.value;
    if (rec?.mzid !== mzid || rec.current !== "ready") {
      throw new NodeOpsError(
        "failed_precondition",
        `node ${node} is ${rec?.mzid === mzid ? rec.current : "not set up"}, not ready; wait until the materialization is active`,
      );
    }
    return n;
  }

  async powerState(mzid: MzId, node: string): Promise<PowerRecord | undefined> {
    return (await readJSON<PowerRecord>(this.store, keys.power(mzid, node)))?.value;
  }

  /**
   * Power a node, or reimage it (its disk back to its image, then booted and
   * configured as at materialize); the tracked state shows the change while it
   * runs and its outcome after.
   */
  async power(mzid: MzId, node: string, action: NodeAction, signal?: AbortSignal): Promise<PowerRecord> {
    const n = await this.readyNode(mzid, node);
    const id = `${mzid}/${node}`;
    if (this.busy.has(id))
      throw new NodeOpsError(
        "failed_precondition",
        `node ${node} has a power change under way; try again when it ends`,
      );
    this.busy.add(id);
    const put = async (r: Omit<PowerRecord, "updated">) => {
      const rec = { ...r, updated: new Date().toISOString() };
      await this.store.put(keys.power(mzid, node), JSON.stringify(rec));
      return rec;
    };
    const before = (await this.powerState(mzid, node))?.state ?? "on";
    try {
      await put({ state: DURING[action] });
      const outcome =
        action === "reimage"
          ? await this.backend.nodeReset(await this.setupSpec(mzid, node), this.ctx(signal))
          : await this.backend.nodePower(n.resource, action, this.ctx(signal), { mzid, node });
      // The node's status shows the profile it has now (a VM's is measured again at each boot).
      if (outcome?.profile) {
        const profile = outcome.profile;
        await updateJSON<MzInfo>(
          this.store,
          keys.info(mzid),
          (cur) => cur && { ...cur, profiles: { ...cur.profiles, [node]: profile } },
          { what: `materialization record of ${mzid}` },
        );
      }
      return await put({ state: action === "off" ? "off" : "on" });
    } catch (err) {
      // The node is where it was, as far as we know; the error says why it is not where asked.
      await put({ state: before === "off" ? "off" : "on", error: `power ${action}: ${(err as Error).message}` });
      throw err;
    } finally {
      this.busy.delete(id);
    }
  }

  /** What the node was set up with (its image, interfaces, routes): what a reimage restores. */
  private async setupSpec(mzid: MzId, node: string): Promise<NodeSpec> {
    for (const { action } of await readActions(this.store, mzid)) {
      if ((action.spec.kind === "node.setup" || action.spec.kind === "node.reset") && action.spec.node.node === node)
        return action.spec.node;
    }
    throw new NodeOpsError("not_found", `materialization ${mzid} has no setup of node '${node}' to reimage from`);
  }

  /** The emulation a link runs now: the last runtime change, else what it was materialized with. */
  async emulationOf(mzid: MzId, link: string): Promise<{ spec: EmulationSpec; params: EmulationParams } | undefined> {
    for (const { action } of await readActions(this.store, mzid)) {
      if (action.spec.kind !== "emulation.setup") continue;
      const l = action.spec.emulation.links.find((x) => x.link === link);
      if (!l) continue;
      const changed = (await readJSON<EmulationParams>(this.store, keys.emulation(mzid, link)))?.value;
      return { spec: action.spec.emulation, params: changed ?? l.params };
    }
    return undefined;
  }

  /**
   * Change an emulated link; fields left out keep their values. Without
   * `toward` the change holds in every direction (a direction set apart loses
   * its own value for the fields changed); with `toward: node` only the
   * direction toward that endpoint changes. Returns the link's emulation now.
   */
  async emulation(
    mzid: MzId,
    link: string,
    change: EmulationValues,
    opts: { toward?: string; signal?: AbortSignal } = {},
  ): Promise<EmulationParams> {
    checkEmulation(change);
    const info = await this.info(mzid);
    const l = info.links.find((x) => x.link === link);
    if (!l) {
      const names = info.links.map((x) => x.link).join(", ");
      throw new NodeOpsError("not_found", `materialization ${mzid} has no link '${link}' (links: ${names})`);
    }
    const cur = await this.emulationOf(mzid, link);
    if (!l.emulated || !cur) {
      throw new NodeOpsError(
        "failed_precondition",
        `link ${link} is not emulated: only links with a latency, loss or capacity constraint run through an emulator (constrain it in the model and realize again)`,
      );
    }
    const entry = cur.spec.links.find((x) => x.link === link)!;
    const nodes = entry.endpoints.map((e) => e.node);
    if (opts.toward !== undefined && !nodes.includes(opts.toward)) {
      throw new NodeOpsError(
        "invalid_argument",
        `toward '${opts.toward}': not an endpoint of link ${link} (endpoints: ${nodes.join(", ")})`,
      );
    }
    const params = changedEmulation(cur.params, change, opts.toward);
    await this.backend.emulationUpdate({ ...cur.spec, links: [{ ...entry, params }] }, this.ctx(opts.signal));
    await this.store.put(keys.emulation(mzid, link), JSON.stringify(params));
    return params;
  }

  /**
   * Attach a peer (an XDC) to the materialization's infranet through its
   * infrapod's WireGuard endpoint (linux/attach.ts): its public key in, the
   * endpoint's public key, port and the peer's infranet address out.
   */
  async attach(mzid: MzId, peer: string, publicKey: string): Promise<AttachGrant> {
    const info = await this.info(mzid);
    const host = realNodes(this.backend, "there is no infranet to attach to");
    if (!info.infrapod?.infranet)
      throw new NodeOpsError(
        "failed_precondition",
        `materialization ${mzid} has no infrapod yet; wait until it is active`,
      );
    try {
      const grant = await attachPeer(host.dataPlane.env, prefixOf(mzid), info.infrapod.infranet, {
        id: peer,
        publicKey,
      });
      this.log(`attach ${mzid}: ${peer} at ${grant.address}`);
      return grant;
    } catch (e) {
      const m = (e as Error).message;
      if (/^(peer id|publicKey)/.test(m)) throw new NodeOpsError("invalid_argument", m);
      throw e;
    }
  }

  /**
   * The peer facilities' gateway ends of a materialization across facilities,
   * as the portal hands them over (public keys only): each is let into this
   * facility's tunnel toward it (linux/external.ts).
   */
  async gatewayPeers(mzid: MzId, peers: GatewayEndSpec[]): Promise<void> {
    await this.info(mzid);
    if (!this.backend.gatewayPeers)
      throw new NodeOpsError("failed_precondition", `the ${this.backend.name} backend has no gateway tunnels`);
    // Many hosts: each peer's end goes to the host of this facility's gateway toward it, as the plan says.
    const hosts = new Map<string, string>();
    for (const { action } of await readActions(this.store, mzid)) {
      if (action.spec.kind === "link.create")
        for (const x of action.spec.link.external ?? []) if (x.host) hosts.set(x.peer, x.host);
      if (action.spec.kind === "infrapod.enclave")
        for (const p of action.spec.infrapod.peers ?? []) if (p.host) hosts.set(p.peer, p.host);
    }
    const routed = peers.map((p) => (hosts.has(p.peer) ? { ...p, host: hosts.get(p.peer) } : p));
    try {
      await this.backend.gatewayPeers(mzid, routed, this.ctx());
    } catch (e) {
      throw new NodeOpsError("failed_precondition", (e as Error).message);
    }
    this.log(`gateway ${mzid}: peers ${peers.map((p) => `${p.peer} at ${p.endpoint}`).join(", ")}`);
  }

  /** Detach a peer; false when it was not attached (or the materialization is gone: nothing is left to detach). */
  async detach(mzid: MzId, peer: string): Promise<boolean> {
    const host = realNodes(this.backend, "there is no infranet to detach from");
    const done = await detachPeer(host.dataPlane.env, prefixOf(mzid), peer);
    if (done) this.log(`detach ${mzid}: ${peer}`);
    return done;
  }

  /** Run a command in a node: output as it comes, then the exit code. Killed when `signal` aborts or after `timeoutMs`. */
  async exec(
    mzid: MzId,
    node: string,
    argv: string[],
    signal: AbortSignal,
    timeoutMs = 0,
  ): Promise<AsyncIterable<ExecChunk>> {
    if (!argv.length || !argv[0]) throw new NodeOpsError("invalid_argument", "exec: no command given");
    const n = await this.readyNode(mzid, node);
    const remote = this.remote(n.resource);
    if (remote) return remote.routed.nodeExec(remote.host, { mzid, node, argv, timeoutMs }, signal);
    return execIn(this.backend, mzid, node, argv, signal, timeoutMs);
  }

  /**
   * An interactive shell in a node. With `tty` it runs on a pseudo-terminal
   * (util-linux `script` on the host holds the pty and enters the node's
   * namespaces inside it), so prompts, echo, job control and window size work;
   * without, `/bin/sh` reads commands from the piped input. With `argv`, that
   * command runs instead of the shell (no tty), its stdin the input, closed at
   * eof. Output streams as it comes, then the exit code. Killed when `signal`
   * aborts or after `timeoutMs`.
   */
  async shell(
    mzid: MzId,
    node: string,
    opts: ShellOptions,
    input: AsyncIterable<ShellInput>,
    signal: AbortSignal,
  ): Promise<AsyncIterable<ExecChunk>> {
    checkShell(opts);
    const n = await this.readyNode(mzid, node);
    const remote = this.remote(n.resource);
    if (remote) return remote.routed.nodeShell(remote.host, { mzid, node, ...opts }, input, signal);
    return shellIn(this.backend, mzid, node, opts, input, signal);
  }

  /** The host agent a node's commands go to, when its resource is on another host than this machine. */
  private remote(resource: string): { routed: RemoteNodes; host: string } | undefined {
    const routed = this.backend as unknown as Partial<RemoteNodes>;
    const host = routed.hostOfResource?.(resource);
    return host ? { routed: routed as RemoteNodes, host } : undefined;
  }
}

export interface ShellOptions {
  tty: boolean;
  size?: WindowSize;
  argv?: string[];
  timeoutMs?: number;
}

/** A backend whose nodes may be on other hosts (HostRoutedBackend): their commands go to those hosts' agents. */
export interface RemoteNodes {
  hostOfResource(resource: string): string | undefined;
  /** What the nodes of a materialization on that host did so far, as its agent measured them. */
  nodeActivity(host: string, mzid: string, signal: AbortSignal): Promise<NodeActivity[]>;
  nodeExec(
    host: string,
    req: { mzid: string; node: string; argv: string[]; timeoutMs: number },
    signal: AbortSignal,
  ): Promise<AsyncIterable<ExecChunk>>;
  nodeShell(
    host: string,
    req: { mzid: string; node: string } & ShellOptions,
    input: AsyncIterable<ShellInput>,
    signal: AbortSignal,
  ): Promise<AsyncIterable<ExecChunk>>;
}

function checkShell(opts: ShellOptions): void {
  const command = opts.argv?.length ? opts.argv : undefined;
  if (command && !command[0]) throw new NodeOpsError("invalid_argument", "shell: argv[0] is empty");
  if (command && opts.tty)
    throw new NodeOpsError("invalid_argument", "shell: a command (argv) runs without a tty; leave tty unset");
  if (opts.size) checkSize(opts.size);
}

/** The backend's processes, or a refusal saying why `what` cannot be done on a backend without real nodes. */
function realNodes(backend: Backend, what: string): ProcessHost {
  const host = processHost(backend);
  if (!host) {
    throw new NodeOpsError(
      "unimplemented",
      `the ${backend.name} backend runs no real nodes, so ${what}; use a facility on the linux backend`,
    );
  }
  return host;
}

/** A command in a node of this machine's backend (the facility's own, or a host agent's). */
export function execIn(
  backend: Backend,
  mzid: MzId,
  node: string,
  argv: string[],
  signal: AbortSignal,
  timeoutMs = 0,
): AsyncIterable<ExecChunk> {
  if (!argv.length || !argv[0]) throw new NodeOpsError("invalid_argument", "exec: no command given");
  const host = realNodes(backend, "there is nothing to exec in");
  const child = host.dataPlane.exec(mzid, node, argv, { stdio: "pipe" });
  // No input on this path: a command that reads stdin sees its end at once (shell with argv forwards input).
  child.stdin?.on("error", () => {});
  child.stdin?.end();
  return streamed(child, signal, timeoutMs);
}

/** A shell (or a command with its stdin) in a node of this machine's backend. */
export function shellIn(
  backend: Backend,
  mzid: MzId,
  node: string,
  opts: ShellOptions,
  input: AsyncIterable<ShellInput>,
  signal: AbortSignal,
): AsyncIterable<ExecChunk> {
  checkShell(opts);
  const command = opts.argv?.length ? opts.argv : undefined;
  const host = realNodes(backend, command ? "there is nothing to exec in" : "there is no shell to open");
  const child = opts.tty
    ? (host.dataPlane.vmShell?.(mzid, node, opts.size) ?? ptyShell(host.dataPlane.env, mzid, node, opts.size))
    : host.dataPlane.exec(mzid, node, command ?? ["/bin/sh"], { stdio: "pipe" });
  child.stdin?.on("error", () => {}); // the shell may exit with input still on its way
  const pump = async () => {
    for await (const m of input) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if ("stdin" in m) {
        // Pull no more input than the command takes (a large upload stays out of memory).
        if (child.stdin && !child.stdin.write(m.stdin)) await writable(child.stdin);
      } else if ("resize" in m) {
        if (opts.tty) resize(child, m.resize);
      } else {
        child.stdin?.end();
      }
    }
  };
  pump().catch(() => {});
  return streamed(child, signal, opts.timeoutMs ?? 0);
}

/** Until a stream that refused a write drains, or closes. */
function writable(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.off("drain", done);
      w.off("close", done);
      resolve();
    };
    w.on("drain", done);
    w.on("close", done);
  });
}

function checkSize(s: WindowSize): void {
  const ok = (n: number) => Number.isInteger(n) && n > 0 && n <= 10_000;
  if (!ok(s.rows) || !ok(s.cols))
    throw new NodeOpsError("invalid_argument", `window size ${s.rows}x${s.cols}: expected rows and cols 1..10000`);
}

const NODE_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root" };

/** `script` holds the pty; inside it, set the window size and enter the node (as nodeExec does) for a login shell. */
function ptyShell(env: Env, mzid: string, node: string, size?: WindowSize): ChildProcess {
  const pid = nodePid(env, prefixOf(mzid), node);
  if (!pid) throw new NodeOpsError("failed_precondition", `node ${node} is not running (power it on first)`);
  const stty = size ? `stty rows ${size.rows} cols ${size.cols} 2>/dev/null; ` : "";
  const enter = `exec nsenter -t ${pid} -m -u -i -n -p -r -w -- /bin/sh -l`;
  return spawn("script", ["-q", "-e", "-c", `${stty}${enter}`, "/dev/null"], {
    stdio: "pipe",
    env: { ...NODE_ENV, TERM: process.env.TERM ?? "xterm", SHELL: "/bin/sh" },
  });
}

/** Set the pty's window size: the process `script` runs in it has the pty on its stdin; the kernel signals SIGWINCH. */
function resize(child: ChildProcess, size: WindowSize): void {
  try {
    checkSize(size);
  } catch {
    return;
  }
  if (child.pid === undefined) return;
  // A VM's shell client takes window sizes on its fd 3 (vm-agent-client.mjs).
  const ctl = child.stdio[3] as Writable | null | undefined;
  if (ctl) {
    ctl.write(`${size.rows} ${size.cols}\n`);
    return;
  }
  try {
    const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").split(/\s+/).filter(Boolean);
    for (const k of kids) {
      spawnSync("stty", ["-F", `/proc/${k}/fd/0`, "rows", String(size.rows), "cols", String(size.cols)], {
        stdio: "ignore",
        timeout: 2000,
      });
    }
  } catch {}
}

/** Kill a command started through nsenter: nsenter forks it (new PID namespace), so its children go first. */
function killTree(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").split(/\s+/).filter(Boolean);
    for (const k of kids) {
      try {
        process.kill(Number(k), "SIGKILL");
      } catch {}
    }
  } catch {}
  child.kill("SIGKILL");
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };

/**
 * How long output may keep coming after the command exits: a child it left in
 * the background can hold the pipes open for ever, so the stream ends once they
 * are quiet (or after DRAIN_MAX_MS) rather than when they close.
 */
const DRAIN_QUIET_MS = 25;
const DRAIN_MAX_MS = 2000;

async function* streamed(child: ChildProcess, signal: AbortSignal, timeoutMs: number): AsyncGenerator<ExecChunk> {
  const queue: ExecChunk[] = [];
  let wake: () => void = () => {};
  let failure: Error | undefined;
  let exit: ExecChunk | undefined;
  let ended = false;
  let received = 0;
  const push = (c: ExecChunk) => {
    queue.push(c);
    wake();
  };
  const end = () => {
    if (ended || !exit) return;
    ended = true;
    child.stdout?.destroy();
    child.stderr?.destroy();
    push(exit);
  };
  child.stdout?.on("data", (d: Buffer) => {
    received++;
    push({ stdout: new Uint8Array(d) });
  });
  child.stderr?.on("data", (d: Buffer) => {
    received++;
    push({ stderr: new Uint8Array(d) });
  });
  const exitOf = (code: number | null, sig: NodeJS.Signals | null): ExecChunk => ({
    exit: code ?? 128 + (SIGNALS[sig ?? ""] ?? 9),
  });
  child.on("exit", (code, sig) => {
    exit = exitOf(code, sig);
    drained(() => received, Date.now() + DRAIN_MAX_MS).then(end);
  });
  child.on("close", (code, sig) => {
    exit ??= exitOf(code, sig);
    end();
  });
  child.on("error", (e) => {
    failure = e;
    wake();
  });
  const kill = () => killTree(child);
  signal.addEventListener("abort", kill);
  const timer = timeoutMs > 0 ? setTimeout(kill, timeoutMs) : undefined;
  try {
    for (;;) {
      while (queue.length) {
        const c = queue.shift()!;
        yield c;
        if ("exit" in c) return;
      }
      if (failure) throw failure;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", kill);
    killTree(child);
  }
}

/**
 * Resolves once no output arrived across a quiet spell that includes an I/O
 * poll (a timer, then setImmediate, which runs right after the poll phase), so
 * what the command wrote before it exited has been read even on a busy loop.
 */
async function drained(count: () => number, deadline: number): Promise<void> {
  for (;;) {
    const before = count();
    await new Promise((r) => setTimeout(r, DRAIN_QUIET_MS));
    await new Promise((r) => setImmediate(r));
    if (count() === before || Date.now() >= deadline) return;
  }
}
