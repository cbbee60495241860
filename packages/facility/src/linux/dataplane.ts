/**
 * The linux data plane: materialize a plan on this host, change its emulation,
 * power and reach its nodes, and take it all down again. Whole-materialization
 * calls batch everything (the fast path the benchmark measures); the
 * per-resource backend (backend.ts) calls the same parts one by one.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve as resolvePath } from "node:path";
import type { Fragment } from "@merge/materialize";
import { containerActivity, GUEST_LOGINS, type NodeActivity, vmActivity } from "./activity.ts";
import { type Capabilities, describeCapabilities, detectCapabilities, requireCapabilities } from "./capabilities.ts";
import { run } from "./command.ts";
import {
  nodeBoot,
  nodeExec,
  nodePid,
  nodeRun,
  nodeStop,
  nodesStart,
  nodesWire,
  nodeWipe,
  waitReady,
} from "./container.ts";
import { emulationStart, emulationStats, emulationUpdate } from "./emulation.ts";
import { type Env, ensureMzDir, makeEnv, mzDir } from "./env.ts";
import { writeNodeConfig } from "./foundry.ts";
import { DEFAULT_IMAGE, imageBuilt, imageDir, nodeImage } from "./image.ts";
import { foundryDir, infrapodCreate, infrapodServices, type NexEntry, nexEntries } from "./infrapod.ts";
import { namesOf, prefixOf } from "./names.ts";
import type { NatOptions } from "./nat.ts";
import { nativeProgram } from "./native.ts";
import { type EmulationParams, type MzPlan, type NodePlan, recordOf } from "./record.ts";
import { isClean, type Leftovers, sweep } from "./sweep.ts";
import { switchingNamespaces } from "./switching.ts";
import { shellQuote, vmExec, vmGovern, vmPid, vmReady, vmReset, vmRun, vmStart, vmStop, vmWire } from "./vm.ts";
import { guestImage } from "./vm-image.ts";
import { linksCreate, switchingOf } from "./xpnet.ts";

export type PowerAction = "on" | "off" | "cycle" | "soft-cycle";
export type PowerState = "on" | "off";

export interface DataPlaneOptions {
  /** Where images, native programs and materialization files live. */
  dataDir: string;
  log?: (message: string) => void;
  /** Where node writable layers live; see `Env.nodeDisk`. Default `tmpfs`. */
  nodeDisk?: "tmpfs" | "disk";
  /**
   * Image for nodes whose image is not built on this host (e.g. `busybox` for a
   * one-host demo without Debian); the substitution is logged. Absent: such a
   * node fails with an error saying how to build its image.
   */
  imageFallback?: string;
  /** Image for nodes whose model names none (default DEFAULT_IMAGE, Debian bookworm); tests that need speed ask for `busybox`. */
  defaultImage?: string;
  /** The facility's site (`Env.site`): where external links' gateway tunnels have their sockets. */
  site?: { netns: string; address: string };
  /** A shared host's NAT: a block of ports on its address per node (nat.ts). */
  nat?: NatOptions;
  /**
   * The portal's storage as this host sees it (`home/<user>`, `proj/<project>`): nodes of materializations
   * with accounts get their members' homes and the project directory from it (storage.ts). Absent: nodes
   * have homes of their own.
   */
  storage?: string;
}

export interface MaterializeResult {
  prefix: string;
  serviceAddress: string;
  /** ms until every node was configured and answered on the infranet. */
  readyMs: number;
  /**
   * ms per phase, one after the other: wire (infrapod, node namespaces), services (the rest of nex and foundry's
   * start, which overlaps wire), start (containers started; links and emulators made meanwhile), boot (until
   * every node is configured), reach (every node answers on the infranet).
   */
  phases: Record<"wire" | "services" | "start" | "boot" | "reach", number>;
}

export class LinuxDataPlane {
  /** Known plans, for power/exec/emulation on materializations this process made or adopted. */
  private readonly plans = new Map<string, MzPlan>();

  private constructor(
    readonly env: Env,
    readonly capabilities: Capabilities,
  ) {}

