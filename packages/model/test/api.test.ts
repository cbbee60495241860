import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { linkOf } from "@merge/xir";
import {
  addressing,
  capacity,
  checkReachability,
  compileExperiment,
  compileFile,
  compileSource,
  cores,
  disk,
  type Experiment,
  external,
  gb,
  gbps,
  gpu,
  group,
  host,
  image,
  kind,
  latency,
  layer,
  loss,
  mbps,
  memory,
  metal,
  ms,
  Network,
  nic,
  percent,
  platform,
  port,
  property,
  routing,
  tb,
  virtual,
} from "../src/index.ts";

test("the API emits XIR with constraints in base units, sockets per link, and deterministic names", () => {
  const net = new Network("api", addressing.ipv4);
  const a = net.node(
    "a",
    cores.ge(4),
    memory.ge(gb(8)),
    disk.ge(tb(1)),
    metal(true),
    platform.eq("x86_64"),
    gpu.model.eq("a100"),
    gpu.count.ge(2),
    host.eq("n3"),
    image("bookworm"),
    group("servers", "web"),
  );
  const b = net.node("b", virtual(), property("rack", 7));
  const c = net.node("c");
  const ab = net.connect(
    [a, b],
    capacity.eq(mbps(100)),
    latency.eq(ms(10)),
    loss.eq(percent(1)),
    kind.eq("ethernet"),
    layer.eq(2),
    external(false),
  );
  const lan = net.lan([a, b, c]).named("lan");
  ab.socket(a).addr("10.1.0.1/24");
  ab.at(b).addrs = ["10.1.0.2/24"];
  lan.socket(c).with(nic("e1000"), port.capacity.ge(gbps(1)), port.queues.ge(4));
  a.ingress("tcp", 80);
  const x = net.toXIR();

  assert.equal(x.xir, "1.0");
  assert.deepEqual(x.parameters, { addressing: "ipv4" });
  assert.deepEqual(
    x.nodes.map((n) => n.name),
    ["a", "b", "c"],
  );
  const na = x.nodes[0]!;
  assert.deepEqual(na.constraints, [
    { prop: "proc.cores", op: ">=", value: 4 },
    { prop: "memory.capacity", op: ">=", value: 8 * 2 ** 30 },
    { prop: "disk.capacity", op: ">=", value: 2 ** 40 },
    { prop: "metal", op: "==", value: true },
    { prop: "platform", op: "==", value: "x86_64" },
    { prop: "gpu.model", op: "==", value: "a100" },
    { prop: "gpu.count", op: ">=", value: 2 },
    { prop: "host", op: "==", value: "n3" },
  ]);
  assert.equal(na.image, "bookworm");
  assert.deepEqual(na.properties, { group: ["servers", "web"] });
  assert.deepEqual(na.ingress, [{ protocol: "tcp", port: 80 }]);
  assert.deepEqual(x.nodes[1]?.constraints, [{ prop: "metal", op: "==", value: false }]);
  assert.deepEqual(x.nodes[1]?.properties, { rack: 7 });
  // a and b have a socket per link, in the order the links were made.
  assert.deepEqual(
    na.sockets.map((s) => s.index),
    [0, 1],
  );
  assert.deepEqual(na.sockets[0]?.addrs, ["10.1.0.1/24"]);
  assert.deepEqual(x.nodes[1]?.sockets[0]?.addrs, ["10.1.0.2/24"]);
  assert.deepEqual(x.nodes[2]?.sockets[0]?.constraints, [
    { prop: "port.model", op: "==", value: "e1000" },
    { prop: "port.capacity", op: ">=", value: 1e9 },
    { prop: "port.queues", op: ">=", value: 4 },
  ]);
  // Unnamed links get names that avoid the user's.
  assert.deepEqual(
    x.links.map((l) => l.name),
    ["link0", "lan"],
  );
  assert.deepEqual(x.links[0]?.constraints, [
    { prop: "capacity", op: "==", value: 1e8 },
    { prop: "latency", op: "==", value: 1e7 },
    { prop: "loss", op: "==", value: 0.01 },
    { prop: "kind", op: "==", value: "ethernet" },
    { prop: "layer", op: "==", value: 2 },
    { prop: "external", op: "==", value: false },
  ]);
  assert.deepEqual(x.links[1]?.endpoints, [
    { node: "a", socket: 1 },
    { node: "b", socket: 1 },
    { node: "c", socket: 0 },
  ]);
  assert.deepEqual(net.toXIR(), x, "toXIR is repeatable");

  const compiled = compileExperiment(x);
  assert.equal(compiled.ok, true, compiled.diagnostics.map((d) => d.message).join("\n"));
  assert.equal(compiled.stats?.assigned, 3, "only the LAN's three sockets needed addresses");
});

