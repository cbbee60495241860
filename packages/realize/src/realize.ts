/**
 * The realization engine: experiment + resource internet + allocation table →
 * a realization and the allocation records that reserve it, or the problems
 * that stop it. Pure and deterministic: the same inputs give the same output.
 *
 * Order of work: check the experiment's structure; place nodes in
 * breadth-first order over the experiment graph (so each node has a placed
 * neighbour to stay close to); route every link through the switch mesh
 * (through an emulator when it needs one) reserving cable capacity as it goes;
 * hand out VLAN ids and VNIs; give each facility touched an infranet and an
 * infrapod server.
 */
import {
  type Constraint,
  canonicalHash,
  describeConstraint,
  type EmulationValues,
  type Experiment,
  emulationToward,
  firstUnsatisfied,
  formatValue,
  type Infranet,
  type InterfaceEmbedding,
  type Link,
  type LinkEmbedding,
  type LinkEmulation,
  type LinkSegment,
  type NodeEmbedding,
  needsEmulation,
  type Realization,
  type ResourceInternet,
  type Scalar,
  type TagRange,
  type Waypoint,
} from "@merge/xir";
import { type AllocationRecord, type AllocationTable, INFRANET_USE } from "./allocation.ts";
import { diagnoseNode, type Problem } from "./diagnosis.ts";
import { type Direction, describeToward, directionsOf, isRx, portConstraints, towardBySocket } from "./direction.ts";
import {
  type InternetIndex,
  KIND_EMULATOR,
  KIND_GATEWAY,
  KIND_SWITCH,
  prepareInternet,
  resourceName,
} from "./internet.ts";
import { PathFinder } from "./paths.ts";
import {
  type Candidate,
  identityConstraints,
  identityLookup,
  mapSockets,
  type Placement,
  Placer,
  type SocketNeed,
  type VmDefaults,
  vmNic,
} from "./placement.ts";
import { TagPool } from "./tags.ts";
import { Usage } from "./usage.ts";
import { constraintsOn, pickValue } from "./value.ts";

export interface RealizeOptions {
  /** The realization's name, `realization.experiment.project`. */
  id?: string;
  /** Size of a virtual machine where the node's constraints leave it open. */
  vmDefaults?: Partial<VmDefaults>;
  /** bits/s reserved for a link with no capacity constraint (default 0: best effort). */
  defaultLinkCapacity?: number;
  /** Stop collecting problems after this many (default 20). */
  maxProblems?: number;
  /** The experiment's canonical hash when the caller has it (a portal revision); computed otherwise. */
  experimentHash?: string;
}

export type RealizeResult =
  | { ok: true; realization: Realization; records: AllocationRecord[] }
  | { ok: false; problems: Problem[] };

const GiB = 1024 ** 3;
export const VM_DEFAULTS: VmDefaults = { cores: 1, memory: 1 * GiB, disk: 10 * GiB };

export function realize(
  experiment: Experiment,
  internet: ResourceInternet | InternetIndex,
  table?: AllocationTable | Iterable<AllocationRecord>,
  options: RealizeOptions = {},
): RealizeResult {
  const ix = "resFacility" in internet ? internet : prepareInternet(internet);
  const id = options.id ?? `local.${experiment.name}.offline`;
  const problems = structuralProblems(experiment);
  if (problems.length) return { ok: false, problems };
  const records =
    table === undefined
      ? []
      : "records" in table && typeof table.records === "function"
        ? table.records()
        : (table as Iterable<AllocationRecord>);
  const usage = new Usage(ix, records);
  return new Realizer(experiment, ix, usage, id, options).run();
}

/**
 * Names unique, endpoints pointing at real sockets, a socket on one link at
 * most, and a direction set apart (`rx.*`) naming one endpoint: its node has
 * no other socket on the link.
 */
export function structuralProblems(x: Experiment): Problem[] {
  const out: Problem[] = [];
  const sockets = new Map<string, Set<number>>();
  const rx = new Set<string>();
  for (const n of x.nodes) {
    if (sockets.has(n.name)) out.push({ element: "node", name: n.name, message: "the name is used by two nodes" });
    sockets.set(n.name, new Set(n.sockets.map((s) => s.index)));
    for (const s of n.sockets) if (s.constraints.some(isRx)) rx.add(`${n.name}\u0000${s.index}`);
  }
  const bound = new Map<string, string>();
  const links = new Set<string>();
  for (const l of x.links) {
    if (links.has(l.name)) out.push({ element: "link", name: l.name, message: "the name is used by two links" });
    links.add(l.name);
    if (l.endpoints.length < 2)
      out.push({ element: "link", name: l.name, message: "a link needs at least two endpoints" });
    if (rx.size) {
      // node → whether one of its sockets on this link has rx.* constraints; reported once per node.
      const seen = new Map<string, boolean | "reported">();
      for (const ep of l.endpoints) {
        const here = rx.has(`${ep.node}\u0000${ep.socket}`);
        const before = seen.get(ep.node);
        if (before === "reported") continue;
        if (before !== undefined && (before || here)) {
          out.push({
            element: "link",
            name: l.name,
            message: `node ${ep.node} has two sockets on it, so their rx.* constraints cannot name one direction (a direction is named by the node it leads to)`,
          });
          seen.set(ep.node, "reported");
          continue;
        }
        if (before === undefined) seen.set(ep.node, here);
      }
    }
    for (const ep of l.endpoints) {
      const s = sockets.get(ep.node);
      if (!s)
        out.push({ element: "link", name: l.name, message: `endpoint names node '${ep.node}', which does not exist` });
      else if (!s.has(ep.socket)) {
        out.push({
          element: "link",
          name: l.name,
          message: `endpoint names socket ${ep.socket} of ${ep.node}, which has no such socket`,
        });
      } else {
        const key = `${ep.node}\u0000${ep.socket}`;
        const other = bound.get(key);
        if (other !== undefined) {
          out.push({
            element: "link",
            name: l.name,
            message: `socket ${ep.socket} of ${ep.node} is already bound to link ${other}`,
          });
        }
        bound.set(key, l.name);
      }
    }
  }
  return out;
}

