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
import type { Demand } from "./context.ts";
import { KIND_GATEWAY, KIND_SWITCH } from "./internet.ts";
import type { Candidate } from "./placement.ts";
import type { Usage } from "./usage.ts";

/** Overflow counts this many times more than load: crossing trunks is fine, overfilling them is not. */
const OVERFLOW_WEIGHT = 16;
const MAX_PASSES = 24;

/** mulberry32: the search's only source of order, so a seed fixes the result. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The partition problem: leaves with budgets and units, nodes with the keys they can use, links with loads. */
export class LeafModel {
  readonly leaves: number;
  readonly budget: Float64Array;
  /** Units per leaf and candidate key (class × 2 + mode). */
  private readonly units: Float64Array;
  private readonly keys: number;
  /** Per node: candidate keys, VMs first (the engine's default). */
  private readonly nodeKeys: Int32Array[];
  /** Per node: links (indices) with a reservation. */
  readonly nodeLinks: number[][];
  /** Per link: distinct node indices, and what it reserves. */
  readonly ends: Int32Array[];
  readonly weight: Float64Array;
  /** Link name → index into `ends` (links with a reservation only). */
  private readonly linkOf = new Map<string, number>();

  /** Per node: its leaf (-1 none) and the key it holds a unit of. */
  readonly leaf: Int32Array;
  private readonly held: Int32Array;
  readonly load: Float64Array;
  private readonly scratch: Float64Array;
  private readonly touched: number[] = [];

  constructor(d: Demand, usage: Usage, candidates: readonly Candidate[][]) {
    const { ix, x } = d;
    this.leaves = ix.rankFabric.length;
    this.keys = ix.classes.length * 2;
    this.budget = new Float64Array(this.leaves);
    for (let r = 0; r < ix.resources.length; r++) {
      const rank = ix.leafRank[r]!;
      if (rank < 0) continue;
      for (let p = ix.resPortStart[r]!; p < ix.resPortStart[r + 1]!; p++) {
        const e = ix.portEdge[p]!;
        if (e < 0 || ix.edgeInterconnect[e]) continue;
        const kind = ix.resKind[ix.portRes[ix.portPeer[p]!]!];
        if (kind === KIND_SWITCH || kind === KIND_GATEWAY) this.budget[rank]! += Math.max(0, usage.edgeFree(e));
      }
    }
    this.units = new Float64Array(this.leaves * this.keys);
    const d0 = d.vmDefaults;
    for (const cls of ix.classes) {
      for (let i = 0; i < cls.members.length; i++) {
        const r = cls.members[i]!;
        const rank = cls.memberRank[i]!;
        if (rank < 0 || rank >= this.leaves) continue;
        if (cls.alloc.includes("physical") && usage.physicallyFree(r)) this.units[rank * this.keys + cls.id * 2]!++;
        if (cls.alloc.includes("virtual") && usage.physical[r] === 0) {
          const slots = Math.min(
            Math.floor(usage.remaining[r * 3]! / Math.max(d0.cores, 1e-9)),
            Math.floor(usage.remaining[r * 3 + 1]! / Math.max(d0.memory, 1)),
            Math.floor(usage.remaining[r * 3 + 2]! / Math.max(d0.disk, 1)),
          );
          if (slots > 0) this.units[rank * this.keys + cls.id * 2 + 1]! += slots;
        }
      }
    }
    this.nodeKeys = candidates.map((cs) =>
      Int32Array.from(
        [...cs]
          .sort((a, b) => (a.mode === b.mode ? 0 : a.mode === "virtual" ? -1 : 1))
          .map((c) => c.cls.id * 2 + (c.mode === "physical" ? 0 : 1)),
      ),
    );
    const index = new Map(x.nodes.map((n, i) => [n.name, i]));
    this.nodeLinks = x.nodes.map(() => []);
    this.ends = [];
    const weights: number[] = [];
    for (const l of x.links) {
      const w = d.linkNeed.get(l.name)?.demand ?? 0;
      if (w <= 0) continue;
      const ends = Int32Array.from(new Set(l.endpoints.map((e) => index.get(e.node)!)));
      if (ends.length < 2) continue;
      const k = this.ends.length;
      this.linkOf.set(l.name, k);
      this.ends.push(ends);
      weights.push(w);
      for (const v of ends) this.nodeLinks[v]!.push(k);
    }
    this.weight = Float64Array.from(weights);
    this.leaf = new Int32Array(x.nodes.length).fill(-1);
    this.held = new Int32Array(x.nodes.length).fill(-1);
    this.load = new Float64Array(this.leaves);
    this.scratch = new Float64Array(this.leaves);
  }

  get nodes(): number {
    return this.leaf.length;
  }

  /** The key a node would take a unit of in a leaf, -1 when the leaf has none left for it. */
  private keyIn(v: number, rank: number): number {
    for (const k of this.nodeKeys[v]!) if (this.units[rank * this.keys + k]! >= 1) return k;
    return -1;
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
    if (from >= 0) this.units[from * this.keys + this.held[v]!]!++;
    this.leaf[v] = rank;
    this.held[v] = -1;
    if (rank < 0) return;
    const k = this.keyIn(v, rank);
    if (k >= 0) {
      this.units[rank * this.keys + k]!--;
      this.held[v] = k;
    } else {
      this.leaf[v] = -1;
    }
  }

