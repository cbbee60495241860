/**
 * Bandwidth-aware placement: which leaf switch each node should sit under so
 * that the links between leaves fit the trunks above them.
 *
 * The model: every leaf has a budget, the free capacity of its trunks (its
 * cables to other switches); a link whose endpoints sit under more than one
 * leaf loads the trunks of every leaf it touches with its reservation. Each
 * leaf offers units per host class and mode (free machines; VM slots of the
 * default size). The cost of an assignment is the overflow of every budget,
 * weighted heavily, plus the total load (fewer crossings is better).
 *
 * Two starts — the greedy engine's own placement, and a k-way partition grown
 * region by region (greedy graph growing, each leaf's share in proportion to
 * the units it offers) — are refined by Fiduccia–Mattheyses-style passes:
 * every node in a seeded order moves to the leaf of a neighbour (or the leaf
 * with the most spare budget) when that lowers the cost. A linear pass over
 * nodes and their links, so a search costs milliseconds at 1,000 nodes and
 * never runs at all when the greedy engine already routed every link.
 */

import { seededRandom as random } from "@merge/xir";
import type { Demand } from "./context.ts";
import { KIND_GATEWAY, KIND_SWITCH } from "./internet.ts";
import { type Candidate, key } from "./placement.ts";
import type { Usage } from "./usage.ts";

/** Overflow counts this many times more than load: crossing trunks is fine, overfilling them is not. */
const OVERFLOW_WEIGHT = 16;
const MAX_PASSES = 24;

/** What the leaves offer: trunk budgets, and units per leaf and candidate key (class × 2 + mode). */
export interface LeafSupply {
  leaves: number;
  keys: number;
  budget: Float64Array;
  /** Bare metal: free machines; VMs: slots of the default size. */
  units: Float64Array;
  /**
   * Per class that offers both modes: the VM slots one free machine holds
   * (taking it as bare metal takes those slots too); 0 otherwise.
   */
  slotsPerMachine: Float64Array;
}

export function leafSupply(d: Demand, usage: Usage): LeafSupply {
  const { ix } = d;
  const leaves = ix.rankFabric.length;
  const keys = ix.classes.length * 2;
  const budget = new Float64Array(leaves);
  for (let r = 0; r < ix.resources.length; r++) {
    const rank = ix.leafRank[r]!;
    if (rank < 0) continue;
    for (let p = ix.resPortStart[r]!; p < ix.resPortStart[r + 1]!; p++) {
      const e = ix.portEdge[p]!;
      if (e < 0 || ix.edgeInterconnect[e]) continue;
      const kind = ix.resKind[ix.portRes[ix.portPeer[p]!]!];
      if (kind === KIND_SWITCH || kind === KIND_GATEWAY) budget[rank]! += Math.max(0, usage.edgeFree(e));
    }
  }
  const units = new Float64Array(leaves * keys);
  const slotsPerMachine = new Float64Array(ix.classes.length);
  const d0 = d.vmDefaults;
  for (const cls of ix.classes) {
    for (let i = 0; i < cls.members.length; i++) {
      const r = cls.members[i]!;
      const rank = cls.memberRank[i]!;
      if (rank < 0 || rank >= leaves) continue;
      if (cls.alloc.includes("physical") && usage.physicallyFree(r)) units[rank * keys + cls.id * 2]!++;
      if (cls.alloc.includes("virtual") && usage.physical[r] === 0) {
        const slots = Math.min(
          Math.floor(usage.remaining[r * 3]! / Math.max(d0.cores, 1e-9)),
          Math.floor(usage.remaining[r * 3 + 1]! / Math.max(d0.memory, 1)),
          Math.floor(usage.remaining[r * 3 + 2]! / Math.max(d0.disk, 1)),
          // A shared host takes one node of the experiment.
          usage.onePerExperiment[r] ? 1 - usage.mine[r]! : Number.POSITIVE_INFINITY,
        );
        if (slots > 0) units[rank * keys + cls.id * 2 + 1]! += slots;
        if (cls.alloc.includes("physical") && usage.physicallyFree(r)) {
          slotsPerMachine[cls.id] = Math.max(slotsPerMachine[cls.id]!, slots);
        }
      }
    }
  }
  return { leaves, keys, budget, units, slotsPerMachine };
}