interface LinkNeed {
  /** bits/s reserved on each cable per virtual network. */
  demand: number;
  minRate: number;
}

/** A virtual network being built: the tags and cables one segment group holds. */
interface VirtualNet {
  use: string;
  edges: Set<number>;
  segments: { endpoints: { node: string; socket: number }[]; ports: number[] }[];
}

class Realizer {
  private readonly placer: Placer;
  private readonly finder: PathFinder;
  private readonly vmDefaults: VmDefaults;
  private readonly linkNeed = new Map<string, LinkNeed>();
  private readonly placed = new Map<string, Placement>();
  /** Bare-metal resource → the experiment node (index) on it. */
  private readonly holder = new Map<number, number>();
  private readonly problems: Problem[] = [];
  private dropped = 0;
  private readonly vlanPools = new Map<number, TagPool>();
  private readonly vniPools = new Map<number, TagPool>();
  private readonly records: AllocationRecord[] = [];
  /** `node\u0000socket` → position of the socket in its node's sorted sockets. */
  private readonly socketPos = new Map<string, number>();
  /** `node\u0000socket` → the socket's constraints on its link's direction toward it, when it has any. */
  private readonly toward: Map<string, Constraint[]>;
  /** Link name → the directions its endpoints set apart (only links that have some). */
  private readonly linkDirs = new Map<string, Direction[]>();

  constructor(
    private readonly x: Experiment,
    private readonly ix: InternetIndex,
    private readonly usage: Usage,
    private readonly id: string,
    private readonly options: RealizeOptions,
  ) {
    this.vmDefaults = { ...VM_DEFAULTS, ...options.vmDefaults };
    this.placer = new Placer(ix, usage, this.vmDefaults);
    this.finder = new PathFinder(ix);
    this.toward = towardBySocket(x);
    for (const n of x.nodes) {
      [...n.sockets]
        .sort((a, b) => a.index - b.index)
        .forEach((sk, k) => {
          this.socketPos.set(`${n.name}\u0000${sk.index}`, k);
        });
    }
  }

  run(): RealizeResult {
    for (const l of this.x.links) {
      const dirs = directionsOf(l, this.toward);
      if (dirs.length) this.linkDirs.set(l.name, dirs);
      const need = this.need(l, dirs);
      if (need) this.linkNeed.set(l.name, need);
    }
    if (this.problems.length) return { ok: false, problems: this.problems };
    this.placeNodes();
    if (this.problems.length) return this.refusal();
    const links = this.x.links.map((l) => this.embedLink(l)).filter((l): l is LinkEmbedding => l !== undefined);
    const infranets = this.infranets();
    if (this.problems.length) return this.refusal();
    return { ok: true, realization: this.realization(links, infranets), records: this.records };
  }

  private refusal(): RealizeResult {
    if (this.dropped) {
      this.problems.push({
        element: "experiment",
        name: this.x.name,
        message: `and ${this.dropped} more problems like these`,
      });
    }
    return { ok: false, problems: this.problems };
  }

  /**
   * What a link reserves. Reservation is one figure per virtual network on
   * each cable it crosses, and every virtual network of a link carries every
   * direction (an emulated link's half toward one endpoint carries traffic to
   * and from it), while a full-duplex cable carries each direction on its own
   * wires: so the link reserves the most any one direction needs, the link's
   * own capacity or a direction's `rx.capacity` in its place. (A direction
   * with no `rx.capacity` has the link's, already counted; a link with no
   * capacity constraint asks for the default.) The allocation table keeps one
   * figure per cable, not one per cable direction, so the larger direction decides.
   */
  private need(l: Link, dirs: readonly Direction[]): LinkNeed | undefined {
    const own = this.capacityNeed(l, constraintsOn(l.constraints, "capacity"), "", describeConstraint);
    if (!dirs.length) return own;
    let out = own;
    for (const d of dirs) {
      const cs = constraintsOn(d.constraints, "capacity");
      if (!cs.length) continue;
      const n = this.capacityNeed(l, cs, `toward ${d.node}: `, describeToward);
      out = out && n && { demand: Math.max(out.demand, n.demand), minRate: Math.max(out.minRate, n.minRate) };
    }
    return out;
  }

  /** What one set of capacity constraints (the link's, or a direction's) asks to reserve. */
  private capacityNeed(
    l: Link,
    cs: readonly Constraint[],
    where: string,
    show: (c: Constraint) => string,
  ): LinkNeed | undefined {
    if (!cs.length) return { demand: this.options.defaultLinkCapacity ?? 0, minRate: 0 };
    const minRate = pickValue(cs, 0, Number.POSITIVE_INFINITY, "min");
    const max = pickValue(cs, 0, Number.POSITIVE_INFINITY, "max");
    if (minRate === undefined || max === undefined) {
      this.problems.push({
        element: "link",
        name: l.name,
        message: `${where}capacity constraints contradict: ${cs.map(show).join(" and ")}`,
      });
      return undefined;
    }
    return { demand: minRate > 0 ? minRate : max, minRate };
  }

