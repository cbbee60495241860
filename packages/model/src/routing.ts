/**
 * Static routing reticulator: routes so every node reaches every address of
 * every other node, emitted per node as destination / gateway / socket.
 *
 * Design (sized for 10,000 nodes and more): routes follow the spanning tree
 * (spanning.ts), and go to destination *prefixes*, not addresses.
 *   - Toward its subtree, a node has one route per child-of-child subtree,
 *     covering that subtree's subnets. Addressing hands out subnets in
 *     depth-first order of the same tree, so a subtree's subnets are contiguous
 *     and its cover is one or a few CIDR prefixes.
 *   - Toward the rest of the experiment, a node has "summary" routes via its
 *     parent: the few prefixes covering all experiment subnets, minus those
 *     already reached through a child or directly connected. Longest-prefix
 *     match makes the child routes win for their subtrees.
 *   - On a multipoint LAN, a node routes its LAN siblings' subtrees straight to
 *     the sibling (one hop over the LAN) rather than via the LAN's parent.
 * A leaf therefore has only the summary routes. Every path is a tree path
 * (with the LAN shortcut), so there are no loops; in a tree-shaped experiment
 * (lines, stars, LANs of LANs) these are the shortest paths. In an experiment
 * with cycles, links that are not in the tree carry traffic only between their
 * own endpoints, so some paths are longer than the shortest.
 */
import type { Experiment, Route } from "@merge/xir";
import { cover, formatCidr, formatIPv4, network, parseCidr, size } from "@merge/xir/ipv4";
import type { SpanningTree } from "./spanning.ts";
import type { Topology } from "./topology.ts";

interface Block {
  addr: number;
  prefix: number;
}

export interface RoutingSummary {
  routes: number;
  /** `tree` (routes along the spanning tree) or `shortest-path` (small experiments with cycles). */
  mode: "tree" | "shortest-path";
  /** Prefixes covering every experiment subnet. */
  summary: string[];
}