/** The experiment (or a coarsened form of it) as the partition sees it. */
export interface LeafGraph {
  /** Per node: candidate keys, VMs first (the engine's default). Nodes merged by coarsening share their keys. */
  nodeKeys: Int32Array[];
  /** Per node, parallel to its keys: units it takes (a VM larger than the default takes several slots). */
  nodeCost: Float64Array[];
  /** Per node: how many experiment nodes it stands for. */
  nodeWeight: Int32Array;
  /** Per link: distinct node indices, and what it reserves. */
  ends: Int32Array[];
  weight: Float64Array;
  /** Link name → index into `ends` (the experiment's own graph only). */
  linkOf: Map<string, number>;
}

/** The experiment's links with a reservation, over node indices. */
export function experimentLeafGraph(d: Demand, candidates: readonly Candidate[][]): LeafGraph {
  const { x } = d;
  const d0 = d.vmDefaults;
  const defaults = [d0.cores, d0.memory, d0.disk];
  const sorted = candidates.map((cs) =>
    [...cs].sort((a, b) => (a.mode === b.mode ? 0 : a.mode === "virtual" ? -1 : 1)),
  );
  const nodeKeys = sorted.map((cs) => Int32Array.from(cs, key));
  const nodeCost = sorted.map((cs) =>
    Float64Array.from(cs, (c) =>
      c.mode === "physical"
        ? 1
        : Math.max(1, ...c.sizes.map((v, k) => Math.ceil(v / Math.max(defaults[k]!, 1e-9) - 1e-9))),
    ),
  );
  const index = new Map(x.nodes.map((n, i) => [n.name, i]));
  const ends: Int32Array[] = [];
  const weights: number[] = [];
  const linkOf = new Map<string, number>();
  for (const l of x.links) {
    const w = d.linkNeed.get(l.name)?.demand ?? 0;
    if (w <= 0) continue;
    const e = Int32Array.from(new Set(l.endpoints.map((p) => index.get(p.node)!)));
    if (e.length < 2) continue;
    linkOf.set(l.name, ends.length);
    ends.push(e);
    weights.push(w);
  }
  return {
    nodeKeys,
    nodeCost,
    nodeWeight: new Int32Array(x.nodes.length).fill(1),
    ends,
    weight: Float64Array.from(weights),
    linkOf,
  };
}

/**
 * One level of coarsening by heavy-edge matching: nodes in a seeded order
 * merge with the unmatched neighbour (of the same candidate keys) they share
 * the most reservation with, up to `maxWeight` experiment nodes per merged node.
 */
export function coarsen(g: LeafGraph, seed: number, maxWeight: number): { graph: LeafGraph; map: Int32Array } {
  const n = g.nodeWeight.length;
  const sig = new Map<string, number>();
  const keySig = g.nodeKeys.map((k, v) => {
    // Same keys and the same units per experiment node: merged nodes keep one cost per node.
    const w = g.nodeWeight[v]!;
    const s = `${k.join(",")}/${Array.from(g.nodeCost[v]!, (c) => c / w).join(",")}`;
    let id = sig.get(s);
    if (id === undefined) {
      id = sig.size;
      sig.set(s, id);
    }
    return id;
  });
  const adj: { u: number; w: number }[][] = Array.from({ length: n }, () => []);
  g.ends.forEach((e, k) => {
    for (let i = 1; i < e.length; i++) {
      adj[e[0]!]!.push({ u: e[i]!, w: g.weight[k]! });
      adj[e[i]!]!.push({ u: e[0]!, w: g.weight[k]! });
    }
  });
  const order = shuffled(n, seed);
  const map = new Int32Array(n).fill(-1);
  const weights: number[] = [];
  const keys: Int32Array[] = [];
  const costs: Float64Array[] = [];
  const sum = new Map<number, number>();
  for (const v of order) {
    if (map[v]! >= 0) continue;
    sum.clear();
    for (const { u, w } of adj[v]!) {
      if (map[u]! >= 0 || u === v || keySig[u] !== keySig[v]) continue;
      if (g.nodeWeight[u]! + g.nodeWeight[v]! > maxWeight) continue;
      sum.set(u, (sum.get(u) ?? 0) + w);
    }
    let best = -1;
    let bestW = 0;
    for (const [u, w] of sum) if (w > bestW || (w === bestW && u < best)) [best, bestW] = [u, w];
    const id = weights.length;
    map[v] = id;
    let weight = g.nodeWeight[v]!;
    let cost = g.nodeCost[v]!;
    if (best >= 0) {
      map[best] = id;
      weight += g.nodeWeight[best]!;
      const other = g.nodeCost[best]!;
      cost = cost.map((c, j) => c + other[j]!);
    }
    weights.push(weight);
    keys.push(g.nodeKeys[v]!);
    costs.push(cost);
  }
  const ends: Int32Array[] = [];
  const wts: number[] = [];
  const pair = new Map<string, number>();
  g.ends.forEach((e, k) => {
    const c = [...new Set(Array.from(e, (v) => map[v]!))].sort((a, b) => a - b);
    if (c.length < 2) return;
    if (c.length === 2) {
      const key = `${c[0]},${c[1]}`;
      const at = pair.get(key);
      if (at !== undefined) {
        wts[at]! += g.weight[k]!;
        return;
      }
      pair.set(key, ends.length);
    }
    ends.push(Int32Array.from(c));
    wts.push(g.weight[k]!);
  });
  return {
    graph: {
      nodeKeys: keys,
      nodeCost: costs,
      nodeWeight: Int32Array.from(weights),
      ends,
      weight: Float64Array.from(wts),
      linkOf: new Map(),
    },
    map,
  };
}