  /** Record a problem; past `maxProblems`, one line says how many more there were. */
  private problem(p: Problem): void {
    const max = this.options.maxProblems ?? 20;
    if (this.problems.length < max) this.problems.push(p);
    else this.dropped++;
  }

  // ---- nodes ----

  private placeNodes(): void {
    const x = this.x;
    const index = new Map(x.nodes.map((n, i) => [n.name, i]));
    const neighbours: number[][] = x.nodes.map(() => []);
    const socketLink = new Map<string, Link>();
    for (const l of x.links) {
      const ends = l.endpoints.map((e) => index.get(e.node)!);
      for (const e of l.endpoints) socketLink.set(`${e.node}\u0000${e.socket}`, l);
      // A chain plus a star keeps multipoint links linear in their size.
      for (let k = 1; k < ends.length; k++) {
        for (const j of k === 1 ? [0] : [0, k - 1]) {
          neighbours[ends[k]!]!.push(ends[j]!);
          neighbours[ends[j]!]!.push(ends[k]!);
        }
      }
    }
    const bind = this.facilityBinding(index);
    const order = bfsOrder(x.nodes.length, neighbours);
    const parent = new Int32Array(x.nodes.length).fill(-1);
    const groupFacility = new Map<number, { facility: number; rank: number }>();
    const candidateCache = new Map<string, Candidate[]>();
    let lastRank = 0;
    const max = this.options.maxProblems ?? 20;
    const socketsOf = (i: number): SocketNeed[] => {
      const node = x.nodes[i]!;
      return [...node.sockets]
        .sort((a, b) => a.index - b.index)
        .map((s) => {
          const l = socketLink.get(`${node.name}\u0000${s.index}`);
          const need = l ? this.linkNeed.get(l.name)! : { demand: 0, minRate: 0 };
          // rx.* constraints are on the link's direction (checked at the link), not on the port.
          const constraints = portConstraints(s.constraints);
          return { index: s.index, constraints, demand: need.demand, minRate: need.minRate };
        });
    };
    // Every node's candidates first: scarcity weighs what the whole experiment will ask for.
    const candidatesOf: Candidate[][] = x.nodes.map((node, i) => {
      const sockets = socketsOf(i);
      const key = JSON.stringify([node.constraints, sockets]);
      let list = candidateCache.get(key);
      if (!list) {
        list = this.placer.candidates(node.constraints, sockets);
        candidateCache.set(key, list);
      }
      this.placer.claim(list, 1);
      return list;
    });
    for (const i of order) {
      const node = x.nodes[i]!;
      for (const nb of neighbours[i]!) if (parent[nb] === -1 && !this.placed.has(x.nodes[nb]!.name)) parent[nb] = i;
      const candidates = candidatesOf[i]!;
      this.placer.claim(candidates, -1);
      const group = bind(i);
      const fixed = groupFacility.get(group);
      const p = parent[i]! >= 0 ? this.placed.get(x.nodes[parent[i]!]!.name) : undefined;
      let anchor = lastRank;
      if (p && (!fixed || this.ix.resFacility[p.resource] === fixed.facility)) anchor = p.rank;
      else if (fixed) anchor = fixed.rank;
      const placement = candidates.length
        ? this.placer.place(candidates, anchor, fixed ? fixed.facility : -1, identityConstraints(node.constraints))
        : undefined;
      const rescued =
        placement ?? this.rescue(i, candidates, candidatesOf, bind, groupFacility, fixed ? fixed.facility : -1);
      if (rescued) {
        this.placed.set(node.name, rescued);
        if (rescued.mode === "physical") this.holder.set(rescued.resource, i);
        lastRank = rescued.rank;
        if (!fixed && this.ix.facilityNames.length > 1) {
          groupFacility.set(group, { facility: this.ix.resFacility[rescued.resource]!, rank: rescued.rank });
        }
        continue;
      }
      if (this.problems.length < max) {
        const why = candidates.length ? undefined : this.mappingWhy(socketsOf(i));
        const msg = diagnoseNode(
          this.ix,
          this.usage,
          node,
          this.vmDefaults,
          fixed ? fixed.facility : -1,
          why,
          candidates,
        );
        this.problem({ element: "node", name: node.name, message: msg });
      } else this.dropped++;
    }
    for (const node of x.nodes) {
      const p = this.placed.get(node.name);
      if (!p) continue;
      this.records.push({
        kind: "node",
        realization: this.id,
        facility: this.ix.facilityNames[this.ix.resFacility[p.resource]!]!,
        resource: this.ix.resources[p.resource]!.id,
        node: node.name,
        mode: p.mode,
        cores: p.sizes[0]!,
        memory: p.sizes[1]!,
        disk: p.sizes[2]!,
      });
    }
  }

