/**
 * Placing an experiment's nodes: every node's candidates first (so scarcity
 * weighs what the whole experiment asks for), then nodes in breadth-first
 * order over the experiment graph, each near a placed neighbour, with one
 * repair step when a node finds nothing. Links that cannot cross facilities
 * bind their endpoints to one facility.
 */
import { type Experiment, firstUnsatisfied, type Link } from "@merge/xir";
import type { Attempt } from "./context.ts";
import { diagnoseNode } from "./diagnosis.ts";
import { portConstraints } from "./direction.ts";
import { mayCross } from "./needs.ts";
import {
  type Candidate,
  identityConstraints,
  identityLookup,
  key,
  mapSockets,
  type Placement,
  Placer,
  type SocketNeed,
} from "./placement.ts";

/** How an attempt places nodes. */
export interface PlacementPlan {
  /** Bare metal before VMs for nodes that do not say (the default is VMs first). */
  metalFirst?: boolean;
  /** Per node (experiment order): the leaf rank to place it near, -1 for near a placed neighbour. */
  target?: Int32Array;
  /** Per node: the candidate key (class × 2 + mode) to take under its target leaf first, -1 for any. */
  key?: Int32Array;
}

/** Place every node of the attempt's experiment; nodes that find nothing become problems. */
export function placeNodes(a: Attempt, plan: PlacementPlan = {}): void {
  const { x, ix, vmDefaults } = a.demand;
  const placer = new Placer(ix, a.usage, vmDefaults, plan.metalFirst);
  const target = plan.target;
  /** Bare-metal resource → the experiment node (index) on it. */
  const holder = new Map<number, number>();
  const g = experimentGraph(x);
  const { index, neighbours } = g;
  const bind = facilityBinding(a, index);
  const order = bfsOrder(x.nodes.length, neighbours);
  const parent = new Int32Array(x.nodes.length).fill(-1);
  const groupFacility = new Map<number, { facility: number; rank: number }>();
  let lastRank = 0;
  const candidatesOf = nodeCandidates(a, placer, g, true);

  /**
   * When greedy placement leaves a node without a resource, one repair step:
   * find a bare-metal resource the node could use that another node of this
   * experiment holds, move that node elsewhere, and give the node its place.
   */
  const rescue = (i: number, candidates: readonly Candidate[], facility: number): Placement | undefined => {
    const identity = identityConstraints(x.nodes[i]!.constraints);
    let tries = 0;
    for (const c of candidates) {
      if (c.mode !== "physical") continue;
      const members = c.cls.members;
      for (let pos = 0; pos < members.length && tries < 64; pos++) {
        const r = members[pos]!;
        const m = holder.get(r);
        if (m === undefined) continue;
        if (facility >= 0 && ix.resFacility[r] !== facility) continue;
        if (identity.length && firstUnsatisfied(identityLookup(ix, r), identity)) continue;
        tries++;
        const mNode = x.nodes[m]!;
        const mPlaced = a.placed.get(mNode.name)!;
        const mFixed = groupFacility.get(bind(m));
        const moved = placer.place(
          candidatesOf[m]!,
          mPlaced.rank,
          mFixed ? mFixed.facility : -1,
          identityConstraints(mNode.constraints),
        );
        if (!moved) continue;
        a.placed.set(mNode.name, moved);
        holder.delete(r);
        if (moved.mode === "physical") holder.set(moved.resource, m);
        return placer.placementAt(c, pos);
      }
    }
    return undefined;
  };

  for (const i of order) {
    const node = x.nodes[i]!;
    for (const nb of neighbours[i]!) if (parent[nb] === -1 && !a.placed.has(x.nodes[nb]!.name)) parent[nb] = i;
    const candidates = candidatesOf[i]!;
    placer.claim(candidates, -1);
    const group = bind(i);
    const fixed = groupFacility.get(group);
    const p = parent[i]! >= 0 ? a.placed.get(x.nodes[parent[i]!]!.name) : undefined;
    let anchor = lastRank;
    if (target && target[i]! >= 0 && (!fixed || ix.rankFacility[target[i]!] === fixed.facility)) anchor = target[i]!;
    else if (p && (!fixed || ix.resFacility[p.resource] === fixed.facility)) anchor = p.rank;
    else if (fixed) anchor = fixed.rank;
    const identity = identityConstraints(node.constraints);
    // The placement search chose a class and mode under a leaf: that first, exactly.
    const want = plan.key && target && target[i]! >= 0 ? plan.key[i]! : -1;
    const exact = want >= 0 ? candidates.find((c) => key(c) === want) : undefined;
    let placement = exact ? placer.placeUnder(exact, target![i]!, identity) : undefined;
    if (!placement && candidates.length) {
      placement = placer.place(
        candidates,
        anchor,
        fixed ? fixed.facility : -1,
        identity,
        target !== undefined && target[i]! >= 0,
      );
    }
    const rescued = placement ?? rescue(i, candidates, fixed ? fixed.facility : -1);
    if (rescued) {
      a.placed.set(node.name, rescued);
      if (rescued.mode === "physical") holder.set(rescued.resource, i);
      lastRank = rescued.rank;
      if (!fixed && ix.facilityNames.length > 1) {
        groupFacility.set(group, { facility: ix.resFacility[rescued.resource]!, rank: rescued.rank });
      }
      continue;
    }
    if (a.problems.full) {
      a.problems.dropped++;
      continue;
    }
    const why = candidates.length ? undefined : mappingWhy(a, socketsOf(a, g, i));
    const msg = diagnoseNode({
      ix,
      usage: a.usage,
      node,
      vmDefaults,
      facility: fixed ? fixed.facility : -1,
      mappingWhy: why,
      candidates,
    });
    a.problems.add({ element: "node", name: node.name, message: msg + wholeMachines(a, holder) });
  }
  for (const node of x.nodes) {
    const p = a.placed.get(node.name);
    if (!p) continue;
    a.records.push({
      kind: "node",
      realization: a.demand.id,
      facility: ix.facilityNames[ix.resFacility[p.resource]!]!,
      resource: ix.resources[p.resource]!.id,
      node: node.name,
      mode: p.mode,
      cores: p.sizes[0]!,
      memory: p.sizes[1]!,
      disk: p.sizes[2]!,
    });
  }
}