function shuffled(n: number, seed: number): Int32Array {
  const rand = random(seed);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** The partition problem on one graph: where each node is, the units it holds, the load on each leaf's trunks. */
export class LeafModel {
  readonly leaves: number;
  readonly budget: Float64Array;
  private readonly units: Float64Array;
  private readonly keys: number;
  private readonly slotsPerMachine: Float64Array;
  private readonly nodeKeys: Int32Array[];
  private readonly nodeCost: Float64Array[];
  private readonly nodeWeight: Int32Array;
  /** Per node: links (indices) with a reservation. */
  readonly nodeLinks: number[][];
  readonly ends: Int32Array[];
  readonly weight: Float64Array;
  private readonly linkOf: Map<string, number>;

  /** Per node: its leaf (-1 none) and the key it holds units of. */
  readonly leaf: Int32Array;
  /** Per node: the candidate key it holds a unit of (-1 none). */
  readonly held: Int32Array;
  /** Per node: the units it holds under that key. */
  private readonly heldCost: Float64Array;
  readonly load: Float64Array;
  private readonly scratch: Float64Array;
  private readonly touched: number[] = [];
  private readonly targets: number[] = [];

  constructor(supply: LeafSupply, g: LeafGraph) {
    this.leaves = supply.leaves;
    this.keys = supply.keys;
    this.budget = Float64Array.from(supply.budget);
    this.units = Float64Array.from(supply.units);
    this.slotsPerMachine = supply.slotsPerMachine;
    this.nodeKeys = g.nodeKeys;
    this.nodeCost = g.nodeCost;
    this.nodeWeight = g.nodeWeight;
    this.ends = g.ends;
    this.weight = g.weight;
    this.linkOf = g.linkOf;
    const n = g.nodeWeight.length;
    this.nodeLinks = Array.from({ length: n }, () => []);
    g.ends.forEach((e, k) => {
      for (const v of e) this.nodeLinks[v]!.push(k);
    });
    this.leaf = new Int32Array(n).fill(-1);
    this.held = new Int32Array(n).fill(-1);
    this.heldCost = new Float64Array(n);
    this.load = new Float64Array(this.leaves);
    this.scratch = new Float64Array(this.leaves);
  }

  get nodes(): number {
    return this.leaf.length;
  }

  /** The index (into its keys) of the key a node would take units of in a leaf, -1 when the leaf has none left for it. */
  private keyIn(v: number, rank: number, units = this.units): number {
    const ks = this.nodeKeys[v]!;
    const cs = this.nodeCost[v]!;
    for (let j = 0; j < ks.length; j++) {
      const at = rank * this.keys + ks[j]!;
      if (units[at]! < cs[j]! - 1e-9) continue;
      // Bare metal on a class that also hosts VMs: the machine's slots must be free too.
      const spm = ks[j]! & 1 ? 0 : this.slotsPerMachine[ks[j]! >> 1]!;
      if (spm > 0 && units[at + 1]! < cs[j]! * spm - 1e-9) continue;
      return j;
    }
    return -1;
  }

  /** Take (sign 1) or give back (-1) what node v holds with key k under a leaf. */
  private take(units: Float64Array, rank: number, k: number, cost: number, sign: number): void {
    const at = rank * this.keys + k;
    units[at]! -= sign * cost;
    const spm = k & 1 ? 0 : this.slotsPerMachine[k >> 1]!;
    if (spm > 0) units[at + 1]! -= sign * cost * spm;
  }

  canTake(v: number, rank: number): boolean {
    return this.keyIn(v, rank) >= 0;
  }

  /** Units a leaf offers the experiment (any key some node can use). */
  offer(rank: number, usable: ReadonlySet<number>): number {
    let n = 0;
    for (const k of usable) n += this.units[rank * this.keys + k]!;
    return n;
  }

  usableKeys(): Set<number> {
    const out = new Set<number>();
    for (const ks of this.nodeKeys) for (const k of ks) out.add(k);
    return out;
  }

  /** Put node v under a leaf (or nowhere with -1), taking a unit there; loads are not updated. */
  private seat(v: number, rank: number): void {
    const from = this.leaf[v]!;
    if (from >= 0) this.take(this.units, from, this.held[v]!, this.heldCost[v]!, -1);
    this.leaf[v] = rank;
    this.held[v] = -1;
    if (rank < 0) return;
    const j = this.keyIn(v, rank);
    if (j >= 0) {
      this.held[v] = this.nodeKeys[v]![j]!;
      this.heldCost[v] = this.nodeCost[v]![j]!;
      this.take(this.units, rank, this.held[v]!, this.heldCost[v]!, 1);
    } else {
      this.leaf[v] = -1;
    }
  }

  /**
   * Start from an assignment (leaf rank per node); a node without one, or
   * whose leaf has no room, goes to a neighbour's leaf or else the first with
   * room. Loads recomputed.
   */
  assign(target: Int32Array): void {
    for (let v = 0; v < this.nodes; v++) this.seat(v, -1);
    for (let v = 0; v < this.nodes; v++) if (target[v]! >= 0) this.seat(v, target[v]!);
    for (let v = 0; v < this.nodes; v++) {
      if (this.leaf[v]! >= 0) continue;
      for (const k of this.nodeLinks[v]!) {
        for (const u of this.ends[k]!)
          if (this.leaf[v]! < 0 && this.leaf[u]! >= 0 && this.canTake(v, this.leaf[u]!)) this.seat(v, this.leaf[u]!);
      }
      for (let r = 0; r < this.leaves && this.leaf[v]! < 0; r++) if (this.canTake(v, r)) this.seat(v, r);
    }
    this.load.fill(0);
    for (let k = 0; k < this.ends.length; k++) this.addLink(k, 1);
  }

  private addLink(k: number, sign: number): void {
    const ends = this.ends[k]!;
    const first = this.leaf[ends[0]!]!;
    let cross = false;
    for (const v of ends) if (this.leaf[v] !== first) cross = true;
    if (!cross) return;
    const w = this.weight[k]! * sign;
    const seen = new Set<number>();
    for (const v of ends) {
      const r = this.leaf[v]!;
      if (r < 0 || seen.has(r)) continue;
      seen.add(r);
      this.load[r]! += w;
    }
  }

  /** Σ overflow × weight + Σ load. */
  cost(): number {
    let c = 0;
    for (let r = 0; r < this.leaves; r++) {
      c += this.load[r]! + OVERFLOW_WEIGHT * Math.max(0, this.load[r]! - this.budget[r]!);
    }
    return c;
  }

  /** Leaves whose trunks the model overfills. */
  overflowing(): number {
    let n = 0;
    for (let r = 0; r < this.leaves; r++) if (this.load[r]! > this.budget[r]! + 1e-6) n++;
    return n;
  }

  /** Load change per leaf if v moved to `to` (into scratch/touched); returns the cost change. */
  private delta(v: number, to: number): number {
    const from = this.leaf[v]!;
    const sc = this.scratch;
    const touched = this.touched;
    touched.length = 0;
    for (const k of this.nodeLinks[v]!) {
      const ends = this.ends[k]!;
      const w = this.weight[k]!;
      if (ends.length === 2) {
        const u = ends[0] === v ? ends[1]! : ends[0]!;
        const lu = this.leaf[u]!;
        if (lu !== from) {
          this.bump(from, -w);
          this.bump(lu, -w);
        }
        if (lu !== to) {
          this.bump(to, w);
          this.bump(lu, w);
        }
        continue;
      }
      // Multipoint: leaves touched before and after, by the other ends.
      const others = new Map<number, number>();
      for (const u of ends) if (u !== v) others.set(this.leaf[u]!, (others.get(this.leaf[u]!) ?? 0) + 1);
      const before = new Set(others.keys()).add(from);
      const after = new Set(others.keys()).add(to);
      if (before.size > 1) for (const r of before) this.bump(r, -w);
      if (after.size > 1) for (const r of after) this.bump(r, w);
    }
    let dc = 0;
    for (const r of touched) {
      const l0 = this.load[r]!;
      const l1 = l0 + sc[r]!;
      dc += sc[r]! + OVERFLOW_WEIGHT * (Math.max(0, l1 - this.budget[r]!) - Math.max(0, l0 - this.budget[r]!));
    }
    return dc;
  }

  /** Add w to a leaf's load change (scratch), noting it touched. */
  private bump(r: number, w: number): void {
    if (r < 0) return;
    if (this.scratch[r] === 0 && !this.touched.includes(r)) this.touched.push(r);
    this.scratch[r]! += w;
  }

  private commit(v: number, to: number): void {
    for (const r of this.touched) {
      this.load[r]! += this.scratch[r]!;
      this.scratch[r] = 0;
    }
    this.touched.length = 0;
    this.seat(v, to);
  }

  private clearScratch(): void {
    for (const r of this.touched) this.scratch[r] = 0;
    this.touched.length = 0;
  }

  /**
   * Refinement passes in the manner of Fiduccia–Mattheyses: each node, in a
   * seeded order, moves at most once per pass to the leaf (of a neighbour, or
   * the one with the most spare budget) that lowers the cost most. When a
   * pass finds no such move, a climbing pass lets every node under an
   * overfilled leaf take its best move even when that raises the cost (out
   * of a local minimum), and is then undone back to its best point. Stops
   * when a climbing pass gains nothing. Returns the moves kept.
   */
  refine(seed: number): number {
    const rand = random(seed);
    const order = Int32Array.from({ length: this.nodes }, (_, i) => i);
    let moves = 0;
    const log: { v: number; from: number }[] = [];
    // Descent passes (improving moves only) until one moves nothing; then one climbing pass.
    let climb = false;
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        const t = order[i]!;
        order[i] = order[j]!;
        order[j] = t;
      }
      let spare = 0;
      for (let r = 1; r < this.leaves; r++) {
        if (this.budget[r]! - this.load[r]! > this.budget[spare]! - this.load[spare]!) spare = r;
      }
      log.length = 0;
      let gain = 0;
      let bestGain = 0;
      let bestAt = 0;
      for (const v of order) {
        const from = this.leaf[v]!;
        if (from < 0 || !this.nodeLinks[v]!.length) continue;
        const over = climb && this.load[from]! > this.budget[from]! + 1e-6;
        // Targets: the leaves of its neighbours, and the leaf with the most spare budget when its own is overfull.
        const targets = this.targets;
        targets.length = 0;
        for (const k of this.nodeLinks[v]!) {
          for (const u of this.ends[k]!) {
            const r = this.leaf[u]!;
            if (r >= 0 && r !== from && !targets.includes(r)) targets.push(r);
          }
        }
        if (over && spare !== from && !targets.includes(spare)) targets.push(spare);
        let best = -1;
        let bestDelta = over ? Number.POSITIVE_INFINITY : -1e-6;
        for (const to of targets) {
          if (!this.canTake(v, to)) continue;
          const dc = this.delta(v, to);
          this.clearScratch();
          if (dc < bestDelta) {
            bestDelta = dc;
            best = to;
          }
        }
        if (best < 0) continue;
        this.delta(v, best);
        this.commit(v, best);
        log.push({ v, from });
        gain -= bestDelta;
        if (gain > bestGain + 1e-6) {
          bestGain = gain;
          bestAt = log.length;
        }
      }
      // Undo the moves after the pass's best point.
      for (let i = log.length - 1; i >= bestAt; i--) {
        const { v, from } = log[i]!;
        if (!this.canTake(v, from)) break;
        this.delta(v, from);
        this.commit(v, from);
      }
      moves += bestAt;
      if (bestAt > 0) climb = false;
      else if (climb) break;
      else climb = true;
    }
    return moves;
  }

  /**
   * A k-way partition grown leaf by leaf: each leaf (in rank order) takes its
   * share of the experiment, in proportion to the units it offers, growing a
   * region from a seed by the node with the most links into it (greedy graph
   * growing). Returns a leaf per node (-1 where nothing fitted).
   */
  grow(): Int32Array {
    const n = this.nodes;
    const target = new Int32Array(n).fill(-1);
    const usable = this.usableKeys();
    const offers = Array.from({ length: this.leaves }, (_, r) => this.offer(r, usable));
    const total = offers.reduce((s, o) => s + o, 0);
    if (total <= 0) return target;
    let all = 0;
    for (const w of this.nodeWeight) all += w;
    const neighbours: number[][] = Array.from({ length: n }, () => []);
    this.ends.forEach((e) => {
      for (let i = 1; i < e.length; i++) {
        neighbours[e[0]!]!.push(e[i]!);
        neighbours[e[i]!]!.push(e[0]!);
      }
    });
    const conn = new Int32Array(n);
    // Units left while growing (the model itself is set by assign() afterwards).
    const left = Float64Array.from(this.units);
    const room = (v: number, r: number): number => this.keyIn(v, r, left);
    let cursor = 0;
    for (let r = 0; r < this.leaves; r++) {
      if (offers[r]! <= 0) continue;
      const share = Math.min(offers[r]!, Math.ceil((all * offers[r]!) / total));
      const heap = new MaxHeap();
      let count = 0;
      while (count < share) {
        if (heap.size === 0) {
          while (cursor < n && target[cursor]! >= 0) cursor++;
          let s = cursor;
          while (s < n && (target[s]! >= 0 || room(s, r) < 0)) s++;
          if (s >= n) break;
          heap.push(0, s);
        }
        const v = heap.pop();
        if (target[v]! >= 0) continue;
        const j = room(v, r);
        if (j < 0) continue;
        this.take(left, r, this.nodeKeys[v]![j]!, this.nodeCost[v]![j]!, 1);
        target[v] = r;
        count += this.nodeWeight[v]!;
        for (const u of neighbours[v]!) {
          if (target[u]! >= 0) continue;
          conn[u]!++;
          heap.push(2 * conn[u]! - neighbours[u]!.length, u);
        }
      }
    }
    return target;
  }

  /** Tighten the budgets of the leaves a failed link touches by what it asked: the model was too hopeful there. */
  tighten(failed: readonly string[]): void {
    for (const name of failed) {
      const k = this.linkOf.get(name);
      if (k === undefined) continue;
      const seen = new Set<number>();
      for (const v of this.ends[k]!) {
        const r = this.leaf[v]!;
        if (r < 0 || seen.has(r)) continue;
        seen.add(r);
        this.budget[r] = Math.max(0, this.budget[r]! - this.weight[k]!);
      }
    }
  }
}