  /** Start from an assignment (leaf rank per node, -1 none); loads recomputed. */
  assign(target: Int32Array): void {
    for (let v = 0; v < this.nodes; v++) this.seat(v, -1);
    for (let v = 0; v < this.nodes; v++) if (target[v]! >= 0) this.seat(v, target[v]!);
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
    const bump = (r: number, w: number) => {
      if (r < 0) return;
      if (sc[r] === 0) touched.push(r);
      sc[r]! += w;
    };
    for (const k of this.nodeLinks[v]!) {
      const ends = this.ends[k]!;
      const w = this.weight[k]!;
      if (ends.length === 2) {
        const u = ends[0] === v ? ends[1]! : ends[0]!;
        const lu = this.leaf[u]!;
        if (lu !== from) {
          bump(from, -w);
          bump(lu, -w);
        }
        if (lu !== to) {
          bump(to, w);
          bump(lu, w);
        }
        continue;
      }
      // Multipoint: leaves touched before and after, by the other ends.
      const others = new Map<number, number>();
      for (const u of ends) if (u !== v) others.set(this.leaf[u]!, (others.get(this.leaf[u]!) ?? 0) + 1);
      const before = new Set(others.keys()).add(from);
      const after = new Set(others.keys()).add(to);
      if (before.size > 1) for (const r of before) bump(r, -w);
      if (after.size > 1) for (const r of after) bump(r, w);
    }
    let dc = 0;
    for (const r of touched) {
      const l0 = this.load[r]!;
      const l1 = l0 + sc[r]!;
      dc += sc[r]! + OVERFLOW_WEIGHT * (Math.max(0, l1 - this.budget[r]!) - Math.max(0, l0 - this.budget[r]!));
    }
    return dc;
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
   * Refinement passes: each node, in a seeded order, moves to the leaf (of a
   * neighbour, or the one with the most spare budget) that lowers the cost
   * most. Stops when a pass moves nothing. Returns the moves made.
   */
  refine(seed: number): number {
    const rand = random(seed);
    const order = Int32Array.from({ length: this.nodes }, (_, i) => i);
    let moves = 0;
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
      let moved = 0;
      for (const v of order) {
        const from = this.leaf[v]!;
        if (from < 0 || !this.nodeLinks[v]!.length) continue;
        let best = -1;
        let bestDelta = -1e-6;
        const tried = new Set<number>([from]);
        const consider = (to: number) => {
          if (to < 0 || tried.has(to)) return;
          tried.add(to);
          if (!this.canTake(v, to)) return;
          const dc = this.delta(v, to);
          this.clearScratch();
          if (dc < bestDelta) {
            bestDelta = dc;
            best = to;
          }
        };
        for (const k of this.nodeLinks[v]!) for (const u of this.ends[k]!) consider(this.leaf[u]!);
        if (this.load[from]! > this.budget[from]!) consider(spare);
        if (best < 0) continue;
        this.delta(v, best);
        this.commit(v, best);
        moved++;
      }
      moves += moved;
      if (!moved) break;
    }
    return moves;
  }

  /**
   * A k-way partition grown leaf by leaf: each leaf (in rank order) takes its
   * share of the nodes, in proportion to the units it offers, growing a region
   * from a seed by the node with the most links into it (greedy graph growing).
   */
  grow(order: readonly number[], neighbours: readonly number[][]): Int32Array {
    const n = this.nodes;
    const target = new Int32Array(n).fill(-1);
    const usable = this.usableKeys();
    const offers = Array.from({ length: this.leaves }, (_, r) => this.offer(r, usable));
    const total = offers.reduce((s, o) => s + o, 0);
    if (total <= 0) return target;
    const conn = new Int32Array(n);
    let placed = 0;
    let cursor = 0;
    // Probe a leaf's units without taking them: the model is reset by assign() afterwards.
    const taken = new Float64Array(this.units.length);
    const fits = (v: number, r: number) => {
      for (const k of this.nodeKeys[v]!) {
        if (this.units[r * this.keys + k]! - taken[r * this.keys + k]! >= 1) {
          taken[r * this.keys + k]!++;
          return true;
        }
      }
      return false;
    };
    for (let r = 0; r < this.leaves && placed < n; r++) {
      if (offers[r]! <= 0) continue;
      const share = Math.min(offers[r]!, Math.ceil((n * offers[r]!) / total));
      const heap = new MaxHeap();
      let count = 0;
      while (count < share && placed < n) {
        if (heap.size === 0) {
          while (cursor < order.length && target[order[cursor]!]! >= 0) cursor++;
          if (cursor >= order.length) break;
          // The next unassigned node that fits here seeds a new region.
          let s = cursor;
          while (s < order.length && (target[order[s]!]! >= 0 || !this.canTakeProbe(order[s]!, r, taken))) s++;
          if (s >= order.length) break;
          heap.push(0, order[s]!);
        }
        const v = heap.pop();
        if (target[v]! >= 0) continue;
        if (!fits(v, r)) continue;
        target[v] = r;
        count++;
        placed++;
        for (const u of neighbours[v]!) {
          if (target[u]! >= 0) continue;
          conn[u]!++;
          heap.push(2 * conn[u]! - neighbours[u]!.length, u);
        }
      }
    }
    return target;
  }

  private canTakeProbe(v: number, r: number, taken: Float64Array): boolean {
    for (const k of this.nodeKeys[v]!) if (this.units[r * this.keys + k]! - taken[r * this.keys + k]! >= 1) return true;
    return false;
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