  /**
   * When greedy placement leaves a node without a resource, one repair step:
   * find a bare-metal resource the node could use that another node of this
   * experiment holds, move that node elsewhere, and give the node its place.
   */
  private rescue(
    i: number,
    candidates: readonly Candidate[],
    candidatesOf: readonly Candidate[][],
    bind: (node: number) => number,
    groupFacility: Map<number, { facility: number; rank: number }>,
    facility: number,
  ): Placement | undefined {
    const x = this.x;
    const identity = identityConstraints(x.nodes[i]!.constraints);
    let tries = 0;
    for (const c of candidates) {
      if (c.mode !== "physical") continue;
      const members = c.cls.members;
      for (let pos = 0; pos < members.length && tries < 64; pos++) {
        const r = members[pos]!;
        const m = this.holder.get(r);
        if (m === undefined) continue;
        if (facility >= 0 && this.ix.resFacility[r] !== facility) continue;
        if (identity.length && firstUnsatisfied(identityLookup(this.ix, r), identity)) continue;
        tries++;
        const mNode = x.nodes[m]!;
        const mPlaced = this.placed.get(mNode.name)!;
        const mFixed = groupFacility.get(bind(m));
        const moved = this.placer.place(
          candidatesOf[m]!,
          mPlaced.rank,
          mFixed ? mFixed.facility : -1,
          identityConstraints(mNode.constraints),
        );
        if (!moved) continue;
        this.placed.set(mNode.name, moved);
        this.holder.delete(r);
        if (moved.mode === "physical") this.holder.set(moved.resource, m);
        return this.placer.placementAt(c, pos);
      }
    }
    return undefined;
  }

  /** Why no class could carry a node's sockets (for the diagnosis). */
  private mappingWhy(sockets: SocketNeed[]): string | undefined {
    for (const cls of this.ix.classes) {
      for (const mode of cls.alloc) {
        const m = mapSockets(cls.ports, mode, sockets);
        if (typeof m === "string") return m;
      }
    }
    return undefined;
  }

  /**
   * Nodes joined by a link that cannot cross facilities (external == false, or
   * latency/capacity no interconnect can meet) must share a facility: a
   * union-find over such links. Returns the group of a node.
   */
  private facilityBinding(index: Map<string, number>): (node: number) => number {
    const parent = Int32Array.from({ length: this.x.nodes.length }, (_, i) => i);
    const find = (i: number): number => {
      let r = i;
      while (parent[r] !== r) r = parent[r]!;
      while (parent[i] !== r) {
        const n = parent[i]!;
        parent[i] = r;
        i = n;
      }
      return r;
    };
    if (this.ix.facilityNames.length > 1) {
      const ics = this.ix.internet.interconnects;
      for (const l of this.x.links) {
        const need = this.linkNeed.get(l.name)!;
        const dirs = this.linkDirs.get(l.name);
        if (ics.some((ic) => mayCross(l, dirs, need, ic.capacity, ic.latency))) continue;
        const ends = l.endpoints.map((e) => index.get(e.node)!);
        for (const e of ends.slice(1)) parent[find(e)] = find(ends[0]!);
      }
    }
    return find;
  }

  // ---- links ----

  // The link being routed, read by the one edge predicate the path finder gets
  // (no closures per link: this runs for every link of large experiments).
  private curLink!: Link;
  private curDirs: Direction[] | undefined;
  private curNeed!: LinkNeed;
  private curVn!: VirtualNet;
  private curIcOk: Map<number, boolean> | undefined;
  private readonly edgeOk = (e: number): boolean => {
    const ix = this.ix;
    if (!this.curVn.edges.has(e) && this.usage.edgeFree(e) < this.curNeed.demand) return false;
    if (!ix.edgeInterconnect[e]) return true;
    this.curIcOk ??= new Map();
    let ok = this.curIcOk.get(e);
    if (ok === undefined) {
      ok = mayCross(this.curLink, this.curDirs, this.curNeed, ix.edgeCap[e]!, ix.edgeLatency[e]!);
      this.curIcOk.set(e, ok);
    }
    return ok;
  };
  private readonly isEmulator = (r: number): boolean => this.ix.resKind[r] === KIND_EMULATOR;

  private linkProblem(l: Link, message: string): undefined {
    this.problem({ element: "link", name: l.name, message });
    return undefined;
  }

  /** Reserve the link's capacity once per virtual network on every cable of `ports`. */
  private reserve(vn: VirtualNet, ports: readonly number[], demand: number): void {
    const ix = this.ix;
    for (let i = 0; i + 1 < ports.length; i++) {
      const a = ports[i]!;
      if (ix.portRes[a] === ix.portRes[ports[i + 1]!]) continue;
      const e = ix.portEdge[a]!;
      if (!vn.edges.has(e)) {
        vn.edges.add(e);
        this.usage.edgeUsed[e]! += demand;
      }
    }
  }

  /** The access hop from an endpoint's port to its switch; undefined (with a problem) when unusable. */
  private firstHop(l: Link, port: number, who: string, needText: string): number | undefined {
    const ix = this.ix;
    const peer = ix.portPeer[port]!;
    if (peer < 0) {
      return this.linkProblem(
        l,
        `${who}: port ${ix.ports[port]!.name} of ${resourceName(ix, ix.portRes[port]!)} is not cabled to the experiment network`,
      );
    }
    if (!this.edgeOk(ix.portEdge[port]!)) {
      return this.linkProblem(
        l,
        `${who}: the cable from ${resourceName(ix, ix.portRes[port]!)} port ${ix.ports[port]!.name} has no capacity${needText}`,
      );
    }
    return ix.portRes[peer]!;
  }