test("elements remember the line of the user's code that made them", () => {
  const net = new Network("where");
  const a = net.node("a", memory.ge(gb(8)), memory.le(gb(4)));
  const b = net.node("b");
  net.connect([a, b]);
  const { xir, origins } = net.compileParts();
  const here = origins.get("nodes[0]")?.location;
  assert.equal(here?.file, import.meta.filename);
  const r = compileExperiment(xir, { origins });
  const d = r.diagnostics.find((x) => x.code === "contradiction");
  assert.equal(d?.location?.file, import.meta.filename);
  assert.equal(d?.location?.line, here?.line, "the constraint was made on the node's line");
});

test("a model may name its experiment with experiment(net)", async () => {
  const r = await compileFile(join(import.meta.dirname, "models", "registered.ts"));
  assert.equal(r.ok, true);
  assert.equal(r.xir?.name, "registered");
});

test("compileSource compiles model text and names the given file in diagnostics", async () => {
  const good = await compileSource(
    'import { Network, addressing } from "@merge/model";\nconst n = new Network("s", addressing.ipv4);\nn.connect([n.node("a"), n.node("b")]);\nexport default n;\n',
    "mine.ts",
  );
  assert.equal(good.ok, true);
  assert.equal(good.stats?.addresses, 2);
  const bad = await compileSource(
    'import { Network } from "@merge/model";\nconst n = new Network("s");\nn.connect([n.node("a"), n.node("b")]);\nn.connect([n.node("c"), n.node("d")]);\nexport default n;\n',
    "mine.ts",
  );
  assert.equal(bad.ok, false);
  assert.equal(bad.diagnostics[0]?.code, "islanded");
  assert.deepEqual(bad.diagnostics[0]?.location, { file: "mine.ts", line: 2, column: 11 });
});

test("unknown files and kinds are clear errors", async () => {
  const missing = await compileFile("/nonexistent/model.ts");
  assert.equal(missing.diagnostics[0]?.code, "no-file");
  const other = await compileFile(join(import.meta.dirname, "..", "package.json"));
  assert.equal(other.diagnostics[0]?.code, "unknown-model-kind");
});

function raw(): Experiment {
  return {
    xir: "1.0",
    name: "raw",
    parameters: { addressing: "ipv4", routing: "static" },
    nodes: ["a", "b", "c"].map((name) => ({
      name,
      constraints: [],
      properties: {},
      sockets: [
        { index: 0, addrs: [], constraints: [] },
        { index: 1, addrs: [], constraints: [] },
      ],
    })),
    links: [
      linkOf("ab", [
        ["a", 0],
        ["b", 0],
      ]),
      linkOf("bc", [
        ["b", 1],
        ["c", 0],
      ]),
      linkOf("ca", [
        ["c", 1],
        ["a", 1],
      ]),
    ],
  };
}

test("compileExperiment is pure and reticulates XIR in hand", () => {
  const input = raw();
  const before = JSON.stringify(input);
  const r = compileExperiment(input);
  assert.equal(r.ok, true);
  assert.equal(JSON.stringify(input), before, "the input is unchanged");
  assert.equal(r.stats?.assigned, 6);
  assert.deepEqual(checkReachability(r.xir!).failures, []);
  // Compiling the output again changes nothing: addresses and routes are kept.
  const again = compileExperiment({ ...r.xir!, nodes: r.xir!.nodes.map((n) => ({ ...n, routes: undefined })) });
  assert.equal(again.stats?.assigned, 0);
  assert.deepEqual(
    again.xir?.nodes.map((n) => n.routes),
    r.xir?.nodes.map((n) => n.routes),
  );
});

