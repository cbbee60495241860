/**
 * An independent check of emitted routes: forward a packet hop by hop, the
 * way a Linux node would (connected subnets first, then the longest matching
 * route), and see whether it arrives. Used by tests and benchmarks to prove
 * every node reaches every address of every other node.
 */
import type { Experiment } from "@merge/xir";
import { network, parseCidr, parsePrefix, size } from "@merge/xir/ipv4";

interface Hop {
  net: number;
  prefix: number;
  gateway: number;
  link: number;
}

export interface Reachability {
  pairs: number;
  failures: { from: string; to: string; reason: string }[];
  maxHops: number;
  /** Sum of hops over all delivered pairs (compare with shortest distances). */
  totalHops: number;
}

/** Walks from every node (or only `sources`, by node index) to every address of every other node. */
export function checkReachability(
  x: Experiment,
  options: {
    sources?: readonly number[];
    /** Called for each delivered packet: source node index, destination address (as a number), hops. */
    delivered?: (from: number, addr: number, hops: number) => void;
  } = {},
): Reachability {
  const nodeIndex = new Map(x.nodes.map((n, i) => [n.name, i]));
  const socketLink = x.nodes.map((n) => new Array<number>(n.sockets.length).fill(-1));
  x.links.forEach((l, li) => {
    for (const e of l.endpoints) {
      const i = nodeIndex.get(e.node);
      if (i !== undefined) (socketLink[i] as number[])[e.socket] = li;
    }
  });
  const owner = new Map<number, { node: number; link: number }>();
  const connected: { net: number; prefix: number; link: number }[][] = x.nodes.map(() => []);
  const routes: Hop[][] = x.nodes.map(() => []);
  x.nodes.forEach((n, i) => {
    n.sockets.forEach((s, j) => {
      const link = (socketLink[i] as number[])[j] as number;
      for (const a of s.addrs) {
        const c = parseCidr(a);
        if (!c) continue;
        owner.set(c.addr, { node: i, link });
        connected[i]?.push({ net: network(c.addr, c.prefix), prefix: c.prefix, link });
      }
    });
    for (const r of n.routes ?? []) {
      const d = parsePrefix(r.dest);
      const g = parsePrefix(`${r.gateway}/32`);
      if (!d || !g) continue;
      routes[i]?.push({
        net: network(d.addr, d.prefix),
        prefix: d.prefix,
        gateway: g.addr,
        link: (socketLink[i] as number[])[r.socket] ?? -1,
      });
    }
    routes[i]?.sort((a, b) => b.prefix - a.prefix);
  });
  const inNet = (addr: number, net: number, prefix: number) => addr >= net && addr < net + size(prefix);

  const out: Reachability = { pairs: 0, failures: [], maxHops: 0, totalHops: 0 };
  const targets = [...owner.entries()];
  const sources = options.sources ?? x.nodes.map((_, i) => i);
  for (const src of sources) {
    for (const [addr, dst] of targets) {
      if (dst.node === src) continue;
      out.pairs++;
      let at = src;
      let hops = 0;
      let reason = "";
      while (at !== dst.node) {
        if (++hops > x.nodes.length + 1) {
          reason = "routing loop";
          break;
        }
        const direct = connected[at]?.find((c) => inNet(addr, c.net, c.prefix));
        if (direct) {
          if (direct.link !== dst.link)
            reason = `${x.nodes[at]?.name} has the subnet connected, but the owner is on another link`;
          else at = dst.node;
          break;
        }
        const r = routes[at]?.find((h) => inNet(addr, h.net, h.prefix));
        if (!r) {
          reason = `no route at ${x.nodes[at]?.name}`;
          break;
        }
        const next = owner.get(r.gateway);
        if (!next || next.link !== r.link) {
          reason = `gateway of ${x.nodes[at]?.name}'s route is not on the route's link`;
          break;
        }
        at = next.node;
      }
      if (at !== dst.node || reason) {
        out.failures.push({ from: x.nodes[src]?.name ?? "", to: `${x.nodes[dst.node]?.name}`, reason });
      } else {
        out.totalHops += hops;
        options.delivered?.(src, addr, hops);
        if (hops > out.maxHops) out.maxHops = hops;
      }
    }
  }
  return out;
}