  private embedLink(l: Link): LinkEmbedding | undefined {
    const ix = this.ix;
    const need = this.linkNeed.get(l.name)!;
    const eps = l.endpoints.map((e) => {
      const p = this.placed.get(e.node)!;
      const k = this.socketPos.get(`${e.node}\u0000${e.socket}`)!;
      return { node: e.node, socket: e.socket, placement: p, port: p.ports[k]! };
    });
    let lineRate = Number.POSITIVE_INFINITY;
    for (const e of eps) lineRate = Math.min(lineRate, ix.ports[e.port]!.capacity);
    const dirs = this.linkDirs.size ? this.linkDirs.get(l.name) : undefined;
    const emulated = needsEmulation(
      l,
      lineRate,
      dirs?.map((d) => d.constraints),
    );
    this.curLink = l;
    this.curDirs = dirs;
    this.curNeed = need;
    this.curIcOk = undefined;
    const needText = need.demand > 0 ? ` with ${fmtRate(need.demand)} free` : "";

    const nets: VirtualNet[] = [];
    let emulator = -1;
    if (!emulated) {
      const vn: VirtualNet = { use: l.name, edges: new Set(), segments: [] };
      this.curVn = vn;
      nets.push(vn);
      const [a, b] = eps;
      if (eps.length === 2 && a!.port === b!.port) {
        vn.segments.push({ endpoints: eps.map((e) => ({ node: e.node, socket: e.socket })), ports: [a!.port] });
      } else if (eps.length === 2) {
        const sa = this.firstHop(l, a!.port, a!.node, needText);
        const sb = this.firstHop(l, b!.port, b!.node, needText);
        if (sa === undefined || sb === undefined) return undefined;
        const route = this.finder.between(sa, sb, this.edgeOk);
        if (!route) {
          return this.linkProblem(
            l,
            `no path between ${a!.node} and ${b!.node}${needText}${this.crossHint(l, a!.placement.resource, b!.placement.resource)}`,
          );
        }
        const ports = [a!.port, ix.portPeer[a!.port]!];
        for (const p of route) ports.push(p);
        ports.push(ix.portPeer[b!.port]!, b!.port);
        this.reserve(vn, ports, need.demand);
        vn.segments.push({ endpoints: eps.map((e) => ({ node: e.node, socket: e.socket })), ports });
      } else {
        const hub = this.firstHop(l, eps[0]!.port, eps[0]!.node, needText);
        if (hub === undefined) return undefined;
        for (const e of eps) {
          const s = this.firstHop(l, e.port, e.node, needText);
          if (s === undefined) return undefined;
          const route = this.finder.between(s, hub, this.edgeOk);
          if (!route) {
            return this.linkProblem(
              l,
              `no path from ${e.node} to the link's other endpoints${needText}${this.crossHint(l, e.placement.resource, eps[0]!.placement.resource)}`,
            );
          }
          const ports = [e.port, ix.portPeer[e.port]!];
          for (const p of route) ports.push(p);
          this.reserve(vn, ports, need.demand);
          vn.segments.push({ endpoints: [{ node: e.node, socket: e.socket }], ports });
        }
      }
    } else {
      // Cut at an emulator: one virtual network per endpoint, each ending on the emulator.
      for (const [i, e] of eps.entries()) {
        const vn: VirtualNet = { use: `${l.name}/${i}`, edges: new Set(), segments: [] };
        this.curVn = vn;
        nets.push(vn);
        const s = this.firstHop(l, e.port, e.node, needText);
        if (s === undefined) return undefined;
        // The first half finds the nearest emulator; the others route to it from both ends.
        const route =
          emulator < 0
            ? this.finder.route(s, this.isEmulator, this.edgeOk)
            : this.finder.between(s, emulator, this.edgeOk);
        if (!route || route.length === 0) {
          return this.linkProblem(
            l,
            emulator < 0
              ? `needs an emulator (it has ${emulationReason(l, dirs)}) and none is reachable from ${e.node}${needText}`
              : `no path from ${e.node} to emulator ${resourceName(ix, emulator)}${needText}`,
          );
        }
        emulator = ix.portRes[route[route.length - 1]!]!;
        const ports = [e.port, ix.portPeer[e.port]!];
        for (const p of route) ports.push(p);
        this.reserve(vn, ports, need.demand);
        vn.segments.push({ endpoints: [{ node: e.node, socket: e.socket }], ports });
      }
    }

    // What the realized link is, and whether that satisfies the link's constraints.
    let pathRate = lineRate;
    let external = false;
    const segLatency: number[] = [];
    for (const vn of nets) {
      for (const seg of vn.segments) {
        let lat = 0;
        for (let i = 0; i + 1 < seg.ports.length; i++) {
          const a = seg.ports[i]!;
          if (ix.portRes[a] === ix.portRes[seg.ports[i + 1]!]) continue;
          const e = ix.portEdge[a]!;
          pathRate = Math.min(pathRate, ix.edgeCap[e]!);
          if (ix.edgeInterconnect[e]) {
            external = true;
            lat += ix.edgeLatency[e]!;
          }
        }
        segLatency.push(lat);
      }
    }
    segLatency.sort((p, q) => q - p);
    const baseLatency = segLatency.length === 1 ? segLatency[0]! : segLatency[0]! + segLatency[1]!;
    let emulation: LinkEmbedding["emulation"];
    if (emulated) {
      // The link's values, then each direction set apart picks its own with the same bounds.
      const values = (cs: readonly Constraint[], where: string, show: (c: Constraint) => string) => {
        const out: EmulationValues = {};
        for (const [prop, lo, hi, prefer] of [
          ["capacity", 0, pathRate, "max"],
          ["latency", baseLatency, Number.POSITIVE_INFINITY, "min"],
          ["loss", 0, 1, "min"],
        ] as const) {
          const on = constraintsOn(cs, prop);
          if (!on.length) continue;
          const v = pickValue(on, lo, hi, prefer);
          if (v === undefined) {
            return this.linkProblem(
              l,
              `${where}${on.map(show).join(" and ")}: the path cannot provide it (${prop === "latency" ? `its latency is already ${fmtLatency(baseLatency)}` : `its line rate is ${fmtRate(pathRate)}`})`,
            );
          }
          out[prop] = v;
        }
        return out;
      };
      const own = values(l.constraints, "", describeConstraint);
      if (!own) return undefined;
      emulation = own;
      if (dirs) {
        const toward: NonNullable<LinkEmulation["toward"]> = [];
        for (const d of dirs) {
          const v = values(d.constraints, `toward ${d.node}: `, describeToward);
          if (!v) return undefined;
          toward.push({ node: d.node, ...v });
        }
        emulation.toward = toward;
      }
    }
    const linkValues = realizedValues(emulation, pathRate, baseLatency, external);
    const bad = firstUnsatisfied((p) => linkValues[p], l.constraints);
    if (bad)
      return this.linkProblem(
        l,
        `${describeConstraint(bad)}: the realized link has ${String(linkValues[bad.prop] ?? "no such property")}`,
      );
    for (const d of dirs ?? []) {
      const v = realizedValues(emulation && emulationToward(emulation, d.node), pathRate, baseLatency, external);
      const bad = firstUnsatisfied((p) => v[p], d.constraints);
      if (bad) {
        return this.linkProblem(
          l,
          `toward ${d.node}: ${describeToward(bad)}: the realized direction has ${formatValue(bad.prop, v[bad.prop]!)}`,
        );
      }
    }

    // Tags, waypoints, records.
    const segments: LinkSegment[] = [];
    for (const vn of nets) {
      const tagged = this.tag(vn, l.name);
      if (!tagged) return undefined;
      segments.push(...tagged);
      for (const e of vn.edges) {
        if (need.demand <= 0) break;
        this.edgeRecord(e, l.name, need.demand);
      }
    }
    const out: LinkEmbedding = { link: l.name, segments, external, capacity: need.demand };
    if (emulator >= 0) {
      out.emulator = { facility: ix.facilityNames[ix.resFacility[emulator]!]!, resource: ix.resources[emulator]!.id };
      out.emulation = emulation;
    }
    return out;
  }

