/**
 * The linux backend: the facility's Backend interface (what rex actions call)
 * over the linux data plane, one resource at a time. Every method brings its
 * object to the target state and may be called again (after a crash, a lost
 * claim) without harm. Parallel calls coalesce into shared iproute2 batches.
 */

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { INFRANET } from "@merge/materialize";
import type {
  ActionContext,
  Backend,
  EmulationSpec,
  GatewayEndSpec,
  HarborSpec,
  InfranetEntry,
  InfranetSpec,
  InfrapodSpec,
  InfrapodStatus,
  LinkCreateOutcome,
  LinkSpec,
  MzId,
  NodeRef,
  NodeSetupResult,
  NodeSpec,
  PowerAction,
} from "../backend.ts";
import { nodeBoot, nodeStop, nodesStart, nodesWire, nodeWipe, waitReady } from "./container.ts";
import { type DataPlaneOptions, LinuxDataPlane, nexOf } from "./dataplane.ts";
import { emulationStart, emulationStop, emulationUpdate } from "./emulation.ts";
import { ensureMzDir, mounted, mzDir } from "./env.ts";
import {
  externalCreate,
  externalDestroy,
  gatewayPeersSet,
  infranetGatewaySide,
  infranetPeersUp,
  infranetPodSide,
} from "./external.ts";
import { writeAccounts, writeNodeConfig } from "./foundry.ts";
import {
  foundryDir,
  infranetBridge,
  infrapodCreate,
  infrapodServices,
  nexEntries,
  serviceAddresses,
} from "./infrapod.ts";
import { NODE_NAME_RE, namesOf, prefixOf } from "./names.ts";
import { type NatOptions, type NodeControl, natNode, natRemove } from "./nat.ts";
import { listNetns } from "./processes.ts";
import {
  containerProfile,
  emptyRecord,
  type LinkPlan,
  linkRecord,
  type MzPlan,
  macFromIp,
  type NodePlan,
  nodeRecord,
} from "./record.ts";
import { NodeRemover } from "./recycle.ts";
import { spanCreate, spanDestroy } from "./span.ts";
import { type MzState, prefixesOwned, readStates, writeState } from "./state.ts";
import { isClean, type Leftovers, sweep } from "./sweep.ts";
import { switchingNamespaces } from "./switching.ts";
import { vmInterfaces, vmProfileOf, vmReady, vmStart, vmStop, vmWire } from "./vm.ts";
import { infranetJoin } from "./vtep.ts";
import { linksCreate, linksDestroy } from "./xpnet.ts";

/**
 * The harbor's mzid on this host: its name and its data directory, so two
 * facilities (or test runs) on one host never share a harbor, and a restarted
 * facility finds its own again.
 */
export function harborMzid(name: string, dataDir: string): string {
  return `${name}@${createHash("sha256").update(resolve(dataDir)).digest("hex").slice(0, 8)}`;
}

/** A testbed node in harbor standby: its harbor lease, no experiment interfaces. */
function standbyPlan(r: HarborSpec["resources"][number]): NodePlan {
  return { name: r.id, infranet: { address: r.address, mac: macFromIp(r.address) }, interfaces: [], routes: [] };
}

/** Where a resource is: in the harbor (standby: booting, ready, failed or off), or carrying nodes. */
export type HarborPlace =
  | { resource: string; place: "harbor"; standby: "ready" | "booting" | "failed" | "off"; address: string }
  | { resource: string; place: "allocated"; nodes: NodeRef[] };

const key = (r: NodeRef): string => `${r.mzid}\0${r.node}`;

export class LinuxBackend implements Backend {
  readonly name = "linux";
  /** Experiment node → the resource carrying it (a hypervisor carries several). */
  private readonly placement = new Map<string, NodeRef & { resource: string }>();
  /** The harbor this backend holds, once `harborEnsure` ran (or a restart took it back). */
  private harbor?: { mzid: string; spec: HarborSpec };
  /** Infranet entries (nex) per materialization, as rex last set them. */
  private readonly entries = new Map<string, InfranetEntry[]>();

  /** Materializations whose directory is in place, so their state can be written (see `save`). */
  private readonly placed = new Set<string>();
  /** Materializations whose infrapod is on another host: here only an infranet switch and some nodes. */
  private readonly switchOnly = new Set<string>();
  private readonly switching = new Map<string, Promise<void>>();
  /** Sweeps of a materialization's part of this host that its last nodes started (see `nodeRecycle`). */
  private readonly lastSweeps = new Map<string, Promise<Leftovers>>();
  /** Nodes going, in batches (recycle.ts). */
  private readonly remover: NodeRemover;

  private constructor(readonly dataPlane: LinuxDataPlane) {
    this.remover = new NodeRemover(dataPlane.env);
    this.restore();
  }