/**
 * Multilevel partitioning (in the spirit of METIS): coarsen by heavy-edge
 * matching until the graph is a few nodes per leaf, grow a partition on the
 * coarsest graph and refine it, then project it level by level to the
 * experiment, refining at each level.
 */
export function partition(supply: LeafSupply, g: LeafGraph, seed: number): LeafModel {
  const levels: { graph: LeafGraph; map: Int32Array }[] = [];
  let cur = g;
  let all = 0;
  for (const w of g.nodeWeight) all += w;
  const maxWeight = Math.max(1, Math.floor(all / (supply.leaves * 4)));
  const small = Math.max(8 * supply.leaves, 32);
  while (cur.nodeWeight.length > small && levels.length < 24) {
    const next = coarsen(cur, seed + levels.length, maxWeight);
    if (next.graph.nodeWeight.length > 0.9 * cur.nodeWeight.length) break;
    levels.push(next);
    cur = next.graph;
  }
  let model = new LeafModel(supply, cur);
  model.assign(model.grow());
  model.refine(seed);
  for (let i = levels.length - 1; i >= 0; i--) {
    const { map } = levels[i]!;
    const finer = i > 0 ? levels[i - 1]!.graph : g;
    const coarse = model;
    model = new LeafModel(supply, finer);
    model.assign(Int32Array.from(map, (c) => coarse.leaf[c]!));
    model.refine(seed + i + 1);
  }
  return model;
}

/** A binary max-heap of (priority, value) with stale entries skipped by the caller. */
class MaxHeap {
  private readonly pri: number[] = [];
  private readonly val: number[] = [];
  get size(): number {
    return this.pri.length;
  }
  push(p: number, v: number): void {
    const { pri, val } = this;
    let i = pri.length;
    pri.push(p);
    val.push(v);
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (pri[up]! >= p) break;
      pri[i] = pri[up]!;
      val[i] = val[up]!;
      i = up;
    }
    pri[i] = p;
    val[i] = v;
  }
  pop(): number {
    const { pri, val } = this;
    const top = val[0]!;
    const p = pri.pop()!;
    const v = val.pop()!;
    const n = pri.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && pri[c + 1]! > pri[c]!) c++;
      if (pri[c]! <= p) break;
      pri[i] = pri[c]!;
      val[i] = val[c]!;
      i = c;
    }
    pri[i] = p;
    val[i] = v;
    return top;
  }
}
