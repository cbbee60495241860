/**
 * The experiment's structure as compact arrays: nodes and links numbered, each
 * link's endpoints resolved to (node, socket), and a CSR adjacency from nodes to
 * their links. Built once per compile and shared by analysis and reticulation.
 */
import type { Experiment } from "@merge/xir";

export interface Topology {
  nodeIndex: Map<string, number>;
  /** For link l, its endpoints are ends[linkStart[l] .. linkStart[l+1]). */
  linkStart: Int32Array;
  endNode: Int32Array;
  endSocket: Int32Array;
  /** For node n, its links are nodeLinks[nodeStart[n] .. nodeStart[n+1]) (only resolved endpoints). */
  nodeStart: Int32Array;
  nodeLinks: Int32Array;
  /** Node n's sockets are socketLink[socketBase[n] + s]: the link each is bound to, -1 when unbound. */
  socketBase: Int32Array;
  socketLink: Int32Array;
}

/** Unresolvable endpoints get node -1; analysis reports them. */
export function topology(x: Experiment): Topology {
  const nodeIndex = new Map<string, number>();
  x.nodes.forEach((n, i) => {
    if (!nodeIndex.has(n.name)) nodeIndex.set(n.name, i);
  });
  const L = x.links.length;
  const linkStart = new Int32Array(L + 1);
  let total = 0;
  for (let l = 0; l < L; l++) {
    linkStart[l] = total;
    total += (x.links[l] as Experiment["links"][number]).endpoints.length;
  }
  linkStart[L] = total;
  const endNode = new Int32Array(total);
  const endSocket = new Int32Array(total);
  // Flat arrays: one typed array per node costs more than the work itself at 10k nodes.
  const socketBase = new Int32Array(x.nodes.length + 1);
  x.nodes.forEach((n, i) => {
    socketBase[i + 1] = (socketBase[i] as number) + n.sockets.length;
  });
  const socketLink = new Int32Array(socketBase[x.nodes.length] as number).fill(-1);
  const degree = new Int32Array(x.nodes.length + 1);
  let e = 0;
  for (let l = 0; l < L; l++) {
    for (const ep of (x.links[l] as Experiment["links"][number]).endpoints) {
      const n = nodeIndex.get(ep.node);
      const count = n === undefined ? 0 : (socketBase[n + 1] as number) - (socketBase[n] as number);
      if (n === undefined || ep.socket >= count) {
        endNode[e] = -1;
        endSocket[e] = ep.socket;
      } else {
        endNode[e] = n;
        endSocket[e] = ep.socket;
        const at = (socketBase[n] as number) + ep.socket;
        if (socketLink[at] === -1) socketLink[at] = l;
        degree[n] = (degree[n] as number) + 1;
      }
      e++;
    }
  }
  const nodeStart = new Int32Array(x.nodes.length + 1);
  for (let n = 0; n < x.nodes.length; n++) nodeStart[n + 1] = (nodeStart[n] as number) + (degree[n] as number);
  const fill = nodeStart.slice(0, x.nodes.length);
  const nodeLinks = new Int32Array(nodeStart[x.nodes.length] as number);
  for (let l = 0; l < L; l++) {
    for (let k = linkStart[l] as number; k < (linkStart[l + 1] as number); k++) {
      const n = endNode[k] as number;
      if (n < 0) continue;
      nodeLinks[fill[n] as number] = l;
      fill[n] = (fill[n] as number) + 1;
    }
  }
  return { nodeIndex, linkStart, endNode, endSocket, nodeStart, nodeLinks, socketBase, socketLink };
}

/**
 * Breadth-first from node `from` over nodes (links join their endpoints): through links not yet in
 * `seenLink` (marking them) to nodes whose `mark` is still -1; `reach(m, n)` is called for each node m
 * reached, from n, and must set `mark[m]`. `queue` has room for every node. Returns the last node reached.
 */
export function breadthFirst(
  t: Topology,
  from: number,
  queue: Int32Array,
  seenLink: Uint8Array,
  mark: Int32Array,
  reach: (m: number, n: number) => void,
): number {
  let head = 0;
  let tail = 0;
  queue[tail++] = from;
  let last = from;
  while (head < tail) {
    const n = queue[head++] as number;
    last = n;
    for (let i = t.nodeStart[n] as number; i < (t.nodeStart[n + 1] as number); i++) {
      const l = t.nodeLinks[i] as number;
      if (seenLink[l]) continue;
      seenLink[l] = 1;
      for (let k = t.linkStart[l] as number; k < (t.linkStart[l + 1] as number); k++) {
        const m = t.endNode[k] as number;
        if (m >= 0 && mark[m] === -1) {
          reach(m, n);
          queue[tail++] = m;
        }
      }
    }
  }
  return last;
}

/**
 * Connected components over nodes (links join their endpoints). Returns each
 * node's component id and the number of components.
 */
export function components(t: Topology, nodeCount: number): { of: Int32Array; count: number } {
  const of = new Int32Array(nodeCount).fill(-1);
  const queue = new Int32Array(nodeCount);
  const seenLink = new Uint8Array(t.linkStart.length - 1);
  let count = 0;
  for (let s = 0; s < nodeCount; s++) {
    if (of[s] !== -1) continue;
    of[s] = count;
    breadthFirst(t, s, queue, seenLink, of, (m) => {
      of[m] = count;
    });
    count++;
  }
  return { of, count };
}