  /**
   * Open the data plane and take back the materializations a previous backend
   * on this data directory left running (see state.ts), so they can be
   * operated and dematerialized after a facility restart.
   */
  static async open(opts: DataPlaneOptions): Promise<LinuxBackend> {
    return new LinuxBackend(await LinuxDataPlane.open(opts));
  }

  /** A backend over an already open data plane (sharing its materializations). */
  static over(dataPlane: LinuxDataPlane): LinuxBackend {
    return new LinuxBackend(dataPlane);
  }

  private restore(): void {
    for (const s of readStates(this.env.dataDir, this.env.log)) {
      this.dataPlane.adopt(s.plan);
      if (s.entries) this.entries.set(s.plan.mzid, s.entries);
      for (const [node, resource] of Object.entries(s.placement)) this.place({ mzid: s.plan.mzid, node }, resource);
      if (s.harbor) this.harbor = { mzid: s.plan.mzid, spec: s.harbor };
      if (s.switchOnly) this.switchOnly.add(s.plan.mzid);
      this.placed.add(s.plan.mzid);
      this.env.log(
        `linux backend: took back materialization ${s.plan.mzid} (${s.plan.nodes.length} nodes, ${s.plan.links.length} links)`,
      );
    }
  }

  /**
   * Record what this backend knows of a materialization next to its kernel
   * objects. Only once its directory exists (infrapodEnclave makes it): a file
   * written before the directory's tmpfs is mounted would be hidden under it,
   * and a late call after teardown must not bring the directory back.
   */
  private save(mzid: string): void {
    if (!this.placed.has(mzid)) {
      const dir = mzDir(this.env, prefixOf(mzid));
      if (!existsSync(dir) || (this.env.nodeDisk === "tmpfs" && !mounted(dir))) return;
      this.placed.add(mzid);
    }
    let plan: MzPlan;
    try {
      plan = this.dataPlane.plan(mzid);
    } catch {
      return;
    }
    const placement: Record<string, string> = {};
    for (const p of this.placement.values()) if (p.mzid === mzid) placement[p.node] = p.resource;
    const state: MzState = { version: 1, plan, placement };
    const entries = this.entries.get(mzid);
    if (entries) state.entries = entries;
    if (this.harbor?.mzid === mzid) state.harbor = this.harbor.spec;
    if (this.switchOnly.has(mzid)) state.switchOnly = true;
    try {
      writeState(this.env.dataDir, state);
    } catch (e) {
      // Its directory went away under us (swept): nothing left to remember.
      this.env.log(`linux backend: could not record ${mzid}: ${(e as Error).message}`);
    }
  }

  /** Writes asked of each materialization and not made yet (see `written`). */
  private readonly writing = new Map<string, { nex: boolean; done: Promise<void> }>();

  /**
   * Write a materialization's nex entries (and signal dnsmasq) and its state
   * once for every change asked in this turn of the event loop: rex sets nodes
   * up one action each, hundreds at once across hosts, and each write covers
   * every node (n² bytes, and a dnsmasq reload each, when written per node).
   * `nex: false`: the state only, unless a change with entries joins.
   */
  private written(mzid: string, o: { nex?: boolean } = {}): Promise<void> {
    const had = this.writing.get(mzid);
    if (had) {
      had.nex ||= o.nex ?? true;
      return had.done;
    }
    const w = { nex: o.nex ?? true, done: Promise.resolve() };
    w.done = new Promise<void>((resolve, reject) =>
      setImmediate(() => {
        this.writing.delete(mzid);
        try {
          const mz = w.nex ? this.knownPlan(mzid) : undefined;
          if (mz) this.writeNex(mz);
          this.save(mzid);
          resolve();
        } catch (e) {
          reject(e);
        }
      }),
    );
    this.writing.set(mzid, w);
    return w.done;
  }

  /**
   * Sweep what this data directory holds of materializations the facility no
   * longer has (`live`: the mzids in the facility store): left by a crash, or
   * by a store that was reset. Harbors are the facility's own and stay
   * (`harborEnsure` removes one of another name).
   * Returns the swept materializations (mzid when known, else the prefix).
   */
  async reconcile(live: Iterable<string>, log: (m: string) => void = this.env.log): Promise<string[]> {
    const states = readStates(this.env.dataDir, () => {});
    const harbors = states.filter((s) => s.harbor).map((s) => s.plan.mzid);
    const keep = new Set([...live, ...harbors].map(prefixOf));
    const known = new Map(states.map((s) => [prefixOf(s.plan.mzid), s.plan.mzid]));
    const swept: string[] = [];
    for (const prefix of prefixesOwned(this.env.dataDir)) {
      if (keep.has(prefix)) continue;
      const mzid = known.get(prefix);
      const name = mzid ? `${mzid} (${prefix})` : prefix;
      const left = await sweep(prefix, this.env.dataDir);
      if (mzid) this.forget(mzid);
      if (!isClean(left)) {
        log(`reconcile: ${name} is not in the facility store, but could not be removed: ${JSON.stringify(left)}`);
        continue;
      }
      log(`reconcile: swept ${name}: not in the facility store`);
      swept.push(mzid ?? prefix);
    }
    return swept;
  }

