/**
 * The sim backend: a whole facility in memory. Actions take modeled time
 * (imaging, power, network configuration) and fail where a test or an operator
 * injects failures; with zero durations it measures rex's own overhead. It keeps
 * the state a real facility would (node states, infrapods, links, emulations) so
 * idempotency and ordering mistakes show up as errors, not silence.
 */
import { createHash } from "node:crypto";
import type {
  ActionContext,
  Backend,
  EmulationSpec,
  GatewayEndSpec,
  HarborSpec,
  InfranetEntry,
  InfrapodSpec,
  InfrapodStatus,
  LinkCreateOutcome,
  LinkSpec,
  MzId,
  NodeProfileReport,
  NodeSetupOutcome,
  NodeSpec,
  NodeState,
  PowerAction,
} from "../backend.ts";
import { nodeStateId } from "../task.ts";

/** Modeled durations, ms. */
export interface SimDurations {
  imaging: number;
  power: number;
  network: number;
  infrapod: number;
}

export const ZERO_DURATIONS: SimDurations = { imaging: 0, power: 0, network: 0, infrapod: 0 };
/** Scaled-down but proportionate: imaging dominates, as on real hardware. */
export const DEFAULT_DURATIONS: SimDurations = { imaging: 400, power: 100, network: 20, infrapod: 50 };

export type SimMethod = Exclude<keyof Backend, "name" | "close">;

export interface FailureRule {
  method: SimMethod | "*";
  /** Matches the resource, link, emulation or materialization id the call is about. */
  target?: string | RegExp;
  /** How many matching calls fail (then the rule is spent); default: all. */
  times?: number;
  message?: string;
}

export interface SimOptions {
  durations?: Partial<SimDurations>;
  failures?: FailureRule[];
  /** Called when a backend call finishes its work (tests count executions). */
  onCall?: (method: SimMethod, target: string) => void;
  /**
   * Refuse steps whose prerequisites this instance has not seen (services before
   * the enclave). Default true; turn off when several processes (rex workers)
   * each model the same facility, since another may have done the earlier step.
   */
  strict?: boolean;
}

interface SimNode {
  state: NodeState;
  mzid?: MzId;
  image?: string;
  power: "on" | "off";
}

export class SimBackend implements Backend {
  readonly name = "sim";
  readonly durations: SimDurations;
  readonly nodes = new Map<string, SimNode>();
  readonly infrapods = new Map<MzId, { services: boolean; entries: InfranetEntry[]; serviceAddress: string }>();
  readonly links = new Map<string, LinkSpec>();
  readonly emulations = new Map<string, EmulationSpec>();
  /** Per materialization, the peers' gateway ends the portal handed over. */
  readonly gatewayPeerEnds = new Map<MzId, GatewayEndSpec[]>();
  harbor?: HarborSpec;
  private readonly failures: (FailureRule & { left: number })[];

  constructor(private readonly opts: SimOptions = {}) {
    this.durations = { ...DEFAULT_DURATIONS, ...opts.durations };
    this.failures = (opts.failures ?? []).map((f) => ({ ...f, left: f.times ?? Number.POSITIVE_INFINITY }));
  }

  /** Add a failure rule at run time. */
  inject(rule: FailureRule): void {
    this.failures.push({ ...rule, left: rule.times ?? Number.POSITIVE_INFINITY });
  }

  private fail(method: SimMethod, target: string): void {
    for (const f of this.failures) {
      if (f.left <= 0) continue;
      if (f.method !== "*" && f.method !== method) continue;
      if (f.target !== undefined && (typeof f.target === "string" ? f.target !== target : !f.target.test(target))) {
        continue;
      }
      f.left--;
      throw new Error(f.message ?? `sim: injected failure in ${method} for ${target}`);
    }
  }

  private async step(method: SimMethod, target: string, ms: number, ctx: ActionContext): Promise<void> {
    this.fail(method, target);
    if (ms > 0) await sleep(ms, ctx.signal);
    if (ctx.signal.aborted) throw ctx.signal.reason ?? new Error("aborted");
  }

  private node(resource: string): SimNode {
    let n = this.nodes.get(resource);
    if (!n) {
      n = { state: "clean", power: "on" };
      this.nodes.set(resource, n);
    }
    return n;
  }

  private done(method: SimMethod, target: string): void {
    this.opts.onCall?.(method, target);
  }

  async infrapodEnclave(spec: InfrapodSpec, ctx: ActionContext): Promise<InfrapodStatus> {
    await this.step("infrapodEnclave", spec.mzid, this.durations.infrapod, ctx);
    const serviceAddress = `172.31.${(spec.vindex >> 8) & 255}.${spec.vindex & 255}`;
    const pod = this.infrapods.get(spec.mzid) ?? { services: false, entries: [], serviceAddress };
    this.infrapods.set(spec.mzid, pod);
    this.done("infrapodEnclave", spec.mzid);
    const gateways = (spec.peers ?? []).map((p) => simGatewayEnd(spec.mzid, p));
    return { serviceAddress, services: {}, ...(gateways.length ? { gateways } : {}) };
  }