test("structural errors in raw XIR: schema, unknown endpoints, reused sockets, socket indexes", () => {
  const schema = compileExperiment({ ...raw(), nodes: [{ name: "a" }] });
  assert.equal(schema.ok, false);
  assert.ok(schema.diagnostics.some((d) => d.code === "schema" && d.path === "nodes[0].constraints"));

  const x = raw();
  x.links[2]!.endpoints[1] = { node: "zed", socket: 0 };
  x.links[1]!.endpoints[0] = { node: "a", socket: 0 };
  x.nodes[2]!.sockets[1]!.index = 5;
  x.links.push(
    linkOf("far", [
      ["b", 9],
      ["c", 0],
    ]),
  );
  const r = compileExperiment(x);
  const codes = r.diagnostics.map((d) => `${d.code}@${d.path}`);
  assert.ok(codes.includes("unknown-endpoint@links[2].endpoints[1]"), codes.join(" "));
  assert.ok(codes.includes("socket-reused@links[1].endpoints[0]"), codes.join(" "));
  assert.ok(codes.includes("socket-index@nodes[2].sockets[1]"), codes.join(" "));
  assert.ok(codes.includes("unknown-endpoint@links[3].endpoints[0]"), codes.join(" "));
  assert.ok(codes.includes("unbound-socket@nodes[1].sockets[1]"), codes.join(" "));
});