  /** Drop everything held in memory about a materialization (its kernel objects are gone). */
  private forget(mzid: string): void {
    for (const [k, p] of this.placement) if (p.mzid === mzid) this.placement.delete(k);
    if (this.harbor?.mzid === mzid) this.harbor = undefined;
    this.entries.delete(mzid);
    this.placed.delete(mzid);
    this.switchOnly.delete(mzid);
    this.dataPlane.forget(mzid);
  }

  private get env() {
    return this.dataPlane.env;
  }

  /** The record of a materialization; an infrapod spec (or a node's infranet) starts one. */
  private planOf(mzid: string, start?: Pick<InfrapodSpec, "infranet" | "nameResolution">): MzPlan {
    try {
      return this.dataPlane.plan(mzid);
    } catch {
      if (!start) throw new Error(`materialization ${mzid}: its infrapod has not been created on this host`);
      const plan = emptyRecord({ mzid, ...start });
      this.dataPlane.adopt(plan);
      return plan;
    }
  }

  /** The record of a materialization, if this host has one. */
  private knownPlan(mzid: string): MzPlan | undefined {
    try {
      return this.dataPlane.plan(mzid);
    } catch {
      return undefined;
    }
  }

  private status(
    prefix: string,
    services: { nex: "up" | "down"; foundry: "up" | "down" },
    emulation: boolean,
  ): InfrapodStatus {
    return {
      serviceAddress: serviceAddresses(prefix).pod,
      services: { ...services, ...(emulation ? { moactld: "up" as const } : {}) },
    };
  }

  async infrapodEnclave(spec: InfrapodSpec, ctx: ActionContext): Promise<InfrapodStatus> {
    const prefix = prefixOf(spec.mzid);
    this.planOf(spec.mzid, spec);
    const { serviceAddress } = await infrapodCreate(this.env, prefix, spec.infranet);
    // Nodes on other hosts reach the infrapod through a tunnel on the infranet's VNI (vtep.ts).
    if (spec.infranet.vteps?.length)
      await infranetJoin(this.env, prefix, namesOf(prefix).infrapod, spec.infranet.vni, spec.infranet.vteps);
    this.placed.add(spec.mzid);
    this.save(spec.mzid);
    ctx.log(`infrapod ${namesOf(prefix).infrapod} up, service address ${serviceAddress}`);
    const peers = spec.peers ?? [];
    const links = spec.gatewayLinks ?? [];
    if (links.length) {
      // Many hosts: gateways on other hosts (infranetGateway there); the infrapod's side of each here.
      const through = links.map((l) => ({ ...l, peers: peers.filter((p) => l.peers?.includes(p.peer)) }));
      await infranetPodSide(this.env, prefix, spec.infranet.vni, through);
      for (const l of through)
        ctx.log(
          `infrapod ${spec.mzid}: infranets of ${l.peers.map((p) => p.peer).join(", ")} routed via the gateway at ${l.remote}`,
        );
    }
    const viaLinks = new Set(links.flatMap((l) => l.peers ?? []));
    const here = peers.filter((p) => !viaLinks.has(p.peer));
    if (!here.length) return { serviceAddress, services: {} };
    if (!this.env.site) {
      ctx.log(`infrapod ${spec.mzid}: no site here, so the other facilities' infranets are not routed (names resolve)`);
      return { serviceAddress, services: {} };
    }
    // Across facilities: the others' infranets over the gateway tunnels (external.ts).
    const gateways = await infranetPeersUp(this.env, prefix, spec.infranet.subnet, here);
    ctx.log(`infrapod ${spec.mzid}: infranets of ${here.map((p) => `${p.peer} (${p.subnet})`).join(", ")} routed`);
    return { serviceAddress, services: {}, gateways };
  }

  async infranetGateway(spec: InfrapodSpec, ctx: ActionContext): Promise<GatewayEndSpec[]> {
    const peers = spec.peers ?? [];
    if (!spec.gatewayLink) throw new Error(`infranet gateway of ${spec.mzid}: no link to the infrapod's host given`);
    if (!this.env.site) {
      ctx.log(`infrapod ${spec.mzid}: no site here, so the other facilities' infranets are not routed (names resolve)`);
      return [];
    }
    const ends = await infranetGatewaySide(this.env, prefixOf(spec.mzid), spec.infranet, peers, spec.gatewayLink);
    ctx.log(`gateway ${spec.mzid}: infranets of ${peers.map((p) => `${p.peer} (${p.subnet})`).join(", ")} routed`);
    return ends;
  }