  async infrapodServices(spec: InfrapodSpec, ctx: ActionContext): Promise<InfrapodStatus> {
    await this.step("infrapodServices", spec.mzid, this.durations.infrapod, ctx);
    let pod = this.infrapods.get(spec.mzid);
    if (!pod && this.opts.strict !== false)
      throw new Error(`sim: infrapod ${spec.mzid} has no enclave; create it first`);
    pod ??= { services: false, entries: [], serviceAddress: `172.31.${(spec.vindex >> 8) & 255}.${spec.vindex & 255}` };
    this.infrapods.set(spec.mzid, pod);
    pod.services = true;
    this.done("infrapodServices", spec.mzid);
    const up = "up" as const;
    return {
      serviceAddress: pod.serviceAddress,
      services: { nex: up, foundry: up, etcd: up, ...(spec.emulation ? { moactld: up } : {}) },
    };
  }

  async infrapodEntries(spec: InfrapodSpec, entries: InfranetEntry[], ctx: ActionContext): Promise<void> {
    await this.step("infrapodEntries", spec.mzid, this.durations.network, ctx);
    const pod = this.infrapods.get(spec.mzid);
    if (!pod?.services && this.opts.strict !== false) throw new Error(`sim: infrapod ${spec.mzid} services are not up`);
    if (pod) pod.entries = [...entries];
    this.done("infrapodEntries", spec.mzid);
  }

  /** Nodes another host carries, as their infrapod knows them (`infrapodNode`). */
  readonly remoteNodes = new Map<MzId, Set<string>>();

  async infrapodNode(spec: NodeSpec, present: boolean, ctx: ActionContext): Promise<void> {
    await this.step("infrapodNode", spec.mzid, this.durations.network, ctx);
    const known = this.remoteNodes.get(spec.mzid) ?? new Set<string>();
    if (present) known.add(spec.node);
    else known.delete(spec.node);
    this.remoteNodes.set(spec.mzid, known);
    this.done("infrapodNode", spec.mzid);
  }

  async infrapodDestroy(spec: InfrapodSpec, ctx: ActionContext): Promise<void> {
    await this.step("infrapodDestroy", spec.mzid, this.durations.infrapod, ctx);
    this.infrapods.delete(spec.mzid);
    // As the linux sweep does: what the materialization's links, emulators and remote nodes made here goes with
    // it (LinkSpec, EmulationSpec, NodeSpec.sweptAfter).
    for (const id of [...this.links.keys()]) if (id.startsWith(`${spec.mzid}/`)) this.links.delete(id);
    for (const [id, e] of [...this.emulations]) if (e.mzid === spec.mzid) this.emulations.delete(id);
    this.remoteNodes.delete(spec.mzid);
    this.gatewayPeerEnds.delete(spec.mzid);
    this.done("infrapodDestroy", spec.mzid);
  }

  async harborEnsure(spec: HarborSpec, ctx: ActionContext): Promise<void> {
    await this.step("harborEnsure", spec.server, this.durations.infrapod, ctx);
    this.harbor = spec;
    this.done("harborEnsure", spec.server);
  }

  async nodeSetup(spec: NodeSpec, ctx: ActionContext): Promise<NodeSetupOutcome> {
    const n = this.node(nodeStateId(spec));
    // Not strict: another process may have recycled the node since this one set it up.
    if (n.mzid && n.mzid !== spec.mzid && n.state !== "clean" && this.opts.strict !== false) {
      throw new Error(`sim: node ${spec.resource} belongs to ${n.mzid}`);
    }
    if (!(n.state === "ready" && n.mzid === spec.mzid && n.image === spec.image)) {
      n.state = "setup";
      n.mzid = spec.mzid;
      await this.step("nodeSetup", spec.resource, this.durations.power, ctx);
      if (n.image !== spec.image) await this.step("nodeSetup", spec.resource, this.durations.imaging, ctx);
      n.image = spec.image;
      await this.step("nodeSetup", spec.resource, this.durations.network, ctx);
      n.state = "ready";
      n.power = "on";
    } else this.fail("nodeSetup", spec.resource);
    this.done("nodeSetup", spec.resource);
    return spec.mode === "virtual" ? { profile: simProfile(spec) } : undefined;
  }

  async nodeRecycle(spec: NodeSpec, ctx: ActionContext): Promise<void> {
    const n = this.node(nodeStateId(spec));
    if (n.state !== "clean" && n.mzid === spec.mzid) {
      n.state = "setup";
      await this.step("nodeRecycle", spec.resource, this.durations.network + this.durations.power, ctx);
      n.state = "clean";
      n.mzid = undefined;
    } else this.fail("nodeRecycle", spec.resource);
    this.done("nodeRecycle", spec.resource);
  }

