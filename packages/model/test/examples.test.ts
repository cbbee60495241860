// Every example in examples/ compiles; its node, link, address and route
// counts are what the model and the reticulators' rules imply; and a walk over
// the emitted routes delivers a packet from every node to every address of
// every other node.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { canonicalJSON } from "@merge/xir";
import { checkReachability, compileFile, parsePrefix, toGraph } from "../src/index.ts";

const examples = join(import.meta.dirname, "..", "..", "..", "examples");

interface Expect {
  nodes: number;
  links: number;
  addresses: number;
  /** Omitted where the count is not worth deriving by hand; reachability still proves the routes. */
  routes?: number;
}

const table: Record<string, Expect> = {
  // One link: every destination is on a connected subnet, no routes.
  hello: { nodes: 2, links: 1, addresses: 2, routes: 0 },
  // Left LAN 10.0.0.0/29, bottleneck 10.0.0.8/30, right LAN 10.0.0.16/29; summary
  // 10.0.0.0/28 + 10.0.0.16/29. Left hosts: both summaries (2 x 3); right hosts:
  // only 10.0.0.0/28, their own LAN is connected (1 x 3); each router one route
  // to the far side (2). 6 + 3 + 2 = 11.
  dumbbell: { nodes: 8, links: 3, addresses: 10, routes: 11 },
  line: { nodes: 6, links: 5, addresses: 10 },
  ring: { nodes: 6, links: 6, addresses: 12 },
  // One LAN: all connected.
  star: { nodes: 8, links: 1, addresses: 8, routes: 0 },
  emulated: { nodes: 2, links: 1, addresses: 2, routes: 0 },
  // One link with a slower direction toward a (rx.* on a's socket): routed like any link.
  asymmetric: { nodes: 2, links: 1, addresses: 2, routes: 0 },
  // 21 /27s from 10.0.0.0: summary 10.0.0.0/23, 10.0.2.0/25, 10.0.2.128/27 (the
  // root router's own site, allocated last). Hosts: 456 x 3 + the root site's
  // 24 x 2 (their own /27 is connected). The root: 19 routes, one per other
  // site. The other 19 routers: 3 summaries via the root + 18 routes straight
  // to their backbone siblings' sites. 1368 + 48 + 19 + 19 x 21 = 1834.
  "lan-of-lans": { nodes: 500, links: 21, addresses: 520, routes: 1834 },
  // Clients LAN 10.0.0.0/29, wan 10.0.0.8/30; the router is the root. c0, c1:
  // the wan via the router; server: the clients LAN via the router. 3.
  demo: { nodes: 4, links: 2, addresses: 5, routes: 3 },
};

for (const [name, want] of Object.entries(table)) {
  test(`example ${name} compiles, counts, and every node reaches every address`, async () => {
    const r = await compileFile(join(examples, `${name}.ts`));
    assert.equal(r.ok, true, r.diagnostics.map((d) => d.message).join("\n"));
    assert.ok(r.xir && r.stats);
    const x = r.xir;
    assert.equal(x.nodes.length, want.nodes);
    assert.equal(x.links.length, want.links);
    const addrs = x.nodes.flatMap((n) => n.sockets.flatMap((s) => s.addrs));
    assert.equal(addrs.length, want.addresses);
    assert.equal(new Set(addrs.map((a) => a.split("/")[0])).size, addrs.length, "addresses are unique");
    const routes = x.nodes.reduce((k, n) => k + (n.routes?.length ?? 0), 0);
    assert.equal(r.stats.routes, routes);
    if (want.routes !== undefined) assert.equal(routes, want.routes);
    // Every socket addressed; each node's routes name distinct destinations.
    for (const n of x.nodes) {
      for (const s of n.sockets) assert.ok(s.addrs.length > 0, `${n.name} socket ${s.index} has no address`);
      const dests = (n.routes ?? []).map((rt) => rt.dest);
      assert.equal(new Set(dests).size, dests.length, `${n.name} has duplicate route destinations`);
      for (const d of dests) assert.ok(parsePrefix(d), `${d} is a prefix`);
    }
    const walk = checkReachability(x);
    assert.deepEqual(walk.failures, []);
    assert.equal(walk.pairs, want.addresses * (want.nodes - 1));
  });
}

test("compiling is deterministic", async () => {
  const a = await compileFile(join(examples, "lan-of-lans.ts"));
  const b = await compileFile(join(examples, "lan-of-lans.ts"));
  assert.equal(canonicalJSON(a.xir), canonicalJSON(b.xir));
});

test("the line keeps the user's addresses and numbers around them", async () => {
  const r = await compileFile(join(examples, "line.ts"));
  const x = r.xir!;
  assert.deepEqual(x.nodes[0]?.sockets[0]?.addrs, ["10.0.0.1/24"]);
  assert.deepEqual(x.nodes[1]?.sockets[0]?.addrs, ["10.0.0.2/24"]);
  assert.equal(r.stats?.assigned, 8);
  // No assigned address falls inside the user's 10.0.0.0/24.
  for (const n of x.nodes) {
    for (const s of n.sockets) {
      for (const a of s.addrs) {
        if (a === "10.0.0.1/24" || a === "10.0.0.2/24") continue;
        assert.ok(!a.startsWith("10.0.0."), `${a} collides with the user's 10.0.0.0/24`);
        assert.ok(a.endsWith("/30"), `${a}: a point-to-point link gets a /30`);
      }
    }
  }
});

test("a ring (a cycle) is routed without loops and the emulated link keeps its units", async () => {
  const ring = (await compileFile(join(examples, "ring.ts"))).xir!;
  assert.ok(ring.nodes.some((n) => (n.routes?.length ?? 0) > 0));
  const emu = (await compileFile(join(examples, "emulated.ts"))).xir!;
  assert.deepEqual(emu.parameters, { addressing: "ipv4", routing: "static", emulation: "netem" });
  assert.deepEqual(emu.links[0]?.constraints, [
    { prop: "capacity", op: "<=", value: 50e6 },
    { prop: "latency", op: "==", value: 40e6 },
    { prop: "loss", op: "==", value: 0.005 },
  ]);
  assert.deepEqual(emu.nodes[0]?.sockets[0]?.constraints, [{ prop: "port.model", op: "==", value: "e1000" }]);
  assert.deepEqual(emu.nodes[1]?.ingress, [{ protocol: "tcp", port: 80 }]);
  assert.equal(emu.nodes[1]?.image, "bookworm");
});

test("the graph view: point-to-point links are edges, LANs are stars", async () => {
  const x = (await compileFile(join(examples, "dumbbell.ts"))).xir!;
  const g = toGraph(x);
  assert.equal(g.nodes.filter((n) => n.kind === "node").length, 8);
  assert.deepEqual(
    g.nodes.filter((n) => n.kind === "lan").map((n) => n.id),
    ["lan:left", "lan:right"],
  );
  // 4 + 4 spokes for the LANs, 1 edge for the bottleneck.
  assert.equal(g.links.length, 9);
  assert.ok(g.links.some((l) => l.source === "node:rl" && l.target === "node:rr"));
  const ids = new Set(g.nodes.map((n) => n.id));
  for (const l of g.links) assert.ok(ids.has(l.source) && ids.has(l.target));
});