  async gatewayPeers(mzid: MzId, peers: GatewayEndSpec[], _ctx: ActionContext): Promise<void> {
    await gatewayPeersSet(prefixOf(mzid), peers);
  }

  async infrapodServices(spec: InfrapodSpec, ctx: ActionContext): Promise<InfrapodStatus> {
    const prefix = prefixOf(spec.mzid);
    const plan = this.planOf(spec.mzid, spec);
    this.writeNex(plan);
    if (spec.accounts) writeAccounts(foundryDir(this.env, prefix), spec.accounts);
    const s = await infrapodServices(this.env, prefix, spec.infranet);
    ctx.log(`infrapod services: nex ${s.nex}, foundry ${s.foundry}`);
    return this.status(prefix, s, spec.emulation !== undefined);
  }

  async infrapodEntries(spec: InfrapodSpec, entries: InfranetEntry[], _ctx: ActionContext): Promise<void> {
    const plan = this.planOf(spec.mzid, spec);
    this.entries.set(spec.mzid, entries);
    this.writeNex(plan);
    this.save(spec.mzid);
  }

  /** nex gets rex's entries, with experiment addresses for the nodes set up so far; MACs are ours (see nodeSetup). */
  private writeNex(plan: MzPlan): void {
    const known = new Map(nexOf(plan.nodes).map((e) => [e.name, e]));
    const list = (this.entries.get(plan.mzid) ?? []).map(
      (e) => known.get(e.name) ?? { ...e, mac: macFromIp(e.address) },
    );
    for (const [name, e] of known) if (!list.some((x) => x.name === name)) list.push(e);
    nexEntries(this.env, prefixOf(plan.mzid), list, plan.nameResolution);
  }

  async infrapodDestroy(spec: InfrapodSpec, ctx: ActionContext): Promise<void> {
    const left = await sweep(prefixOf(spec.mzid), this.env.dataDir);
    this.forget(spec.mzid);
    const removed = Object.values(left).every((v) => v.length === 0);
    if (!removed) throw new Error(`infrapod ${spec.mzid}: could not remove ${JSON.stringify(left)}`);
    ctx.log(`materialization ${spec.mzid} swept`);
  }

  /**
   * Bring up the harbor: its infrapod (nex with an entry per testbed node,
   * foundry) and, for every testbed node that carries no experiment node, a
   * standby container on the harbor infranet that boots, takes its lease and
   * its standby configuration, and waits. Idempotent: a restarted facility
   * finds its harbor as it left it and only starts what is missing.
   */
  async harborEnsure(spec: HarborSpec, ctx: ActionContext): Promise<void> {
    const mzid = harborMzid(spec.name, this.env.dataDir);
    for (const s of readStates(this.env.dataDir, () => {})) {
      if (!s.harbor || s.plan.mzid === mzid) continue;
      await sweep(prefixOf(s.plan.mzid), this.env.dataDir);
      this.forget(s.plan.mzid);
      ctx.log(`harbor ${s.plan.mzid} of this data directory is not ${spec.name}'s: swept`);
    }
    const bad = spec.resources.filter((r) => !NODE_NAME_RE.test(r.id)).map((r) => r.id);
    if (bad.length)
      throw new Error(`harbor ${spec.name}: resource ids ${bad.join(", ")} cannot name a standby container`);
    this.harbor = { mzid, spec };
    const mine = spec.standby ? spec.resources.filter((r) => spec.standby?.includes(r.id)) : spec.resources;
    if (spec.podElsewhere) {
      // Standby nodes only: the harbor's infranet reaches its infrapod on another host.
      await this.infranetSwitch(mzid, spec.infranet);
    } else {
      const infrapod: InfrapodSpec = { mzid, vindex: 0, server: spec.server, infranet: spec.infranet };
      await this.infrapodEnclave(infrapod, ctx);
      this.entries.set(
        mzid,
        spec.resources.map((r) => ({ name: r.id, mac: r.mac, address: r.address })),
      );
      await this.infrapodServices(infrapod, ctx);
      // Standby nodes on other hosts are configured by this foundry too.
      const dir = foundryDir(this.env, prefixOf(mzid));
      for (const r of spec.resources) if (!mine.includes(r)) writeNodeConfig(dir, standbyPlan(r));
    }
    const free = mine.filter((r) => !this.occupied(r.id)).map((r) => r.id);
    await this.standby(free, ctx);
    ctx.log(`harbor ${spec.name}: ${free.length} of ${mine.length} testbed nodes in standby`);
  }

  /** Nodes a resource carries now. */
  private occupants(resource: string): NodeRef[] {
    return [...this.placement.values()]
      .filter((p) => p.resource === resource && p.mzid !== this.harbor?.mzid)
      .map(({ mzid, node }) => ({ mzid, node }))
      .sort((a, b) => a.mzid.localeCompare(b.mzid) || a.node.localeCompare(b.node));
  }

  private occupied(resource: string): boolean {
    return this.occupants(resource).length > 0;
  }