  /** Detect capabilities (failing clearly when something required is missing), build the native programs and the busybox image. */
  static async open(opts: DataPlaneOptions): Promise<LinuxDataPlane> {
    const caps = await detectCapabilities();
    requireCapabilities(caps);
    mkdirSync(opts.dataDir, { recursive: true });
    const node = await nativeProgram(opts.dataDir, "mrg-node");
    const emu = caps.netem ? null : await nativeProgram(opts.dataDir, "mrg-emu");
    const reach = await nativeProgram(opts.dataDir, "mrg-reach");
    const foundry = await nativeProgram(opts.dataDir, "mrg-foundry");
    const env = makeEnv(opts.dataDir, caps, { node, emu, reach, foundry }, opts.log, opts.nodeDisk);
    if (opts.imageFallback) env.imageFallback = opts.imageFallback;
    if (opts.defaultImage) env.defaultImage = opts.defaultImage;
    if (opts.site) env.site = opts.site;
    if (opts.nat) env.nat = opts.nat;
    if (opts.storage) env.storage = resolvePath(opts.storage);
    for (const line of describeCapabilities(caps)) env.log(`linux backend: ${line}`);
    await imageDir(opts.dataDir, "busybox");
    // The default image, when built, is linked into the data directory now (seconds for Debian's thousands of
    // files, once per data directory) rather than by the first materialization that uses it.
    const wanted = env.defaultImage ?? DEFAULT_IMAGE;
    if (wanted !== "busybox" && imageBuilt(wanted)) await imageDir(opts.dataDir, wanted);
    return new LinuxDataPlane(env, caps);
  }

  /** The image directory a node boots from (see `imageFallback`). */
  image(node: NodePlan): Promise<string> {
    return nodeImage(this.env.dataDir, node.image, {
      node: node.name,
      fallback: this.env.imageFallback,
      defaultImage: this.env.defaultImage,
      log: this.env.log,
    });
  }

  prefix(mzid: string): string {
    return prefixOf(mzid);
  }

  /**
   * Remember a plan (e.g. after a restart) so power/exec/emulation can find its
   * pieces; a running dilated VM gets its clock governed again from this process.
   */
  adopt(plan: MzPlan): void {
    this.plans.set(plan.mzid, plan);
    for (const n of plan.nodes) {
      if (!n.vm?.clockDilation) continue;
      vmGovern(this.env, prefixOf(plan.mzid), n).then(
        (on) =>
          on && this.env.log(`VM ${n.name} of ${plan.mzid}: its clock is governed again (${n.vm?.clockDilation}×)`),
        (e: Error) => this.env.log(`VM ${n.name} of ${plan.mzid}: its clock is not governed (${e.message})`),
      );
    }
  }

  /** Forget a plan (its materialization is gone). */
  forget(mzid: string): void {
    this.plans.delete(mzid);
  }

  plan(mzid: string): MzPlan {
    const p = this.plans.get(mzid);
    if (!p) throw new Error(`materialization ${mzid} is not known to this linux backend`);
    return p;
  }

