/**
 * Placing an experiment's nodes: every node's candidates first (so scarcity
 * weighs what the whole experiment asks for), then nodes in breadth-first
 * order over the experiment graph, each near a placed neighbour, with one
 * repair step when a node finds nothing. Links that cannot cross facilities
 * bind their endpoints to one facility.
 */
import { firstUnsatisfied, type Link } from "@merge/xir";
import type { Attempt } from "./context.ts";
import { diagnoseNode } from "./diagnosis.ts";
import { portConstraints } from "./direction.ts";
import { mayCross } from "./needs.ts";
import {
  type Candidate,
  identityConstraints,
  identityLookup,
  mapSockets,
  type Placement,
  Placer,
  type SocketNeed,
} from "./placement.ts";

/** Place every node of the attempt's experiment; nodes that find nothing become problems. */
export function placeNodes(a: Attempt): void {
  const { x, ix, vmDefaults } = a.demand;
  const placer = new Placer(ix, a.usage, vmDefaults);
  /** Bare-metal resource → the experiment node (index) on it. */
  const holder = new Map<number, number>();
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
  const bind = facilityBinding(a, index);
  const order = bfsOrder(x.nodes.length, neighbours);
  const parent = new Int32Array(x.nodes.length).fill(-1);
  const groupFacility = new Map<number, { facility: number; rank: number }>();
  const candidateCache = new Map<string, Candidate[]>();
  let lastRank = 0;
  const socketsOf = (i: number): SocketNeed[] => {
    const node = x.nodes[i]!;
    return [...node.sockets]
      .sort((p, q) => p.index - q.index)
      .map((s) => {
        const l = socketLink.get(`${node.name}\u0000${s.index}`);
        const need = l ? a.demand.linkNeed.get(l.name)! : { demand: 0, minRate: 0 };
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
      list = placer.candidates(node.constraints, sockets);
      candidateCache.set(key, list);
    }
    placer.claim(list, 1);
    return list;
  });

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
    if (p && (!fixed || ix.resFacility[p.resource] === fixed.facility)) anchor = p.rank;
    else if (fixed) anchor = fixed.rank;
    const placement = candidates.length
      ? placer.place(candidates, anchor, fixed ? fixed.facility : -1, identityConstraints(node.constraints))
      : undefined;
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
    const why = candidates.length ? undefined : mappingWhy(a, socketsOf(i));
    const msg = diagnoseNode(ix, a.usage, node, vmDefaults, fixed ? fixed.facility : -1, why, candidates);
    a.problems.add({ element: "node", name: node.name, message: msg });
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