  private place(ref: NodeRef, resource: string): void {
    this.placement.set(key(ref), { ...ref, resource });
  }

  /** Put resources of the harbor into standby: a container per resource that boots on the harbor infranet. */
  private async standby(resources: string[], ctx: ActionContext): Promise<void> {
    const h = this.harbor;
    if (!h || resources.length === 0) return;
    const mz = this.planOf(h.mzid, { infranet: h.spec.infranet });
    const prefix = prefixOf(h.mzid);
    const sleds: NodePlan[] = [];
    for (const id of resources) {
      const r = h.spec.resources.find((x) => x.id === id);
      if (!r) continue;
      const sled = standbyPlan(r);
      sleds.push(sled);
      mz.nodes = [...mz.nodes.filter((n) => n.name !== sled.name), sled];
      this.place({ mzid: h.mzid, node: r.id }, r.id);
    }
    if (sleds.length === 0) return;
    const image = await this.dataPlane.image(sleds[0] as NodePlan);
    await nodesWire(this.env, prefix, mz.infranet, sleds);
    for (const sled of sleds) writeNodeConfig(foundryDir(this.env, prefix), sled);
    this.writeNex(mz);
    // Standby is the harbor's housekeeping: a node that does not come up there is
    // reported (and shows as failed in the roster), but fails neither the teardown
    // that returned it nor the facility's start.
    try {
      await nodesStart(this.env, prefix, sleds, new Map(sleds.map((n) => [n.name, image])), { standby: true });
      await waitReady(
        this.env,
        prefix,
        sleds.map((n) => n.name),
        90_000,
        ctx.signal,
      );
    } catch (e) {
      ctx.log(`harbor: standby of ${resources.join(", ")}: ${(e as Error).message}`);
    }
    this.save(h.mzid);
  }

  /** Take a resource out of the harbor (its standby container goes) before it carries an experiment node. */
  private async leaveHarbor(resource: string, ctx: ActionContext): Promise<void> {
    const h = this.harbor;
    if (!h || !this.placement.has(key({ mzid: h.mzid, node: resource }))) return;
    await this.removeNode({ mzid: h.mzid, node: resource });
    ctx.log(`${resource} leaves the harbor`);
  }

  /** Stop a node, wipe it and remove its namespace; it is no longer in its materialization's plan or nex. */
  private async removeNode(ref: NodeRef): Promise<void> {
    const prefix = prefixOf(ref.mzid);
    await this.remover.remove(prefix, ref.node);
    const mz = this.knownPlan(ref.mzid);
    if (mz) mz.nodes = mz.nodes.filter((n) => n.name !== ref.node);
    this.placement.delete(key(ref));
    await this.written(ref.mzid);
  }

  /** Where every testbed node of the harbor is: in standby there, or carrying experiment nodes. */
  harborRoster(): HarborPlace[] {
    const h = this.harbor;
    if (!h) return [];
    const prefix = prefixOf(h.mzid);
    return h.spec.resources.map((r): HarborPlace => {
      const nodes = this.occupants(r.id);
      if (nodes.length > 0 || !this.placement.has(key({ mzid: h.mzid, node: r.id })))
        return { resource: r.id, place: "allocated", nodes };
      const power = this.dataPlane.powerState(h.mzid, r.id);
      const boot = nodeBoot(this.env, prefix, r.id).state;
      return { resource: r.id, place: "harbor", standby: power === "off" ? "off" : boot, address: r.address };
    });
  }

  /**
   * A node is only set up inside its materialization's infrapod: a setup (or a
   * reimage) that runs late, after a dematerialize swept the materialization,
   * must not bring a namespace or container of it back.
   */
  private requireInfrapod(mzid: string, node: string): void {
    if (!existsSync(`/run/netns/${namesOf(prefixOf(mzid)).infrapod}`))
      throw new Error(`node ${node}: materialization ${mzid} has no infrapod on this host (dematerialized?)`);
  }

  /**
   * The infrapod's side of a node another host carries: its foundry
   * configuration and its DHCP/DNS entry (`present`), or their removal.
   */
  async infrapodNode(spec: NodeSpec, present: boolean, _ctx: ActionContext): Promise<void> {
    this.requireInfrapod(spec.mzid, spec.node);
    const mz = this.planOf(spec.mzid, spec);
    const node = nodeRecord(spec);
    mz.nodes = mz.nodes.filter((n) => n.name !== node.name);
    if (present) {
      mz.nodes.push(node);
      writeNodeConfig(foundryDir(this.env, prefixOf(spec.mzid)), node);
    }
    await this.written(spec.mzid);
  }