  /**
   * Materialize one facility's fragments of a materialization plan
   * (`@merge/materialize`) at once: infrapod, nodes, links, emulation, boot;
   * resolves when every node is configured and reachable on the infranet. On
   * failure everything created is swept before the error is thrown. The
   * facility goes through rex and the backend instead, one fragment at a time.
   */
  async materialize(
    fragments: readonly Fragment[],
    opts: {
      timeoutMs?: number;
      vmTimeoutMs?: number;
      signal?: AbortSignal;
      /** Nodes wired per share (default `WIRE_SHARE`); see below. */
      wireShare?: number;
    } = {},
  ): Promise<MaterializeResult> {
    const t0 = Date.now();
    const plan = recordOf(fragments);
    checkPlan(plan);
    const prefix = prefixOf(plan.mzid);
    const env = this.env;
    this.plans.set(plan.mzid, plan);
    try {
      await ensureMzDir(env, prefix);
      writeFileSync(join(mzDir(env, prefix), "mzid"), `${plan.mzid}\n`);
      // VM nodes (n.vm) boot QEMU in their namespace (vm.ts); the others are containers.
      const vms = plan.nodes.filter((n) => n.vm);
      const containers = plan.nodes.filter((n) => !n.vm);
      const images = new Map<string, string>();
      for (const n of containers) images.set(n.name, await this.image(n));
      const guest = vms.length ? await guestImage(env.dataDir) : undefined;
      let mark = Date.now();
      const lap = () => {
        const now = Date.now();
        const d = now - mark;
        mark = now;
        return d;
      };
      // The links' switching namespaces with the infrapod's (one batch): the first share's link veths then go in
      // its nodes' batch as the others' do, not in one of their own after it.
      const [{ serviceAddress }] = await Promise.all([
        infrapodCreate(env, prefix, plan.infranet),
        switchingNamespaces(env, switchingOf(prefix, plan.links)),
      ]);
      // Nex and foundry come up while the nodes' namespaces are made. The nodes are wired a share at a time, with
      // the links among the nodes wired so far, and each share's containers start as soon as it is wired (and the
      // services are up): the containers' start overlaps the rest of the wiring (namespace creation, serialized on
      // the kernel's rtnl lock, keeps about one core busy), and a node whose links exist does not wait for them
      // (a waiting node listens to link notifications, and the kernel walks every listener of every namespace
      // for each notification: n² at 500 nodes). The links across shares and the emulators are made once every
      // namespace exists, while the containers start: a node's boot waits for its experiment interfaces (as it
      // does when rex plumbs links later).
      let servicesBegin: (work: Promise<void>) => void = () => {};
      const services = new Promise<void>((resolve) => {
        servicesBegin = resolve;
      });
      const starting: Promise<void>[] = [];
      let later = plan.links;
      const wiring = (async () => {
        const wired = new Set<string>();
        for (const share of shares(plan.nodes, opts.wireShare ?? WIRE_SHARE)) {
          for (const n of share) wired.add(n.name);
          const now = later.filter((l) => l.endpoints.every((e) => wired.has(e.node)));
          later = later.filter((l) => !now.includes(l));
          // Both called in this turn of the event loop: the links' veths go in the nodes' iproute2 batch, after
          // their namespaces (a fork of this process fewer per share, and one batch fewer to wait for).
          await Promise.all([
            nodesWire(env, prefix, plan.infranet, share, { parallel: false }),
            now.length
              ? linksCreate(env, prefix, now, { bridgeEmulated: env.caps.netem, nodesAhead: true })
              : undefined,
          ]);
          const mine = share.filter((n) => !n.vm);
          if (!mine.length) continue;
          const started = services.then(() => nodesStart(env, prefix, mine, images));
          started.catch(() => {}); // settled below; a failure meanwhile is not unhandled
          starting.push(started);
        }
      })();
      // Begun after the wiring, and its files written once the first share's iproute2 batch is launched (batches
      // launch on the event loop's next turn, queued before this one's): 500 nodes' files written first held that
      // batch back by tens of ms, with the other core idle.
      servicesBegin(
        (async () => {
          await new Promise((r) => setImmediate(r));
          for (const n of plan.nodes) writeNodeConfig(foundryDir(env, prefix), n);
          nexEntries(env, prefix, nexOf(plan.nodes), plan.nameResolution);
          await infrapodServices(env, prefix, plan.infranet);
        })(),
      );
      let wire = 0;
      // On a failure, what is starting finishes before the sweep (catch below) removes it.
      await settle([wiring.then(() => (wire = lap())), services]).catch(async (e) => {
        await Promise.allSettled(starting);
        throw e;
      });
      const servicesMs = lap();
      const emulated = plan.links.filter((l) => l.emulation);
      await settle([
        ...starting,
        (async () => {
          if (later.length) await linksCreate(env, prefix, later, { bridgeEmulated: env.caps.netem });
          if (emulated.length) await emulationStart(env, prefix, emulated);
          for (const n of vms) await vmWire(env, prefix, n);
          for (const n of vms) await vmStart(env, prefix, n, guest);
        })(),
      ]);
      const start = lap();
      await waitReady(
        env,
        prefix,
        containers.map((n) => n.name),
        opts.timeoutMs ?? 120_000,
        opts.signal,
      );
      // TCG boots take tens of seconds each on a shared host: VMs get a longer wait.
      await Promise.all(vms.map((n) => vmReady(env, prefix, n, opts.vmTimeoutMs ?? 600_000, opts.signal)));
      const boot = lap();
      await this.checkReachable(plan);
      const reach = lap();
      return {
        prefix,
        serviceAddress,
        readyMs: Date.now() - t0,
        phases: { wire, services: servicesMs, start, boot, reach },
      };
    } catch (e) {
      // MRG_LINUX_KEEP_FAILED=1 leaves a failed materialization in place for inspection (sweep it afterwards).
      if (process.env.MRG_LINUX_KEEP_FAILED !== "1") await sweep(prefix, env.dataDir);
      throw e;
    }
  }