  private crossHint(l: Link, a: number, b: number): string {
    const ix = this.ix;
    if (ix.resFacility[a] === ix.resFacility[b]) return "";
    return ` (they are in ${ix.facilityNames[ix.resFacility[a]!]} and ${ix.facilityNames[ix.resFacility[b]!]}; ${
      l.constraints.some((c) => c.prop === "external")
        ? "the link's external constraint forbids crossing"
        : "no interconnect meets the link's constraints"
    })`;
  }

  private edgeRecord(e: number, link: string, capacity: number): void {
    const ix = this.ix;
    const name = ix.edgeName[e]!;
    if (ix.edgeInterconnect[e]) {
      this.records.push({ kind: "interconnect", realization: this.id, interconnect: name, link, capacity });
      return;
    }
    const facility = ix.facilityNames[ix.edgeFacility[e]!]!;
    this.records.push({ kind: "cable", realization: this.id, facility, cable: name, link, capacity });
  }

  /**
   * Tags for one virtual network. Every cable carries one form: a switch port
   * on a VLAN-only switch carries the network's VLAN id for that switch's VLAN
   * domain, a port on a VXLAN switch its VNI for the facility; the port at the
   * other end of such a cable (emulator, gateway, hypervisor) carries the same.
   * Bare-metal access ports are untagged; trunked bare-metal ports always carry
   * a VLAN id (the node makes VLAN sub-interfaces). Gateways carry the VNI
   * across interconnects. VLAN-only switches between two VXLAN switches of a
   * path are underlay and carry no tag.
   */
  // Per virtual network being tagged: its kinds of endpoint ports and its underlay ports.
  private readonly tTrunk = new Set<number>();
  private readonly tAccess = new Set<number>();
  private readonly tVm = new Set<number>();
  private readonly tUnderlay = new Set<number>();

  /** VTEPs encapsulate: VXLAN switches, hypervisors (for their VMs), emulators, gateways. */
  private isVtep(port: number): boolean {
    const ix = this.ix;
    const r = ix.portRes[port]!;
    const kind = ix.resKind[r];
    return (
      (kind === KIND_SWITCH && ix.resVxlan[r] === 1) ||
      kind === KIND_EMULATOR ||
      kind === KIND_GATEWAY ||
      this.tVm.has(port)
    );
  }

  /** The VLAN domain whose id a port carries, -1 for none. */
  private wantVlan(port: number): number {
    const ix = this.ix;
    if (this.tUnderlay.has(port)) return -1;
    const r = ix.portRes[port]!;
    const peer = ix.portPeer[port]!;
    if (ix.resKind[r] === KIND_SWITCH) {
      return !ix.resVxlan[r] || (peer >= 0 && this.tTrunk.has(peer)) ? ix.resDomain[r]! : -1;
    }
    if (this.tAccess.has(port) || peer < 0 || this.tUnderlay.has(peer)) return -1;
    const s = ix.portRes[peer]!;
    if (ix.resKind[s] !== KIND_SWITCH) return -1;
    return this.tTrunk.has(port) || !ix.resVxlan[s] ? ix.resDomain[s]! : -1;
  }