test("addressing never collides with the user's subnets, even inside the pool it uses", () => {
  const net = new Network("avoid", addressing.ipv4, routing.static);
  const nodes = net.nodesNamed("n", 40);
  const links = nodes.slice(1).map((n, i) => net.connect([nodes[i]!, n]));
  // The user takes the first /24 of 10.0.0.0/8 and a /30 further on.
  links[5]!.socket(nodes[5]!).addr("10.0.0.1/24");
  links[9]!.socket(nodes[10]!).addr("10.0.1.130/30");
  const r = compileExperiment(net.toXIR());
  assert.equal(r.ok, true, r.diagnostics.map((d) => d.message).join("\n"));
  // Re-analysing the result finds no overlap, duplicate or mismatch.
  const check = compileExperiment({ ...r.xir!, parameters: {} });
  assert.deepEqual(
    check.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  assert.deepEqual(r.xir?.nodes[5]?.sockets[1]?.addrs, ["10.0.0.1/24"]);
  assert.deepEqual(
    r.xir?.nodes[6]?.sockets[0]?.addrs,
    ["10.0.0.2/24"],
    "the link's other socket joins the user's subnet",
  );
  assert.deepEqual(checkReachability(r.xir!).failures, []);
});

test("the reachability walk fails when a route is missing or points the wrong way", async () => {
  const r = await compileFile(join(import.meta.dirname, "..", "..", "..", "examples", "dumbbell.ts"));
  const x = structuredClone(r.xir!);
  x.nodes[0]!.routes = [];
  const missing = checkReachability(x);
  assert.ok(missing.failures.some((f) => f.reason.startsWith("no route at rl")));
  const y = structuredClone(r.xir!);
  // rr's route back to the left side sent to itself over the bottleneck: a loop or a bad gateway.
  y.nodes[1]!.routes = [{ dest: "10.0.0.0/28", gateway: "10.0.0.10", socket: 1 }];
  y.nodes[0]!.routes = [{ dest: "10.0.0.16/29", gateway: "10.0.0.10", socket: 1 }];
  const wrong = checkReachability(y);
  assert.ok(wrong.failures.length > 0);
});

test("routing over the user's own addresses, without the addressing reticulator", () => {
  const net = new Network("manual", routing.static);
  const [a, b, c, d] = net.nodesNamed("n", 4).map((n) => n!);
  const ab = net.connect([a!, b!]);
  const bc = net.connect([b!, c!]);
  const cd = net.connect([c!, d!]);
  ab.socket(a!).addr("192.168.7.1/24");
  ab.socket(b!).addr("192.168.7.2/24");
  bc.socket(b!).addr("10.20.0.1/16");
  bc.socket(c!).addr("10.20.0.2/16");
  cd.socket(c!).addr("172.31.9.1/30");
  cd.socket(d!).addr("172.31.9.2/30");
  const r = compileExperiment(net.toXIR());
  assert.equal(r.ok, true, r.diagnostics.map((x) => x.message).join("\n"));
  assert.equal(r.stats?.assigned, 0);
  assert.deepEqual(checkReachability(r.xir!).failures, []);
  // Covers never reach into space between the user's far-apart subnets.
  for (const n of r.xir!.nodes)
    for (const rt of n.routes ?? []) assert.ok(Number(rt.dest.split("/")[1]) >= 16, rt.dest);
});

test("when the user takes all of 10.0.0.0/8, addressing moves on to 172.16.0.0/12", () => {
  const net = new Network("pool", addressing.ipv4, routing.static);
  const ns = net.nodesNamed("n", 3);
  const first = net.connect([ns[0]!, ns[1]!]);
  net.connect([ns[1]!, ns[2]!]);
  first.socket(ns[0]!).addr("10.0.0.1/8");
  const r = compileExperiment(net.toXIR());
  assert.equal(r.ok, true, r.diagnostics.map((x) => x.message).join("\n"));
  assert.deepEqual(r.xir?.nodes[1]?.sockets[0]?.addrs, ["10.0.0.2/8"]);
  assert.deepEqual(r.xir?.nodes[1]?.sockets[1]?.addrs, ["172.16.0.1/30"]);
  assert.deepEqual(checkReachability(r.xir!).failures, []);
});

test("a route of the user's own is kept, ahead of the reticulated ones", () => {
  const net = new Network("own-route", addressing.ipv4, routing.static);
  const [a, b, c] = net.nodesNamed("n", 3);
  const ab = net.connect([a!, b!]);
  net.connect([b!, c!]);
  ab.socket(a!).addr("10.50.0.1/24");
  ab.socket(b!).addr("10.50.0.2/24");
  a!.route("192.0.2.0/24", "10.50.0.2", ab.socket(a!));
  const r = compileExperiment(net.toXIR());
  assert.equal(r.ok, true, r.diagnostics.map((x) => x.message).join("\n"));
  assert.deepEqual(r.xir?.nodes[0]?.routes?.[0], { dest: "192.0.2.0/24", gateway: "10.50.0.2", socket: 0 });
  assert.ok((r.xir?.nodes[0]?.routes?.length ?? 0) > 1);
  assert.deepEqual(checkReachability(r.xir!).failures, []);
});

test("a model outside the project finds @merge/model, as CommonJS or as an ES module", async () => {
  const { mkdtempSync, rmSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const dir = mkdtempSync(join(tmpdir(), "merge-outside-"));
  try {
    writeFileSync(join(dir, "helper.ts"), "export const size = (): number => 2;\n");
    const model = [
      'import { gb, memory, Network } from "@merge/model";',
      'import { size } from "./helper.ts";',
      'const net = new Network("outside");',
      'const a = net.node("a", memory.ge(gb(size())));',
      'net.connect([a, net.node("b")]);',
      "export default net;",
      "",
    ].join("\n");
    writeFileSync(join(dir, "model.ts"), model);
    const cjs = await compileFile(join(dir, "model.ts"));
    assert.equal(cjs.ok, true, cjs.diagnostics.map((d) => d.message).join("\n"));
    assert.deepEqual(cjs.xir?.nodes[0]?.constraints, [{ prop: "memory.capacity", op: ">=", value: 2 * 2 ** 30 }]);
    writeFileSync(join(dir, "package.json"), '{"type":"module"}\n');
    writeFileSync(
      join(dir, "islands.ts"),
      model.replace(
        'net.connect([a, net.node("b")]);',
        'net.connect([a, net.node("b")]);\nnet.connect([net.node("c"), net.node("d")]);',
      ),
    );
    const esm = await compileFile(join(dir, "islands.ts"));
    assert.equal(esm.ok, false);
    assert.equal(esm.diagnostics[0]?.code, "islanded");
    assert.deepEqual(esm.diagnostics[0]?.location, { file: join(dir, "islands.ts"), line: 3, column: 13 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
