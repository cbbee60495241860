// Routing on topologies with cycles: small experiments get shortest paths
// (every walk as short as the BFS distance); both modes deliver every pair.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addressing,
  checkReachability,
  compileExperiment,
  type Experiment,
  Network,
  parseCidr,
  routing,
} from "../src/index.ts";

/** A connected pseudo-random mesh: a random tree plus extra links, some of them LANs. */
function mesh(nodes: number, extra: number, seed: number): Network {
  const net = new Network(`mesh-${nodes}-${extra}`, addressing.ipv4, routing.static);
  const ns = net.nodesNamed("m", nodes);
  let s = seed;
  const rand = (n: number) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return Math.floor((s / 2147483648) * n);
  };
  for (let i = 1; i < nodes; i++) net.connect([ns[rand(i)]!, ns[i]!]);
  for (let k = 0; k < extra; k++) {
    const members = new Set([ns[rand(nodes)]!, ns[rand(nodes)]!, ...(k % 5 === 0 ? [ns[rand(nodes)]!] : [])]);
    if (members.size >= 2) net.connect([...members]);
  }
  return net;
}

/**
 * For each (source, address): the hops of a shortest path to the nearest node
 * on the address's link, plus one to cross it. Routes go to subnets, so
 * shortest-path routing never takes more (it may take fewer when the path
 * happens to pass through the address's owner).
 */
function shortestToSubnets(x: Experiment): Map<string, number> {
  const index = new Map(x.nodes.map((n, i) => [n.name, i]));
  const adj: number[][] = x.nodes.map(() => []);
  const owners: { addr: number; node: number; link: number[] }[] = [];
  for (const l of x.links) {
    const ends = l.endpoints.map((e) => index.get(e.node)!);
    for (const a of ends) for (const b of ends) if (a !== b) adj[a]!.push(b);
    for (const e of l.endpoints) {
      const node = index.get(e.node)!;
      for (const a of x.nodes[node]!.sockets[e.socket]!.addrs)
        owners.push({ addr: parseCidr(a)!.addr, node, link: ends });
    }
  }
  const out = new Map<string, number>();
  for (let src = 0; src < x.nodes.length; src++) {
    const dist = new Array<number>(x.nodes.length).fill(-1);
    dist[src] = 0;
    const q = [src];
    for (let h = 0; h < q.length; h++) {
      for (const m of adj[q[h]!]!) {
        if (dist[m] === -1) {
          dist[m] = dist[q[h]!]! + 1;
          q.push(m);
        }
      }
    }
    for (const o of owners) {
      if (o.node === src) continue;
      const best = Math.min(...o.link.map((m) => dist[m]!)) + 1;
      out.set(`${src}:${o.addr}`, best);
    }
  }
  return out;
}

test("a small mesh with cycles and LANs gets shortest paths to every address", () => {
  for (const seed of [1, 2, 3]) {
    const r = compileExperiment(mesh(60, 40, seed).toXIR());
    assert.equal(r.ok, true, r.diagnostics.map((d) => d.message).join("\n"));
    const best = shortestToSubnets(r.xir!);
    const longer: string[] = [];
    const walk = checkReachability(r.xir!, {
      delivered: (from, addr, hops) => {
        if (hops > best.get(`${from}:${addr}`)!)
          longer.push(`${from}:${addr} ${hops} > ${best.get(`${from}:${addr}`)}`);
      },
    });
    assert.deepEqual(walk.failures, []);
    assert.equal(walk.pairs, best.size);
    assert.deepEqual(longer, [], `seed ${seed}: walks longer than the shortest path`);
  }
});

test("a tree-shaped experiment gets shortest paths too (tree routing is exact on trees)", () => {
  const r = compileExperiment(mesh(200, 0, 7).toXIR());
  assert.equal(r.ok, true);
  const best = shortestToSubnets(r.xir!);
  let longer = 0;
  const walk = checkReachability(r.xir!, {
    delivered: (from, addr, hops) => {
      if (hops > best.get(`${from}:${addr}`)!) longer++;
    },
  });
  assert.deepEqual(walk.failures, []);
  assert.equal(longer, 0);
});

test("a large mesh (beyond the shortest-path budget) routes along the tree and still reaches everything", () => {
  const r = compileExperiment(mesh(3000, 1500, 11).toXIR());
  assert.equal(r.ok, true);
  const sources = [0, 1, 2, 500, 1500, 2999];
  const walk = checkReachability(r.xir!, { sources });
  assert.deepEqual(walk.failures, []);
  assert.ok(walk.pairs > 6 * 4000);
});