  /** The facility whose VNI a port carries, -1 for none. */
  private wantVni(port: number): number {
    const ix = this.ix;
    const r = ix.portRes[port]!;
    if (ix.resKind[r] === KIND_SWITCH) return ix.resVxlan[r] ? ix.resFacility[r]! : -1;
    if (this.tAccess.has(port) || this.tTrunk.has(port)) return -1;
    const peer = ix.portPeer[port]!;
    if (peer < 0) return -1;
    const s = ix.portRes[peer]!;
    if (ix.resKind[s] !== KIND_SWITCH || this.tUnderlay.has(peer) || ix.resVxlan[s]) return ix.resFacility[r]!;
    return -1;
  }

  private tag(vn: VirtualNet, link: string): LinkSegment[] | undefined {
    const ix = this.ix;
    const { tTrunk: trunk, tAccess: access, tVm: vm, tUnderlay: underlay } = this;
    trunk.clear();
    access.clear();
    vm.clear();
    underlay.clear();
    for (const seg of vn.segments) {
      for (const ep of seg.endpoints) {
        const p = this.placed.get(ep.node)!;
        const k = this.socketPos.get(`${ep.node}\u0000${ep.socket}`)!;
        if (p.mode === "virtual") vm.add(p.ports[k]!);
        else (p.virtual[k] ? trunk : access).add(p.ports[k]!);
      }
    }
    // VLAN-only switches between two VTEPs of a path see only encapsulated
    // traffic (pure underlay, e.g. spines) and need no tag.
    for (const seg of vn.segments) {
      let first = -1;
      let last = -1;
      for (let i = 0; i < seg.ports.length; i++) {
        if (!this.isVtep(seg.ports[i]!)) continue;
        if (first < 0) first = i;
        last = i;
      }
      for (let i = first + 1; i < last; i++) {
        const r = ix.portRes[seg.ports[i]!]!;
        if (ix.resKind[r] === KIND_SWITCH && !ix.resVxlan[r]) underlay.add(seg.ports[i]!);
      }
    }
    const vlanDomains = new Set<number>();
    const vniFacilities = new Set<number>();
    for (const seg of vn.segments) {
      if (seg.ports.length < 2) continue; // bridged inside one hypervisor
      for (const port of seg.ports) {
        const d = this.wantVlan(port);
        if (d >= 0) vlanDomains.add(d);
        const f = this.wantVni(port);
        if (f >= 0) vniFacilities.add(f);
      }
    }
    const vlan = new Map<number, number>();
    const vni = new Map<number, number>();
    for (const d of [...vlanDomains].sort((a, b) => a - b)) {
      const pool = this.vlanPool(d);
      const t = pool.take();
      const [f, name] = ix.domainNames[d]!.split("\u0000");
      if (t === undefined) {
        this.problems.push({
          element: "link",
          name: link,
          message: `no free VLAN id in VLAN domain ${name} of facility ${f} (pool ${pool.describe()} is exhausted)`,
        });
        return undefined;
      }
      vlan.set(d, t);
      this.records.push({ kind: "vlan", realization: this.id, facility: f!, domain: name!, tag: t, use: vn.use });
    }
    for (const f of [...vniFacilities].sort((a, b) => a - b)) {
      const t = this.vni(f, vn.use);
      if (t === undefined) {
        this.problems.push({
          element: "link",
          name: link,
          message: `no free VNI in facility ${ix.facilityNames[f]} (pool ${this.vniPool(f).describe()} is exhausted)`,
        });
        return undefined;
      }
      vni.set(f, t);
    }
    return vn.segments.map((s) => ({
      endpoints: s.endpoints,
      waypoints: s.ports.map((port) => {
        const r = ix.portRes[port]!;
        const w: Waypoint = {
          facility: ix.facilityNames[ix.resFacility[r]!]!,
          resource: ix.resources[r]!.id,
          port: ix.ports[port]!.name,
        };
        if (s.ports.length < 2) return w;
        const d = this.wantVlan(port);
        if (d >= 0) w.vlan = vlan.get(d);
        const f = this.wantVni(port);
        if (f >= 0) w.vni = vni.get(f);
        return w;
      }),
    }));
  }

  private vlanPool(d: number): TagPool {
    let pool = this.vlanPools.get(d);
    if (!pool) {
      const [f, name] = this.ix.domainNames[d]!.split("\u0000");
      const fac = this.ix.internet.facilities[this.ix.facilityOf.get(f!)!]!;
      pool = new TagPool(sortedRanges(fac.tags.vlan[name!] ?? []), this.usage.vlanUsed[d]!);
      this.vlanPools.set(d, pool);
    }
    return pool;
  }

  private vniPool(f: number): TagPool {
    let pool = this.vniPools.get(f);
    if (!pool) {
      pool = new TagPool(sortedRanges(this.ix.internet.facilities[f]!.tags.vni), this.usage.vniUsed[f]!);
      this.vniPools.set(f, pool);
    }
    return pool;
  }

  private vni(f: number, use: string): number | undefined {
    const t = this.vniPool(f).take();
    if (t !== undefined) {
      this.records.push({ kind: "vni", realization: this.id, facility: this.ix.facilityNames[f]!, tag: t, use });
    }
    return t;
  }

  // ---- infranets ----

