/**
 * A breadth-first spanning tree of the experiment, over the bipartite graph of
 * nodes and links (a multipoint link is one vertex joining all its endpoints).
 * Rooted at a central node (the middle of a longest shortest path found by
 * a double BFS sweep) so tree paths stay short. Addressing allocates subnets
 * in depth-first order of this tree, so every subtree's subnets are
 * contiguous and routing can aggregate them into few prefixes.
 */
import { breadthFirst, type Topology } from "./topology.ts";

export interface SpanningTree {
  root: number;
  /** For node n: the link it hangs from (-1 for the root or an unreached node). */
  nodeParent: Int32Array;
  /** For link l: the node it hangs from (-1 when unreached). */
  linkParent: Int32Array;
  /** Tree vertices in BFS order: v < N is node v, v >= N is link v - N. */
  order: Int32Array;
  /** Links in depth-first preorder. */
  linkPreorder: Int32Array;
  /** Children in CSR form over vertices (nodes then links). */
  childStart: Int32Array;
  children: Int32Array;
}

export function spanningTree(t: Topology, nodeCount: number): SpanningTree {
  const N = nodeCount;
  const L = t.linkStart.length - 1;
  let root = 0;
  if (N > 0) {
    const a = bfs(t, N, 0).last;
    const fromA = bfs(t, N, a);
    // Walk back half way from the far end b towards a.
    let v = fromA.last;
    const hops = fromA.depth[v] as number;
    for (let i = 0; i < Math.floor(hops / 2); i++) v = fromA.parentNode[v] as number;
    root = v;
  }
  const nodeParent = new Int32Array(N).fill(-1);
  const linkParent = new Int32Array(L).fill(-1);
  const order = new Int32Array(N + L);
  const seenNode = new Uint8Array(N);
  const seenLink = new Uint8Array(L);
  let head = 0;
  let tail = 0;
  if (N > 0) {
    order[tail++] = root;
    seenNode[root] = 1;
  }
  while (head < tail) {
    const v = order[head++] as number;
    if (v < N) {
      for (let i = t.nodeStart[v] as number; i < (t.nodeStart[v + 1] as number); i++) {
        const l = t.nodeLinks[i] as number;
        if (seenLink[l]) continue;
        seenLink[l] = 1;
        linkParent[l] = v;
        order[tail++] = N + l;
      }
    } else {
      const l = v - N;
      for (let k = t.linkStart[l] as number; k < (t.linkStart[l + 1] as number); k++) {
        const m = t.endNode[k] as number;
        if (m < 0 || seenNode[m]) continue;
        seenNode[m] = 1;
        nodeParent[m] = l;
        order[tail++] = m;
      }
    }
  }
  const reached = order.subarray(0, tail);
  // Children CSR, siblings in BFS order.
  const count = new Int32Array(N + L + 1);
  const parentOf = (v: number): number =>
    v < N ? (nodeParent[v] === -1 ? -1 : N + (nodeParent[v] as number)) : (linkParent[v - N] as number);
  for (const v of reached) {
    const p = parentOf(v);
    if (p >= 0) count[p + 1] = (count[p + 1] as number) + 1;
  }
  const childStart = new Int32Array(N + L + 1);
  for (let v = 0; v < N + L; v++) childStart[v + 1] = (childStart[v] as number) + (count[v + 1] as number);
  const fill = childStart.slice(0, N + L);
  const children = new Int32Array(childStart[N + L] as number);
  for (const v of reached) {
    const p = parentOf(v);
    if (p >= 0) {
      children[fill[p] as number] = v;
      fill[p] = (fill[p] as number) + 1;
    }
  }
  // Depth-first preorder of links.
  const linkPreorder = new Int32Array(L);
  let nl = 0;
  const stack: number[] = N > 0 ? [root] : [];
  while (stack.length) {
    const v = stack.pop() as number;
    if (v >= N) linkPreorder[nl++] = v - N;
    for (let i = (childStart[v + 1] as number) - 1; i >= (childStart[v] as number); i--)
      stack.push(children[i] as number);
  }
  // Links no tree reaches (none in a connected experiment) keep their model order at the end.
  for (let l = 0; l < L; l++) if (!seenLink[l]) linkPreorder[nl++] = l;
  return { root, nodeParent, linkParent, order: reached, linkPreorder, childStart, children };
}

function bfs(t: Topology, N: number, from: number): { last: number; depth: Int32Array; parentNode: Int32Array } {
  const depth = new Int32Array(N).fill(-1);
  const parentNode = new Int32Array(N).fill(-1);
  depth[from] = 0;
  const last = breadthFirst(t, from, new Int32Array(N), new Uint8Array(t.linkStart.length - 1), depth, (m, n) => {
    depth[m] = (depth[n] as number) + 1;
    parentNode[m] = n;
  });
  return { last, depth, parentNode };
}