  /**
   * A node whose infrapod is on another host joins the infranet through this
   * host's infranet switch: a namespace of the infrapod's name holding only
   * the bridge and the tunnel to the other hosts (no services).
   */
  private infranetSwitch(mzid: string, infranet: InfranetSpec, only = false): Promise<void> {
    // Nodes of one materialization set up in parallel share one switch: made once.
    const pending = this.switching.get(mzid) ?? this.makeInfranetSwitch(mzid, infranet, only);
    this.switching.set(mzid, pending);
    return pending.finally(() => this.switching.delete(mzid));
  }

  /** `only`: this host has no infrapod of the materialization (its last node takes the switch along). */
  private async makeInfranetSwitch(mzid: string, infranet: InfranetSpec, only: boolean): Promise<void> {
    const vteps = infranet.vteps;
    const prefix = prefixOf(mzid);
    const ns = namesOf(prefix).infrapod;
    if (!vteps?.length) return;
    if (!listNetns().includes(ns)) {
      await ensureMzDir(this.env, prefix);
      await switchingNamespaces(this.env, [ns]);
      await this.env.ipIn(ns).submit(["link set lo up", ...infranetBridge(), "link set dev ibr up"]);
    } else if (only) return;
    // Idempotent: a host that registered since gets its flooding entry.
    await infranetJoin(this.env, prefix, ns, infranet.vni, vteps);
    if (only) this.switchOnly.add(mzid);
    this.placed.add(mzid);
  }

  async nodeSetup(spec: NodeSpec, ctx: ActionContext): Promise<NodeSetupResult | undefined> {
    await this.infranetSwitch(spec.mzid, spec.infranet, true);
    this.requireInfrapod(spec.mzid, spec.node);
    const mz = this.planOf(spec.mzid, spec);
    const node = nodeRecord(spec);
    mz.nodes = [...mz.nodes.filter((n) => n.name !== node.name), node];
    const prefix = prefixOf(spec.mzid);
    if (node.vm) return this.vmSetup(spec, mz, node, ctx);
    const image = await this.dataPlane.image(node);
    this.requireInfrapod(spec.mzid, spec.node);
    await nodesWire(this.env, prefix, mz.infranet, [node]);
    writeNodeConfig(foundryDir(this.env, prefix), node);
    await this.written(spec.mzid);
    await this.leaveHarbor(spec.resource, ctx);
    this.requireInfrapod(spec.mzid, spec.node);
    await nodesStart(this.env, prefix, [node], new Map([[node.name, image]]));
    this.place({ mzid: spec.mzid, node: spec.node }, spec.resource);
    await this.written(spec.mzid, { nex: false });
    await waitReady(this.env, prefix, [node.name], 90_000, ctx.signal);
    ctx.log(`node ${spec.node} on ${spec.resource} configured`);
    const control = await this.natFor(spec, node, ctx);
    return spec.mode === "virtual" || control
      ? { ...(spec.mode === "virtual" ? { profile: containerProfile(node) } : {}), ...(control ? { control } : {}) }
      : undefined;
  }

  /**
   * A shared host's NAT: the agent's own (`env.nat`, its flags) or else the
   * facility model's, which comes with the spec (nat.ts).
   */
  private natOf(spec: NodeSpec): NatOptions | undefined {
    return this.env.nat ?? (spec.nat ? { ...spec.nat, ...(spec.host ? { host: spec.host } : {}) } : undefined);
  }

  /** The node's block of ports on its host's address, when the host does NAT (nat.ts). */
  private async natFor(spec: NodeSpec, node: NodePlan, ctx: ActionContext): Promise<NodeControl | undefined> {
    const nat = this.natOf(spec);
    if (!nat) return undefined;
    const c = await natNode(
      this.env,
      nat,
      prefixOf(spec.mzid),
      spec.infranet,
      { name: node.name, address: node.infranet.address },
      this.switchOnly.has(spec.mzid),
    );
    ctx.log(`node ${spec.node}: ssh -p ${c.ssh} ${c.address} (ports ${c.first}-${c.last} forwarded to it)`);
    return c;
  }

  /** A VM node: its namespace wired as a container's, then QEMU on taps bridged to its veths (vm.ts). */
  private async vmSetup(spec: NodeSpec, mz: MzPlan, node: NodePlan, ctx: ActionContext): Promise<NodeSetupResult> {
    const prefix = prefixOf(spec.mzid);
    await nodesWire(this.env, prefix, mz.infranet, [node]);
    writeNodeConfig(foundryDir(this.env, prefix), node);
    this.writeNex(mz);
    await this.leaveHarbor(spec.resource, ctx);
    // The links' veths arrive from linkCreate, which runs beside this action.
    await vmInterfaces(namesOf(prefix).node(node.name), node, 120_000, ctx.signal);
    this.requireInfrapod(spec.mzid, spec.node);
    await vmWire(this.env, prefix, node);
    await vmStart(this.env, prefix, node);
    this.place({ mzid: spec.mzid, node: spec.node }, spec.resource);
    this.save(spec.mzid);
    const profile = await vmReady(this.env, prefix, node, 600_000, ctx.signal);
    const control = await this.natFor(spec, node, ctx);
    const d = profile.dilation;
    const extra = [
      profile.cpuCap !== profile.cores ? `CPU cap ${profile.cpuCap} core` : "",
      d ? `dilation ${d.asked}× asked, ${d.achieved.toFixed(1)}× achieved` : "",
    ].filter(Boolean);
    ctx.log(
      `VM ${spec.node} on ${spec.resource} configured (${profile.accel}, ${profile.cores} cores, ${profile.memoryMiB} MiB, NICs ${profile.nics.map((n) => n.model).join(", ")}${extra.map((x) => `, ${x}`).join("")})`,
    );
    return { profile: { kind: "vm", ...profile }, ...(control ? { control } : {}) };
  }