  /**
   * Ping every node's infranet address from the infrapod (mrg-reach: one
   * process, one raw socket, a few rounds for the silent ones, ~8 s at most);
   * throws naming the silent ones.
   */
  async checkReachable(plan: MzPlan): Promise<void> {
    const n = namesOf(prefixOf(plan.mzid));
    const addrs = plan.nodes.map((x) => x.infranet.address);
    const r = await run(this.env.bin.reach, [`/run/netns/${n.infrapod}`, "8000", ...addrs]);
    if (r.code !== 0) throw new Error(`reachability check failed: ${r.stderr.trim()}`);
    const silent = r.stdout.split(/\s+/).filter(Boolean);
    if (silent.length) throw new Error(`nodes not reachable on the infranet: ${silent.slice(0, 10).join(", ")}`);
  }

  /** Take everything of the materialization down and wipe its nodes. Returns what is left (empty). */
  async dematerialize(mzid: string): Promise<Leftovers> {
    this.plans.delete(mzid);
    const left = await sweep(prefixOf(mzid), this.env.dataDir);
    if (!isClean(left)) throw new Error(`dematerialize ${mzid}: could not remove ${JSON.stringify(left)}`);
    return left;
  }

  /** Change a link's emulation at runtime. */
  async setEmulation(mzid: string, link: string, params: EmulationParams): Promise<void> {
    const plan = this.plan(mzid);
    const l = plan.links.find((x) => x.name === link);
    if (!l)
      throw new Error(
        `materialization ${mzid} has no link "${link}" (links: ${plan.links.map((x) => x.name).join(", ")})`,
      );
    if (!l.emulation) throw new Error(`link ${link} is not emulated (it has no latency, loss or capacity constraint)`);
    await emulationUpdate(this.env, prefixOf(mzid), l, params);
    l.emulation = { ...params };
  }

  emulationStats(mzid: string, link: string) {
    return emulationStats(this.env, prefixOf(mzid), link);
  }

  powerState(mzid: string, node: string): PowerState {
    const prefix = prefixOf(mzid);
    return (this.isVm(mzid, node) ? vmPid(this.env, prefix, node) : nodePid(this.env, prefix, node)) ? "on" : "off";
  }

  private isVm(mzid: string, node: string): boolean {
    return this.plans.get(mzid)?.nodes.find((n) => n.name === node)?.vm !== undefined;
  }

  nodeBoot(mzid: string, node: string) {
    return nodeBoot(this.env, prefixOf(mzid), node);
  }

  /** on/off/cycle (hard: SIGKILL) /soft-cycle (SIGTERM, then SIGKILL); `on` and `cycle` wait until configured. */
  async power(mzid: string, node: string, action: PowerAction, opts: { timeoutMs?: number } = {}): Promise<PowerState> {
    const plan = this.plan(mzid);
    const n = nodeOf(plan, node);
    const prefix = prefixOf(mzid);
    if (n.vm) {
      // QMP: off is quit (the process goes), cycle a hard reset of the running machine.
      const running = vmPid(this.env, prefix, node) !== undefined;
      if (action === "off") {
        await vmStop(this.env, prefix, node);
        return "off";
      }
      if (action !== "on" && running) await vmReset(this.env, prefix, node);
      else await vmStart(this.env, prefix, n);
      await vmReady(this.env, prefix, n, opts.timeoutMs ?? 600_000);
      return "on";
    }
    if (action !== "on") await nodeStop(this.env, prefix, node, action === "soft-cycle" ? 2000 : 0);
    if (action === "off") return "off";
    await nodesStart(this.env, prefix, [n], new Map([[node, await this.image(n)]]));
    await waitReady(this.env, prefix, [node], opts.timeoutMs ?? 30_000);
    return "on";
  }

  /** Reimage: stop, drop the writable layer, boot fresh. */
  async reimage(mzid: string, node: string): Promise<void> {
    const prefix = prefixOf(mzid);
    if (this.isVm(mzid, node)) {
      // A VM's root is its initramfs in RAM: a new QEMU process boots the image afresh.
      await vmStop(this.env, prefix, node);
      await this.power(mzid, node, "on");
      return;
    }
    await nodeStop(this.env, prefix, node, 0);
    nodeWipe(this.env, prefix, node);
    await this.power(mzid, node, "on");
  }

  /** A command in a node with output streamed (`stdio: "inherit"` for an interactive shell). */
  exec(mzid: string, node: string, argv: string[], opts: { stdio?: "pipe" | "inherit" } = {}): ChildProcess {
    const n = nodeOf(this.plan(mzid), node);
    if (n.vm) return vmExec(this.env, prefixOf(mzid), node, argv);
    return nodeExec(this.env, prefixOf(mzid), node, argv, opts);
  }