export function computeRoutes(x: Experiment, t: Topology, tree: SpanningTree): RoutingSummary {
  const N = x.nodes.length;
  const L = x.links.length;

  // Each endpoint's first address and each link's subnet.
  const endAddr = new Float64Array(t.endNode.length).fill(-1);
  const linkNet = new Float64Array(L).fill(-1);
  const linkPrefix = new Int8Array(L);
  for (let l = 0; l < L; l++) {
    for (let k = t.linkStart[l] as number; k < (t.linkStart[l + 1] as number); k++) {
      const n = t.endNode[k] as number;
      const a = n < 0 ? undefined : x.nodes[n]?.sockets[t.endSocket[k] as number]?.addrs[0];
      const c = a === undefined ? undefined : parseCidr(a);
      if (!c) continue;
      endAddr[k] = c.addr;
      if (linkNet[l] === -1) {
        linkNet[l] = network(c.addr, c.prefix);
        linkPrefix[l] = c.prefix;
      }
    }
  }

  // Subnets in address order; a "break" before rank r when the gap before it is
  // larger than alignment explains, so covers never swallow foreign space.
  const ranked: number[] = [];
  for (let l = 0; l < L; l++) if (linkNet[l] !== -1) ranked.push(l);
  ranked.sort((a, b) => (linkNet[a] as number) - (linkNet[b] as number));
  const S = ranked.length;
  const rank = new Int32Array(L).fill(-1);
  const first = new Float64Array(S);
  const last = new Float64Array(S);
  ranked.forEach((l, r) => {
    rank[l] = r;
    first[r] = linkNet[l] as number;
    last[r] = (linkNet[l] as number) + size(linkPrefix[l] as number) - 1;
  });
  // nextBreak[r]: the first rank > r that starts a new piece (S when none).
  const nextBreak = new Int32Array(S + 1).fill(S);
  for (let r = S - 1; r >= 0; r--) {
    const starts =
      r + 1 < S &&
      (first[r + 1] as number) - (last[r] as number) - 1 >= size(linkPrefix[ranked[r + 1] as number] as number);
    nextBreak[r] = starts ? r + 1 : (nextBreak[r + 1] as number);
  }
  const blocksOf = (runs: readonly number[]): Block[] => {
    const out: Block[] = [];
    for (let i = 0; i < runs.length; i += 2) {
      let a = runs[i] as number;
      const b = runs[i + 1] as number;
      while (a <= b) {
        const end = Math.min(b, (nextBreak[a] as number) - 1);
        for (const blk of cover(first[a] as number, last[end] as number)) out.push(blk);
        a = end + 1;
      }
    }
    return out;
  };

  const summaryBlocks = S > 0 ? blocksOf([0, S - 1]) : [];
  const summaryDest = summaryBlocks.map((b) => formatCidr(b.addr, b.prefix));
  const endpoints = t.endNode.length;
  if (endpoints !== N + L - 1 && N * (N + L) <= SHORTEST_PATH_BUDGET) {
    const routes = shortestPathRoutes(x, t, {
      rank,
      subnets: S,
      blocksOf,
      summaryBlocks,
      endAddr,
      linkNet,
      linkPrefix,
    });
    return { routes, summary: summaryBlocks.map((b) => formatCidr(b.addr, b.prefix)), mode: "shortest-path" };
  }

  // Subtree runs (pairs of ranks), children before parents.
  const runs: (number[] | undefined)[] = new Array(N + L);
  for (let i = tree.order.length - 1; i >= 0; i--) {
    const v = tree.order[i] as number;
    const parts: number[] = [];
    if (v >= N && rank[v - N] !== -1) parts.push(rank[v - N] as number, rank[v - N] as number);
    for (let c = tree.childStart[v] as number; c < (tree.childStart[v + 1] as number); c++) {
      const r = runs[tree.children[c] as number];
      if (r) for (const x of r) parts.push(x);
    }
    runs[v] = merge(parts);
  }

  // Which endpoint of its parent link each node is, and of each link its parent node.
  const nodeEnd = new Int32Array(N).fill(-1);
  const parentEnd = new Int32Array(L).fill(-1);
  for (let l = 0; l < L; l++) {
    for (let k = t.linkStart[l] as number; k < (t.linkStart[l + 1] as number); k++) {
      const n = t.endNode[k] as number;
      if (n < 0) continue;
      if (tree.nodeParent[n] === l && nodeEnd[n] === -1) nodeEnd[n] = k;
      if (tree.linkParent[l] === n && parentEnd[l] === -1) parentEnd[l] = k;
    }
  }

  let total = 0;
  for (let u = 0; u < N; u++) {
    const routes: Route[] = [];
    const childBlocks: Block[] = [];
    const connected: Block[] = [];
    for (let c = tree.childStart[u] as number; c < (tree.childStart[u + 1] as number); c++) {
      const l = (tree.children[c] as number) - N;
      const myEnd = parentEnd[l] as number;
      const socket = t.endSocket[myEnd] as number;
      for (let g = tree.childStart[N + l] as number; g < (tree.childStart[N + l + 1] as number); g++) {
        const w = tree.children[g] as number;
        const gw = endAddr[nodeEnd[w] as number] as number;
        const rw = runs[w];
        if (!rw || rw.length === 0 || gw < 0) continue;
        const gateway = formatIPv4(gw);
        for (const b of blocksOf(rw)) {
          childBlocks.push(b);
          routes.push({ dest: formatCidr(b.addr, b.prefix), gateway, socket });
        }
      }
    }
    for (let i = t.nodeStart[u] as number; i < (t.nodeStart[u + 1] as number); i++) {
      const l = t.nodeLinks[i] as number;
      if (linkNet[l] !== -1) connected.push({ addr: linkNet[l] as number, prefix: linkPrefix[l] as number });
    }
    const p = tree.nodeParent[u] as number;
    if (p >= 0) {
      const gw = endAddr[parentEnd[p] as number] as number;
      const socket = t.endSocket[nodeEnd[u] as number] as number;
      // On a LAN, a sibling's subtree is one hop away: go straight to the
      // sibling rather than through the LAN's parent.
      for (let g = tree.childStart[N + p] as number; g < (tree.childStart[N + p + 1] as number); g++) {
        const w = tree.children[g] as number;
        const rw = runs[w];
        const wgw = endAddr[nodeEnd[w] as number] as number;
        if (w === u || !rw || rw.length === 0 || wgw < 0) continue;
        const gateway = formatIPv4(wgw);
        for (const b of blocksOf(rw)) {
          childBlocks.push(b);
          routes.push({ dest: formatCidr(b.addr, b.prefix), gateway, socket });
        }
      }
      if (gw >= 0) {
        const gateway = formatIPv4(gw);
        summaryBlocks.forEach((b, i) => {
          if (childBlocks.some((c) => within(b, c)) || connected.some((c) => within(b, c))) return;
          routes.push({ dest: summaryDest[i] as string, gateway, socket });
        });
      }
    }
    const node = x.nodes[u];
    if (node && routes.length) {
      node.routes = node.routes ? [...node.routes, ...routes] : routes;
      total += routes.length;
    }
  }
  return { routes: total, summary: summaryDest, mode: "tree" };
}