  async nodeRecycle(spec: NodeSpec, ctx: ActionContext): Promise<void> {
    const nat = this.natOf(spec);
    if (nat) await natRemove(this.env, nat, prefixOf(spec.mzid), spec.node);
    await this.removeNode({ mzid: spec.mzid, node: spec.node });
    // The last node of a materialization whose infrapod is elsewhere takes this host's part of it along (unless
    // the infrapod's teardown sweeps this host after: that sweep waited on the kernel's namespace deletions).
    if (
      !spec.sweptAfter &&
      this.switchOnly.has(spec.mzid) &&
      ![...this.placement.values()].some((p) => p.mzid === spec.mzid)
    ) {
      // The last nodes go in one batch (recycle.ts): one sweep for all of them.
      const sweeping =
        this.lastSweeps.get(spec.mzid) ??
        sweep(prefixOf(spec.mzid), this.env.dataDir).finally(() => this.lastSweeps.delete(spec.mzid));
      this.lastSweeps.set(spec.mzid, sweeping);
      const left = await sweeping;
      this.forget(spec.mzid);
      if (!isClean(left)) throw new Error(`node ${spec.node}: could not remove ${JSON.stringify(left)}`);
      ctx.log(`materialization ${spec.mzid}: its last node on this host is gone, and its infranet switch`);
    }
    if (this.harbor && !this.occupied(spec.resource)) {
      await this.standby([spec.resource], ctx);
      ctx.log(`node ${spec.node} wiped; ${spec.resource} back in the harbor, in standby`);
    } else ctx.log(`node ${spec.node} wiped`);
  }

  async nodeReset(spec: NodeSpec, ctx: ActionContext): Promise<NodeSetupResult | undefined> {
    const prefix = prefixOf(spec.mzid);
    await vmStop(this.env, prefix, spec.node);
    await nodeStop(this.env, prefix, spec.node, 0);
    nodeWipe(this.env, prefix, spec.node);
    return this.nodeSetup(spec, ctx);
  }

  async nodePower(
    resource: string,
    action: PowerAction,
    ctx: ActionContext,
    node?: NodeRef,
  ): Promise<NodeSetupResult | undefined> {
    const c = node ?? this.soleNode(resource);
    if (!this.placement.has(key(c))) throw new Error(`node ${c.node} of ${c.mzid} is not set up on this host`);
    await this.dataPlane.power(c.mzid, c.node, action);
    ctx.log(`node ${c.node} (${resource}): power ${action} done, now ${this.dataPlane.powerState(c.mzid, c.node)}`);
    // A VM booted again has its profile again (vmReady: the cap, a dilation measured anew).
    const profile = action === "off" ? undefined : vmProfileOf(this.env, prefixOf(c.mzid), c.node);
    return profile ? { profile: { kind: "vm", ...profile } } : undefined;
  }

  /** The one node a resource carries (or its standby container in the harbor). */
  private soleNode(resource: string): NodeRef {
    const on = this.occupants(resource);
    if (on.length > 1)
      throw new Error(
        `resource ${resource} carries ${on.length} nodes (${on.map((n) => n.node).join(", ")}); name the node to power`,
      );
    const h = this.harbor;
    const c =
      on[0] ??
      (h && this.placement.has(key({ mzid: h.mzid, node: resource })) ? { mzid: h.mzid, node: resource } : undefined);
    if (!c) throw new Error(`resource ${resource} carries no node on this host (power control needs a set-up node)`);
    return c;
  }

