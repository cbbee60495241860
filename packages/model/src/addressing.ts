/**
 * IPv4 addressing reticulator: every socket without an address gets one.
 *
 * A link whose sockets already carry addresses (the user's) keeps that subnet
 * and its other sockets get free host addresses in it. Every other link gets
 * its own subnet, sized for its endpoints (a /30 for a point-to-point link, a
 * /24 for up to 254 endpoints, ...), taken from 10.0.0.0/8, then 172.16.0.0/12,
 * then 192.168.0.0/16, never overlapping a subnet the user gave. Subnets are
 * handed out in the order given (depth-first over the spanning tree when
 * routing), each aligned to its size.
 */
import type { Experiment } from "@merge/xir";
import { formatCidr, network, parseCidr, prefixFor, size } from "@merge/xir/ipv4";
import type { Diagnostic } from "./diagnostics.ts";
import type { Topology } from "./topology.ts";

const POOLS: readonly [number, number][] = [
  [10 * 2 ** 24, 8],
  [(172 * 256 + 16) * 2 ** 16, 12],
  [(192 * 256 + 168) * 2 ** 16, 16],
];

/** Assigns addresses in place (on a copy the compiler owns). */
export function assignAddresses(x: Experiment, t: Topology, linkOrder: ArrayLike<number>): Diagnostic[] {
  const out: Diagnostic[] = [];
  const L = x.links.length;
  // The user's subnets, to keep and to avoid.
  const userNet = new Float64Array(L).fill(-1);
  const userPrefix = new Int8Array(L);
  const reserved: [number, number][] = [];
  for (let l = 0; l < L; l++) {
    for (let k = t.linkStart[l] as number; k < (t.linkStart[l + 1] as number); k++) {
      const n = t.endNode[k] as number;
      const a = n < 0 ? undefined : x.nodes[n]?.sockets[t.endSocket[k] as number]?.addrs[0];
      const c = a === undefined ? undefined : parseCidr(a);
      if (c) {
        userNet[l] = network(c.addr, c.prefix);
        userPrefix[l] = c.prefix;
        reserved.push([userNet[l] as number, (userNet[l] as number) + size(c.prefix) - 1]);
        break;
      }
    }
  }
  reserved.sort((a, b) => a[0] - b[0]);

  let pool = 0;
  let cursor = (POOLS[0] as [number, number])[0];
  let r = 0;
  for (let i = 0; i < linkOrder.length; i++) {
    const l = linkOrder[i] as number;
    const first = t.linkStart[l] as number;
    const last = t.linkStart[l + 1] as number;
    if (first === last) continue;
    if (userNet[l] !== -1) {
      fillUserSubnet(x, t, l, userNet[l] as number, userPrefix[l] as number, out);
      continue;
    }
    const prefix = prefixFor(last - first);
    const block = size(prefix);
    // Next aligned block in the current pool that misses every reserved range.
    let start = -1;
    while (pool < POOLS.length) {
      const [base, bits] = POOLS[pool] as [number, number];
      const end = base + size(bits);
      let at = Math.ceil(cursor / block) * block;
      while (r < reserved.length && (reserved[r] as [number, number])[1] < at) r++;
      let k = r;
      while (k < reserved.length && (reserved[k] as [number, number])[0] <= at + block - 1) {
        at = Math.ceil(((reserved[k] as [number, number])[1] + 1) / block) * block;
        while (k < reserved.length && (reserved[k] as [number, number])[1] < at) k++;
      }
      if (at + block <= end) {
        start = at;
        cursor = at + block;
        break;
      }
      pool++;
      if (pool < POOLS.length) {
        cursor = (POOLS[pool] as [number, number])[0];
        r = 0;
      }
    }
    if (start < 0) {
      out.push({
        severity: "error",
        code: "addresses-exhausted",
        message: `addressing: no free /${prefix} left in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 for link ${x.links[l]?.name}`,
        path: `links[${l}]`,
      });
      return out;
    }
    for (let k = first; k < last; k++) {
      const n = t.endNode[k] as number;
      const s = n < 0 ? undefined : x.nodes[n]?.sockets[t.endSocket[k] as number];
      if (s && s.addrs.length === 0) s.addrs.push(formatCidr(start + 1 + (k - first), prefix));
    }
  }
  return out;
}

function fillUserSubnet(x: Experiment, t: Topology, l: number, net: number, prefix: number, out: Diagnostic[]): void {
  const first = t.linkStart[l] as number;
  const last = t.linkStart[l + 1] as number;
  const used = new Set<number>();
  for (let k = first; k < last; k++) {
    const n = t.endNode[k] as number;
    for (const a of n < 0 ? [] : (x.nodes[n]?.sockets[t.endSocket[k] as number]?.addrs ?? [])) {
      const c = parseCidr(a);
      if (c) used.add(c.addr);
    }
  }
  const lastHost = prefix >= 31 ? net + size(prefix) - 1 : net + size(prefix) - 2;
  let next = prefix >= 31 ? net : net + 1;
  for (let k = first; k < last; k++) {
    const n = t.endNode[k] as number;
    const s = n < 0 ? undefined : x.nodes[n]?.sockets[t.endSocket[k] as number];
    if (!s || s.addrs.length > 0) continue;
    while (next <= lastHost && used.has(next)) next++;
    if (next > lastHost) {
      out.push({
        severity: "error",
        code: "subnet-full",
        message: `addressing: link ${x.links[l]?.name} is in subnet ${formatCidr(net, prefix)} (from the addresses you gave), which has no free address left for ${x.nodes[n]?.name}; use a shorter prefix`,
        path: `links[${l}]`,
      });
      return;
    }
    s.addrs.push(formatCidr(next, prefix));
    used.add(next);
    next++;
  }
}