/**
 * Experiments with cycles and at most this many node x (node + link) steps get
 * true shortest paths (one BFS per node); larger ones route along the tree.
 */
const SHORTEST_PATH_BUDGET = 10_000_000;

interface Shared {
  rank: Int32Array;
  subnets: number;
  blocksOf: (runs: readonly number[]) => Block[];
  summaryBlocks: Block[];
  endAddr: Float64Array;
  linkNet: Float64Array;
  linkPrefix: Int8Array;
}

/**
 * Shortest-path routing for experiments with cycles: a BFS from every node
 * finds, for every destination subnet, the first hop of a shortest path (ties
 * broken by BFS order, so deterministically). The most common first hop gets
 * the summary routes; subnets with other first hops get specific routes,
 * aggregated over address-contiguous subnets with the same first hop. Each hop
 * moves strictly closer to the destination, so there are no loops.
 */
function shortestPathRoutes(x: Experiment, t: Topology, sh: Shared): number {
  const N = x.nodes.length;
  const L = x.links.length;
  const hopOfNode = new Int32Array(N);
  const hopOfLink = new Int32Array(L);
  const stampNode = new Int32Array(N).fill(-1);
  const stampLink = new Int32Array(L).fill(-1);
  const mySocket = new Int32Array(L);
  const queue = new Int32Array(N);
  const S = sh.subnets;
  const hopOfRank = new Int32Array(S);
  let total = 0;
  for (let u = 0; u < N; u++) {
    // BFS from u; a hop is the endpoint index of the first neighbour on the path.
    let head = 0;
    let tail = 0;
    stampNode[u] = u;
    const connected: Block[] = [];
    for (let i = t.nodeStart[u] as number; i < (t.nodeStart[u + 1] as number); i++) {
      const l = t.nodeLinks[i] as number;
      if (stampLink[l] === u) continue;
      stampLink[l] = u;
      hopOfLink[l] = -1;
      if (sh.linkNet[l] !== -1) connected.push({ addr: sh.linkNet[l] as number, prefix: sh.linkPrefix[l] as number });
      for (let k = t.linkStart[l] as number; k < (t.linkStart[l + 1] as number); k++) {
        const m = t.endNode[k] as number;
        if (m === u) mySocket[l] = t.endSocket[k] as number;
        if (m < 0 || stampNode[m] === u) continue;
        stampNode[m] = u;
        hopOfNode[m] = k;
        queue[tail++] = m;
      }
    }
    while (head < tail) {
      const n = queue[head++] as number;
      const hop = hopOfNode[n] as number;
      for (let i = t.nodeStart[n] as number; i < (t.nodeStart[n + 1] as number); i++) {
        const l = t.nodeLinks[i] as number;
        if (stampLink[l] === u) continue;
        stampLink[l] = u;
        hopOfLink[l] = hop;
        for (let k = t.linkStart[l] as number; k < (t.linkStart[l + 1] as number); k++) {
          const m = t.endNode[k] as number;
          if (m < 0 || stampNode[m] === u) continue;
          stampNode[m] = u;
          hopOfNode[m] = hop;
          queue[tail++] = m;
        }
      }
    }
    // First hop per destination subnet, and the most common one.
    hopOfRank.fill(-1);
    const count = new Map<number, number>();
    for (let l = 0; l < L; l++) {
      const r = sh.rank[l] as number;
      if (r < 0 || stampLink[l] !== u || (hopOfLink[l] as number) < 0) continue;
      hopOfRank[r] = hopOfLink[l] as number;
      count.set(hopOfLink[l] as number, (count.get(hopOfLink[l] as number) ?? 0) + 1);
    }
    let major = -1;
    let most = 0;
    for (const [hop, c] of count) {
      if (c > most) {
        major = hop;
        most = c;
      }
    }
    const routes: Route[] = [];
    const specific: Block[] = [];
    const byHop = new Map<number, number[]>();
    for (let r = 0; r < S; r++) {
      const hop = hopOfRank[r] as number;
      if (hop < 0 || hop === major) continue;
      const runs = byHop.get(hop);
      if (!runs) byHop.set(hop, [r, r]);
      else if (runs[runs.length - 1] === r - 1) runs[runs.length - 1] = r;
      else runs.push(r, r);
    }
    const route = (b: Block, hop: number) => {
      const link = linkOfEndpoint(t, hop);
      routes.push({
        dest: formatCidr(b.addr, b.prefix),
        gateway: formatIPv4(sh.endAddr[hop] as number),
        socket: mySocket[link] as number,
      });
    };
    for (const [hop, runs] of byHop) {
      for (const b of sh.blocksOf(runs)) {
        specific.push(b);
        route(b, hop);
      }
    }
    if (major >= 0) {
      for (const b of sh.summaryBlocks) {
        if (specific.some((c) => within(b, c)) || connected.some((c) => within(b, c))) continue;
        route(b, major);
      }
    }
    const node = x.nodes[u];
    if (node && routes.length) {
      node.routes = node.routes ? [...node.routes, ...routes] : routes;
      total += routes.length;
    }
  }
  return total;
}