  async linkCreate(spec: LinkSpec, ctx: ActionContext): Promise<LinkCreateOutcome> {
    if (spec.external?.length) {
      // Across facilities: this facility's endpoints and its ends of the wide-area segments (external.ts).
      // Several hosts: this host may hold only a gateway or an emulator of it, and no record yet.
      const mz = spec.span ? this.knownPlan(spec.mzid) : this.planOf(spec.mzid);
      if (mz) {
        const link = linkRecord(spec);
        const had = mz.links.find((l) => l.name === link.name);
        if (had?.emulation && link.emulation) link.emulation = had.emulation;
        mz.links = [...mz.links.filter((l) => l.name !== link.name), link];
      }
      const gateways = await externalCreate(this.env, prefixOf(spec.mzid), spec, this.env.caps.netem);
      if (mz) this.save(spec.mzid);
      ctx.log(
        `link ${spec.link} (external, toward ${[...new Set(spec.external.map((x) => x.peer))].join(", ")}): this facility's part wired`,
      );
      return { gateways };
    }
    if (spec.span) {
      // This host's part of a link across hosts; links may come before this host has any node of it.
      await spanCreate(this.env, prefixOf(spec.mzid), spec, this.env.caps.netem);
      try {
        const mz = this.dataPlane.plan(spec.mzid);
        const link = linkRecord(spec);
        const had = mz.links.find((l) => l.name === link.name);
        if (had?.emulation && link.emulation) link.emulation = had.emulation;
        mz.links = [...mz.links.filter((l) => l.name !== link.name), link];
        this.save(spec.mzid);
      } catch {}
      ctx.log(`link ${spec.link} (${spec.kind}${spec.emulator ? ", emulated" : ""}): this host's part wired`);
      return;
    }
    const mz = this.planOf(spec.mzid);
    const link = linkRecord(spec);
    const had = mz.links.find((l) => l.name === link.name);
    if (had?.emulation && link.emulation) link.emulation = had.emulation;
    mz.links = [...mz.links.filter((l) => l.name !== link.name), link];
    await linksCreate(this.env, prefixOf(spec.mzid), [link], { bridgeEmulated: this.env.caps.netem });
    this.save(spec.mzid);
    ctx.log(`link ${spec.link} (${spec.kind}${spec.emulator ? ", emulated" : ""}) wired`);
  }

  async linkDestroy(spec: LinkSpec, ctx: ActionContext): Promise<void> {
    if (spec.external?.length) await externalDestroy(this.env, prefixOf(spec.mzid), spec);
    else if (spec.sweptAfter) {
      // The materialization goes: the infrapod's teardown sweeps this host after (one namespace deletion each,
      // where deleting a link's ports one by one waited on the kernel for each).
    } else if (spec.span) await spanDestroy(this.env, prefixOf(spec.mzid), spec);
    else await linksDestroy(this.env, prefixOf(spec.mzid), [linkRecord(spec)]);
    try {
      const mz = this.dataPlane.plan(spec.mzid);
      mz.links = mz.links.filter((l) => l.name !== spec.link);
      this.save(spec.mzid);
    } catch {}
    ctx.log(`link ${spec.link} ${spec.sweptAfter ? "left to the materialization's sweep" : "removed"}`);
  }

  private emulated(spec: EmulationSpec): LinkPlan[] {
    // An emulator on a host without the infrapod or a node of it: a record of its own (swept with the rest).
    const mz = this.planOf(spec.mzid, { infranet: { ...INFRANET, vni: 0 } });
    return spec.links.map((x) => {
      const l = mz.links.find((k) => k.name === x.link) ?? {
        name: x.link,
        endpoints: x.endpoints.map((e) => ({ node: e.node, socket: e.socket })),
      };
      l.emulation = { ...x.params };
      if (!mz.links.includes(l)) mz.links.push(l);
      return l;
    });
  }

  async emulationSetup(spec: EmulationSpec, ctx: ActionContext): Promise<void> {
    await emulationStart(this.env, prefixOf(spec.mzid), this.emulated(spec));
    this.save(spec.mzid);
    ctx.log(`emulation ${spec.emulation}: ${spec.links.length} links`);
  }

  async emulationUpdate(spec: EmulationSpec, ctx: ActionContext): Promise<void> {
    for (const l of this.emulated(spec)) await emulationUpdate(this.env, prefixOf(spec.mzid), l, l.emulation ?? {});
    this.save(spec.mzid);
    ctx.log(`emulation ${spec.emulation}: ${spec.links.length} links updated`);
  }

  async emulationDestroy(spec: EmulationSpec, ctx: ActionContext): Promise<void> {
    if (spec.sweptAfter) {
      ctx.log(`emulation ${spec.emulation} left to the materialization's sweep`);
      return;
    }
    // A materialization this backend does not know (never created here, or swept at start-up after the
    // facility lost its records) has no forwarder or qdisc left; teardown from the portal's fragments must
    // not fail on it, or the dematerialize waits for an operator.
    let links: LinkPlan[];
    try {
      this.dataPlane.plan(spec.mzid);
      links = this.emulated(spec);
    } catch {
      links = spec.links.map((x) => ({
        name: x.link,
        endpoints: x.endpoints.map((e) => ({ node: e.node, socket: e.socket })),
      }));
    }
    await emulationStop(this.env, prefixOf(spec.mzid), links);
    ctx.log(`emulation ${spec.emulation} stopped`);
  }

  async close(): Promise<void> {}
}
