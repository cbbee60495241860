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
 * A leaf therefore has only the summary routes; a node on a LAN routes its
 * LAN peers directly (connected subnet). Every path is a tree path, so there
 * are no loops; in a tree-shaped experiment (lines, stars, LANs of LANs) tree
 * paths are the shortest paths. In an experiment with cycles, links that are
 * not in the tree carry traffic only between their own endpoints.
 */
import type { Experiment, Route } from "@merge/xir";
import { cover, formatCidr, formatIPv4, network, parseCidr, size } from "./ipv4.ts";
import type { SpanningTree } from "./spanning.ts";
import type { Topology } from "./topology.ts";

interface Block {
  addr: number;
  prefix: number;
}

export interface RoutingSummary {
  routes: number;
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

  const summaryBlocks = S > 0 ? blocksOf([0, S - 1]) : [];
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
        for (const b of blocksOf(rw)) {
          childBlocks.push(b);
          routes.push({ dest: formatCidr(b.addr, b.prefix), gateway: formatIPv4(gw), socket });
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
      if (gw >= 0) {
        for (const b of summaryBlocks) {
          if (childBlocks.some((c) => within(b, c)) || connected.some((c) => within(b, c))) continue;
          routes.push({ dest: formatCidr(b.addr, b.prefix), gateway: formatIPv4(gw), socket });
        }
      }
    }
    const node = x.nodes[u];
    if (node && routes.length) {
      node.routes = node.routes ? [...node.routes, ...routes] : routes;
      total += routes.length;
    }
  }
  return { routes: total, summary: summaryBlocks.map((b) => formatCidr(b.addr, b.prefix)) };
}

/** Sorted, merged rank runs from unsorted pairs. */
function merge(pairs: number[]): number[] {
  if (pairs.length <= 2) return pairs;
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
