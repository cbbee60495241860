/** The experiment → graph mapping the topology view draws, and its layout. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Experiment, linkOf } from "@merge/xir";
import { COLORS, layout, topologyGraph } from "../app/topology.ts";
import { campus } from "./sample-xir.ts";

const small: Experiment = {
  xir: "1.0",
  name: "small",
  parameters: {},
  nodes: [
    {
      name: "a",
      image: "bookworm",
      constraints: [
        { prop: "proc.cores", op: ">=", value: 4 },
        { prop: "memory.capacity", op: ">=", value: 8 * 1024 ** 3 },
      ],
      sockets: [
        { index: 0, addrs: ["10.0.0.1/24"], constraints: [{ prop: "port.capacity", op: ">=", value: 1e10 }] },
        { index: 1, addrs: ["10.0.1.1/24"], constraints: [] },
      ],
      properties: { group: "servers" },
    },
    ...["b", "c", "d"].map((name, i) => ({
      name,
      constraints: [],
      sockets: [{ index: 0, addrs: [`10.0.1.${i + 2}/24`], constraints: [] }],
      properties: {},
    })),
  ],
  links: [
    {
      name: "wan",
      endpoints: [
        { node: "a", socket: 0 },
        { node: "b", socket: 0 },
      ],
      constraints: [
        { prop: "latency", op: "==", value: 10e6 },
        { prop: "capacity", op: "<=", value: 100e6 },
        { prop: "loss", op: "==", value: 0.01 },
      ],
      properties: {},
    },
    {
      name: "office",
      endpoints: [
        { node: "a", socket: 1 },
        { node: "c", socket: 0 },
        { node: "d", socket: 0 },
      ],
      constraints: [],
      properties: {},
    },
  ],
};

test("nodes are vertices, a point-to-point link one edge, a LAN a hub with a spoke per member", () => {
  const g = topologyGraph(small);
  assert.deepEqual(g.nodes().sort(), ["lan:office", "node:a", "node:b", "node:c", "node:d"]);
  assert.equal(g.size, 4);
  assert.deepEqual(g.extremities("link:wan").sort(), ["node:a", "node:b"]);
  assert.deepEqual(g.neighbors("lan:office").sort(), ["node:a", "node:c", "node:d"]);
  assert.equal(g.getNodeAttribute("lan:office", "kind"), "lan");
  assert.equal(g.getNodeAttribute("lan:office", "color"), COLORS.lan);
  assert.equal(g.getNodeAttribute("node:a", "color"), COLORS.node);
});

test("hover details: constraints in the user's units, addresses per socket, image and group", () => {
  const g = topologyGraph(small);
  assert.deepEqual(g.getNodeAttribute("node:a", "details"), [
    "image bookworm",
    "proc.cores >= 4",
    "memory.capacity >= 8 GiB",
    "socket 0  10.0.0.1/24  port.capacity >= 10 Gbit/s",
    "socket 1  10.0.1.1/24",
    "group servers",
  ]);
  assert.deepEqual(g.getEdgeAttribute("link:wan", "details"), [
    "latency == 10 ms",
    "capacity <= 100 Mbit/s",
    "loss == 1%",
  ]);
  // Latency or loss: drawn as an emulated link; a plain LAN is not.
  assert.equal(g.getEdgeAttribute("link:wan", "color"), COLORS.emulated);
  assert.equal(g.getEdgeAttribute("link:office:0", "color"), COLORS.link);
  assert.deepEqual(g.getNodeAttribute("lan:office", "details"), ["LAN of 3"]);
});

test("a link naming a node the experiment lacks is drawn without it rather than failing", () => {
  const broken: Experiment = {
    ...small,
    links: [
      ...small.links,
      linkOf("dangling", [
        ["a", 0],
        ["zz", 0],
      ]),
    ],
  };
  const g = topologyGraph(broken);
  assert.equal(g.hasEdge("link:dangling"), false);
  assert.equal(g.order, 5);
});

test("layout gives every vertex a finite, distinct position, linked vertices nearer than the spread", () => {
  const g = topologyGraph(campus(200));
  assert.equal(g.order, 200 + 20 + 20); // hosts, routers, LAN hubs
  assert.equal(g.size, 200 + 20 + 20); // a spoke per LAN member (hosts + routers), a core ring of 20
  layout(g);
  const seen = new Set<string>();
  g.forEachNode((id, a) => {
    assert.ok(Number.isFinite(a.x) && Number.isFinite(a.y), id);
    seen.add(`${a.x.toFixed(3)},${a.y.toFixed(3)}`);
  });
  assert.equal(seen.size, g.order);
  const dist = (u: string, v: string) => {
    const p = g.getNodeAttributes(u);
    const q = g.getNodeAttributes(v);
    return Math.hypot(p.x - q.x, p.y - q.y);
  };
  // Hosts sit closer to their own LAN hub than to a LAN hub across the ring.
  let nearer = 0;
  for (let h = 0; h < 200; h++) {
    const own = Math.floor(h / 10);
    const far = (own + 10) % 20;
    if (dist(`node:h${h}`, `lan:lan${own}`) < dist(`node:h${h}`, `lan:lan${far}`)) nearer++;
  }
  assert.ok(nearer >= 195, `${nearer} of 200 hosts nearer their own LAN`);
});