/** The link an endpoint index belongs to (binary search over linkStart). */
function linkOfEndpoint(t: Topology, k: number): number {
  let lo = 0;
  let hi = t.linkStart.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((t.linkStart[mid] as number) <= k) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Sorted, merged rank runs from unsorted pairs. */
function merge(pairs: number[]): number[] {
  if (pairs.length <= 2) return pairs;
  let sorted = true;
  for (let i = 2; i < pairs.length && sorted; i += 2) sorted = (pairs[i] as number) >= (pairs[i - 2] as number);
  if (sorted) {
    // The common case with depth-first addressing: already in order, often one run.
    const out: number[] = [pairs[0] as number, pairs[1] as number];
    for (let i = 2; i < pairs.length; i += 2) {
      const lo = pairs[i] as number;
      const hi = pairs[i + 1] as number;
      const n = out.length;
      if (lo <= (out[n - 1] as number) + 1) out[n - 1] = Math.max(out[n - 1] as number, hi);
      else out.push(lo, hi);
    }
    return out;
  }
  const idx: number[] = [];
  for (let i = 0; i < pairs.length; i += 2) idx.push(i);
  idx.sort((a, b) => (pairs[a] as number) - (pairs[b] as number));
  const out: number[] = [];
  for (const i of idx) {
    const lo = pairs[i] as number;
    const hi = pairs[i + 1] as number;
    const n = out.length;
    if (n && lo <= (out[n - 1] as number) + 1) out[n - 1] = Math.max(out[n - 1] as number, hi);
    else out.push(lo, hi);
  }
  return out;
}

function within(inner: Block, outer: Block): boolean {
  return inner.addr >= outer.addr && inner.addr + size(inner.prefix) <= outer.addr + size(outer.prefix);
}