/** The experiment as a graph over node indices. */
export interface ExperimentGraph {
  index: Map<string, number>;
  /** A chain plus a star per link keeps multipoint links linear in their size. */
  neighbours: number[][];
  /** `node\u0000socket` → its link. */
  socketLink: Map<string, Link>;
}

export function experimentGraph(x: Experiment): ExperimentGraph {
  const index = new Map(x.nodes.map((n, i) => [n.name, i]));
  const neighbours: number[][] = x.nodes.map(() => []);
  const socketLink = new Map<string, Link>();
  for (const l of x.links) {
    const ends = l.endpoints.map((e) => index.get(e.node)!);
    for (const e of l.endpoints) socketLink.set(`${e.node}\u0000${e.socket}`, l);
    for (let k = 1; k < ends.length; k++) {
      for (const j of k === 1 ? [0] : [0, k - 1]) {
        neighbours[ends[k]!]!.push(ends[j]!);
        neighbours[ends[j]!]!.push(ends[k]!);
      }
    }
  }
  return { index, neighbours, socketLink };
}

/** What a node's sockets ask of ports: their constraints and their links' capacity. */
function socketsOf(a: Attempt, g: ExperimentGraph, i: number): SocketNeed[] {
  const node = a.demand.x.nodes[i]!;
  return [...node.sockets]
    .sort((p, q) => p.index - q.index)
    .map((s) => {
      const l = g.socketLink.get(`${node.name}\u0000${s.index}`);
      const need = l ? a.demand.linkNeed.get(l.name)! : { demand: 0, minRate: 0 };
      // rx.* constraints are on the link's direction (checked at the link), not on the port.
      const constraints = portConstraints(s.constraints);
      return { index: s.index, constraints, demand: need.demand, minRate: need.minRate };
    });
}

/**
 * Every node's candidates (nodes alike in constraints and sockets share one
 * list); `claim` counts them as the experiment's demand on each class, so
 * scarcity weighs what the whole experiment will ask for.
 */
export function nodeCandidates(a: Attempt, placer: Placer, g: ExperimentGraph, claim: boolean): Candidate[][] {
  const cache = new Map<string, Candidate[]>();
  return a.demand.x.nodes.map((node, i) => {
    const sockets = socketsOf(a, g, i);
    const key = JSON.stringify([node.constraints, sockets]);
    let list = cache.get(key);
    if (!list) {
      list = placer.candidates(node.constraints, sockets);
      cache.set(key, list);
    }
    if (claim) placer.claim(list, 1);
    return list;
  });
}

/**
 * When nodes that did not ask for bare metal hold whole machines that could
 * host VMs, say so: that room is what a failed node may have needed.
 */
function wholeMachines(a: Attempt, holder: ReadonlyMap<number, number>): string {
  const { x, ix } = a.demand;
  const names: string[] = [];
  for (const [r, i] of holder) {
    const node = x.nodes[i]!;
    if (ix.resources[r]!.alloc.includes("virtual") && !node.constraints.some((c) => c.prop === "metal")) {
      names.push(node.name);
    }
  }
  if (!names.length) return "";
  names.sort();
  const shown = names.length > 5 ? `${names.slice(0, 5).join(", ")}, …` : names.join(", ");
  return `; ${names.length} node${names.length > 1 ? "s" : ""} of this experiment with no metal constraint (${shown}) took whole machines that could host VMs: give nodes that need not be bare metal \`metal == false\``;
}

/** Why no class could carry a node's sockets (for the diagnosis). */
function mappingWhy(a: Attempt, sockets: SocketNeed[]): string | undefined {
  for (const cls of a.demand.ix.classes) {
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
function facilityBinding(a: Attempt, index: Map<string, number>): (node: number) => number {
  const { x, ix, linkNeed, linkDirs } = a.demand;
  const parent = Int32Array.from({ length: x.nodes.length }, (_, i) => i);
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
  if (ix.facilityNames.length > 1) {
    const ics = ix.internet.interconnects;
    for (const l of x.links) {
      const need = linkNeed.get(l.name)!;
      const dirs = linkDirs.get(l.name);
      if (ics.some((ic) => mayCross(l, dirs, need, ic.capacity, ic.latency))) continue;
      const ends = l.endpoints.map((e) => index.get(e.node)!);
      for (const e of ends.slice(1)) parent[find(e)] = find(ends[0]!);
    }
  }
  return find;
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