  private infranets(): Infranet[] {
    const ix = this.ix;
    const touched = [...new Set([...this.placed.values()].map((p) => ix.resFacility[p.resource]!))].sort(
      (a, b) => a - b,
    );
    const out: Infranet[] = [];
    for (const f of touched) {
      const servers = ix.infrapodServers[f]!;
      if (!servers.length) {
        this.problems.push({
          element: "facility",
          name: ix.facilityNames[f]!,
          message: "has no infrapod server for the experiment's infranet",
        });
        continue;
      }
      let best = servers[0]!;
      for (const s of servers) if (this.usage.infrapodLoad[s]! < this.usage.infrapodLoad[best]!) best = s;
      this.usage.infrapodLoad[best]!++;
      const vni = this.vni(f, INFRANET_USE);
      if (vni === undefined) {
        this.problems.push({
          element: "facility",
          name: ix.facilityNames[f]!,
          message: `no free VNI for the infranet (pool ${this.vniPool(f).describe()} is exhausted)`,
        });
        continue;
      }
      this.records.push({
        kind: "infrapod",
        realization: this.id,
        facility: ix.facilityNames[f]!,
        resource: ix.resources[best]!.id,
      });
      out.push({ facility: ix.facilityNames[f]!, vni, infrapodServer: ix.resources[best]!.id });
    }
    return out;
  }

  private realization(links: LinkEmbedding[], infranets: Infranet[]): Realization {
    const ix = this.ix;
    const ifaceTags = new Map<string, { vlan?: number; vni?: number }>();
    for (const l of links) {
      for (const s of l.segments) {
        if (s.endpoints.length === 0) continue;
        const first = s.waypoints[0]!;
        const last = s.waypoints[s.waypoints.length - 1]!;
        for (const [i, ep] of s.endpoints.entries()) {
          const w = i === 0 ? first : last;
          ifaceTags.set(`${ep.node}\u0000${ep.socket}`, { vlan: w.vlan, vni: w.vni });
        }
      }
    }
    const nodes: NodeEmbedding[] = this.x.nodes.map((n) => {
      const p = this.placed.get(n.name)!;
      const sockets = [...n.sockets].sort((a, b) => a.index - b.index);
      const interfaces: InterfaceEmbedding[] = sockets.map((s, k) => {
        const iface: InterfaceEmbedding = {
          socket: s.index,
          port: ix.ports[p.ports[k]!]!.name,
          virtual: p.virtual[k]!,
        };
        const nic = p.mode === "virtual" ? vmNic(s.constraints) : undefined;
        if (nic) {
          iface.model = nic.model;
          iface.queues = nic.queues;
        }
        const tags = ifaceTags.get(`${n.name}\u0000${s.index}`);
        if (tags?.vlan !== undefined) iface.vlan = tags.vlan;
        if (tags?.vni !== undefined) iface.vni = tags.vni;
        return iface;
      });
      return {
        node: n.name,
        facility: ix.facilityNames[ix.resFacility[p.resource]!]!,
        resource: ix.resources[p.resource]!.id,
        mode: p.mode,
        alloc: { cores: p.sizes[0]!, memory: p.sizes[1]!, disk: p.sizes[2]! },
        interfaces,
      };
    });
    const hash = this.options.experimentHash ?? canonicalHash(this.x);
    return { xir: "1.0", id: this.id, experiment: hash, nodes, links, infranets };
  }
}

/** What a realized link (or one direction of it) is, as its constraints see it. */
function realizedValues(
  e: EmulationValues | undefined,
  pathRate: number,
  baseLatency: number,
  external: boolean,
): Record<string, Scalar> {
  return {
    capacity: e?.capacity ?? pathRate,
    latency: e?.latency ?? baseLatency,
    loss: e?.loss ?? 0,
    external,
    layer: 2,
    kind: "ethernet",
  };
}

/** Could the link (and each direction set apart) be realized across an interconnect of this capacity and latency? */
function mayCross(
  l: Link,
  dirs: readonly Direction[] | undefined,
  need: LinkNeed,
  capacity: number,
  latency: number,
): boolean {
  if (need.demand > capacity || need.minRate > capacity) return false;
  const ext = constraintsOn(l.constraints, "external");
  if (firstUnsatisfied(() => true, ext)) return false;
  for (const cs of dirs ? [l.constraints, ...dirs.map((d) => d.constraints)] : [l.constraints]) {
    const lat = constraintsOn(cs, "latency");
    if (lat.length && pickValue(lat, latency, Number.POSITIVE_INFINITY, "min") === undefined) return false;
    const cap = constraintsOn(cs, "capacity");
    if (cap.length && pickValue(cap, 0, capacity, "max") === undefined) return false;
  }
  return true;
}

function emulationReason(l: Link, dirs: readonly Direction[] | undefined): string {
  const own = l.constraints.filter((c) => ["latency", "loss", "capacity"].includes(c.prop)).map(describeConstraint);
  for (const d of dirs ?? []) own.push(`toward ${d.node}: ${d.constraints.map(describeToward).join(", ")}`);
  return own.join(", ");
}

function bfsOrder(n: number, neighbours: number[][]): number[] {
  const seen = new Uint8Array(n);
  const order: number[] = [];
  for (let s = 0; s < n; s++) {
    if (seen[s]) continue;
    seen[s] = 1;
    order.push(s);
    for (let h = order.length - 1; h < order.length; h++) {
      for (const nb of neighbours[order[h]!]!) {
        if (!seen[nb]) {
          seen[nb] = 1;
          order.push(nb);
        }
      }
    }
  }
  return order;
}

function sortedRanges(r: readonly TagRange[]): TagRange[] {
  return [...r].sort((a, b) => a.first - b.first);
}

function fmtRate(bps: number): string {
  return describeConstraint({ prop: "capacity", op: "==", value: bps }).slice("capacity == ".length);
}

function fmtLatency(ns: number): string {
  return describeConstraint({ prop: "latency", op: "==", value: ns }).slice("latency == ".length);
}