  /**
   * A login shell on a pty in a VM node (the guest agent's: job control, window
   * size through the child's fd 3, `<rows> <cols>` a line); undefined for a
   * container, whose pty node-ops makes on the host.
   */
  vmShell(mzid: string, node: string, size?: { rows: number; cols: number }): ChildProcess | undefined {
    if (!nodeOf(this.plan(mzid), node).vm) return undefined;
    return vmExec(this.env, prefixOf(mzid), node, ["/bin/sh", "-l"], { tty: size ?? { rows: 24, cols: 80 } });
  }

  /** An interactive login shell in the node on the caller's terminal; resolves with its exit code. */
  shell(mzid: string, node: string): Promise<number> {
    const c = this.exec(mzid, node, ["/bin/sh", "-l"], { stdio: "inherit" });
    return new Promise((resolve, reject) => {
      c.on("error", reject);
      c.on("close", (code) => resolve(code ?? 1));
    });
  }

  run(mzid: string, node: string, argv: string[]) {
    const n = nodeOf(this.plan(mzid), node);
    if (n.vm)
      return vmRun(this.env, prefixOf(mzid), node, shellQuote(argv)).then((r) => ({
        code: r.code,
        stdout: r.output.toString(),
        stderr: "",
      }));
    return nodeRun(this.env, prefixOf(mzid), node, argv);
  }

  /** What each node did so far: a container's processes and interfaces, a VM's QEMU, taps and guest logins. */
  activity(mzid: string): Promise<NodeActivity[]> {
    const prefix = prefixOf(mzid);
    const names = namesOf(prefix);
    return Promise.all(
      this.plan(mzid).nodes.map((n) =>
        n.vm
          ? vmActivity(n.name, names.node(n.name), vmPid(this.env, prefix, n.name), () =>
              vmRun(this.env, prefix, n.name, GUEST_LOGINS, { timeoutMs: 10_000 }),
            )
          : containerActivity(n.name, names.node(n.name)),
      ),
    );
  }

  /** A program in a node's network namespace only (host tools such as iperf3 against the node's network). */
  netnsPath(mzid: string, node: string): string {
    return `/run/netns/${namesOf(prefixOf(mzid)).node(node)}`;
  }
}

/**
 * Nodes wired per share when materializing at once (`materialize`): small enough that the first containers
 * start early, large enough that each share's iproute2 batches (four in parallel, `nodesWire`) stay few.
 */
const WIRE_SHARE = 128;

function shares<T>(xs: readonly T[], size: number): T[][] {
  if (!(Number.isInteger(size) && size > 0))
    throw new Error(`wireShare: ${size} is not a positive whole number of nodes`);
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** Wait for every one of these to end (none is left running behind a failure), then throw the first failure. */
async function settle(work: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

function nodeOf(plan: MzPlan, node: string): NodePlan {
  const n = plan.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`materialization ${plan.mzid} has no node "${node}"`);
  return n;
}

export function nexOf(nodes: NodePlan[]) {
  return nodes.map((n) => {
    const first = [...n.interfaces].sort((a, b) => a.socket - b.socket).find((i) => i.addrs.length > 0);
    const e: NexEntry = { name: n.name, mac: n.infranet.mac, address: n.infranet.address };
    if (n.vm) e.vm = true;
    const exp = first?.addrs[0]?.split("/")[0];
    if (exp) e.experiment = exp;
    return e;
  });
}

/** Reject plans that would wire something other than asked, naming the offending field. */
export function checkPlan(plan: MzPlan): void {
  const names = new Set<string>();
  for (const [i, n] of plan.nodes.entries()) {
    if (names.has(n.name)) throw new Error(`plan ${plan.mzid}: nodes[${i}].name "${n.name}" is used twice`);
    names.add(n.name);
    namesOf(prefixOf(plan.mzid)).node(n.name);
  }
  const used = new Set<string>();
  for (const [i, l] of plan.links.entries()) {
    for (const [k, e] of l.endpoints.entries()) {
      if (!names.has(e.node))
        throw new Error(`plan ${plan.mzid}: links[${i}] (${l.name}).endpoints[${k}].node "${e.node}" is not a node`);
      const key = `${e.node}/${e.socket}`;
      if (used.has(key))
        throw new Error(
          `plan ${plan.mzid}: links[${i}] (${l.name}): socket ${e.socket} of ${e.node} is bound to two links`,
        );
      used.add(key);
    }
  }
}