  async nodeReset(spec: NodeSpec, ctx: ActionContext): Promise<void> {
    const n = this.node(nodeStateId(spec));
    if (n.mzid !== spec.mzid && this.opts.strict !== false)
      throw new Error(`sim: node ${spec.resource} is not in ${spec.mzid}`);
    n.mzid = spec.mzid;
    n.state = "setup";
    await this.step("nodeReset", spec.resource, this.durations.imaging + this.durations.power, ctx);
    n.image = spec.image;
    n.state = "ready";
    this.done("nodeReset", spec.resource);
  }

  async nodePower(resource: string, action: PowerAction, ctx: ActionContext): Promise<void> {
    await this.step("nodePower", resource, this.durations.power, ctx);
    this.node(resource).power = action === "off" ? "off" : "on";
    this.done("nodePower", resource);
  }

  async linkCreate(spec: LinkSpec, ctx: ActionContext): Promise<LinkCreateOutcome> {
    const id = `${spec.mzid}/${spec.link}`;
    await this.step("linkCreate", spec.link, this.links.has(id) ? 0 : this.durations.network, ctx);
    this.links.set(id, spec);
    this.done("linkCreate", spec.link);
    const gateways = [...new Map((spec.external ?? []).map((x) => [x.peer, simGatewayEnd(spec.mzid, x)])).values()];
    return gateways.length ? { gateways } : undefined;
  }

  /** The peers' ends, as the linux backend lets them into its tunnels; here, kept. */
  async gatewayPeers(mzid: MzId, peers: GatewayEndSpec[], ctx: ActionContext): Promise<void> {
    await this.step("gatewayPeers", mzid, this.durations.network, ctx);
    const kept = (this.gatewayPeerEnds.get(mzid) ?? []).filter((e) => !peers.some((p) => p.peer === e.peer));
    this.gatewayPeerEnds.set(mzid, [
      ...kept,
      ...peers.map(({ peer, publicKey, endpoint, address }) => ({ peer, publicKey, endpoint, address })),
    ]);
    this.done("gatewayPeers", mzid);
  }

  async linkDestroy(spec: LinkSpec, ctx: ActionContext): Promise<void> {
    const id = `${spec.mzid}/${spec.link}`;
    await this.step("linkDestroy", spec.link, this.links.has(id) ? this.durations.network : 0, ctx);
    this.links.delete(id);
    this.done("linkDestroy", spec.link);
  }

  async emulationSetup(spec: EmulationSpec, ctx: ActionContext): Promise<void> {
    await this.step("emulationSetup", spec.emulation, this.durations.network, ctx);
    this.emulations.set(spec.emulation, spec);
    this.done("emulationSetup", spec.emulation);
  }

  async emulationUpdate(spec: EmulationSpec, ctx: ActionContext): Promise<void> {
    await this.step("emulationUpdate", spec.emulation, this.durations.network, ctx);
    const cur = this.emulations.get(spec.emulation) ?? (this.opts.strict === false ? spec : undefined);
    if (!cur) throw new Error(`sim: emulation ${spec.emulation} is not running`);
    const links = new Map(cur.links.map((l) => [l.link, l]));
    for (const l of spec.links) links.set(l.link, l);
    this.emulations.set(spec.emulation, { ...cur, links: [...links.values()] });
    this.done("emulationUpdate", spec.emulation);
  }

  async emulationDestroy(spec: EmulationSpec, ctx: ActionContext): Promise<void> {
    await this.step("emulationDestroy", spec.emulation, this.durations.network, ctx);
    this.emulations.delete(spec.emulation);
    this.done("emulationDestroy", spec.emulation);
  }

  async close(): Promise<void> {}
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** A simulated virtual node gets exactly what it asked (no dilation: nothing is measured). */
function simProfile(spec: NodeSpec): NodeProfileReport {
  const cores = spec.alloc.cores || 1;
  return {
    kind: spec.kind ?? "container",
    cores,
    memoryMiB: Math.round(spec.alloc.memory / 2 ** 20),
    cpuCap: (spec.profile?.cpuShare ?? 1) * cores,
  };
}

/**
 * A simulated gateway end toward `x.peer`: what a facility reports of the tunnel it made (a public key, its
 * wide-area endpoint, its inner address), stable for the materialization, so the portal's join of facilities
 * runs on the sim as on the linux backend. The endpoint is loopback: nothing is ever sent to it.
 */
function simGatewayEnd(mzid: MzId, x: { peer: string; gateway: string; address: string }): GatewayEndSpec {
  const key = createHash("sha256").update(`${mzid}/${x.gateway}/${x.peer}`).digest();
  return {
    peer: x.peer,
    publicKey: key.toString("base64"),
    endpoint: `127.0.0.1:${51820 + (key[0] ?? 0)}`,
    address: x.address,
  };
}
