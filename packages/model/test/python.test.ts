/**
 * The published-style Python models in examples/python compile, unchanged, to
 * the XIR they describe.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type Constraint,
  canonicalJSON,
  type Experiment,
  formatSchemaErrors,
  gb,
  gbps,
  linkOf,
  mb,
  mbps,
  ms,
  type Node,
  tb,
  us,
  validateExperiment,
} from "@merge/xir";
import { compileFile } from "../src/index.ts";
import { runPythonModel, runPythonSource } from "../src/python.ts";

const examples = fileURLToPath(new URL("../../../examples/python/", import.meta.url));

async function compile(name: string): Promise<Experiment> {
  const { experiment } = await runPythonModel(`${examples}${name}`);
  const v = validateExperiment(experiment);
  assert.ok(v.ok, v.ok ? "" : `${name}: ${formatSchemaErrors(v.errors)}`);
  return experiment;
}

function node(x: Experiment, name: string): Node {
  const n = x.nodes.find((m) => m.name === name);
  assert.ok(n, `no node ${name}`);
  return n;
}

const c = (prop: string, op: Constraint["op"], value: Constraint["value"]): Constraint => ({ prop, op, value });

describe("examples/python compile to XIR", () => {
  test("hello-world: two nodes, one link, explicit addresses", async () => {
    const x = await compile("hello-world.py");
    assert.equal(x.xir, "1.0");
    assert.equal(x.name, "hello-world");
    assert.deepEqual(x.parameters, {});
    assert.deepEqual(
      x.nodes.map((n) => n.name),
      ["a", "b"],
    );
    assert.deepEqual(x.links, [
      linkOf("link0", [
        ["a", 0],
        ["b", 0],
      ]),
    ]);
    assert.deepEqual(node(x, "a").sockets, [{ index: 0, addrs: ["10.0.0.1/24"], constraints: [] }]);
    assert.deepEqual(node(x, "b").sockets, [{ index: 0, addrs: ["10.0.0.2/24"], constraints: [] }]);
  });

  test("dumbbell: routing == static, addressing == ipv4, capacity == mbps(100)", async () => {
    const x = await compile("dumbbell.py");
    assert.deepEqual(x.parameters, { routing: "static", addressing: "ipv4" });
    assert.equal(x.nodes.length, 8);
    assert.equal(x.links.length, 7);
    const bottleneck = x.links[6];
    assert.deepEqual(bottleneck?.endpoints, [
      { node: "router-left", socket: 3 },
      { node: "router-right", socket: 3 },
    ]);
    assert.deepEqual(bottleneck?.constraints, [c("capacity", "==", mbps(100))]);
    for (const l of x.links.slice(0, 6)) assert.deepEqual(l.constraints, [c("capacity", "==", gbps(1))]);
    assert.deepEqual(node(x, "router-left").constraints, [c("proc.cores", ">=", 2)]);
    assert.equal(node(x, "router-right").sockets.length, 4);
    // Addressing is left to the reticulator.
    assert.ok(x.nodes.every((n) => n.sockets.every((s) => s.addrs.length === 0)));
  });

  test("lans-routers: three LANs of 25 hosts joined by routers, every socket addressed", async () => {
    const x = await compile("lans-routers.py");
    assert.equal(x.nodes.length, 3 + 3 * 25);
    assert.equal(x.links.length, 6);
    for (const lan of x.links.slice(0, 3)) assert.equal(lan.endpoints.length, 26);
    for (const wan of x.links.slice(3)) {
      assert.equal(wan.endpoints.length, 2);
      assert.deepEqual(wan.constraints, [c("capacity", "==", gbps(10))]);
    }
    const addrs = x.nodes.flatMap((n) => n.sockets.map((s) => s.addrs));
    assert.equal(addrs.length, 75 + 3 * 3);
    assert.ok(addrs.every((a) => a.length === 1));
    assert.equal(new Set(addrs.flat()).size, addrs.length, "addresses are unique");
    assert.deepEqual(node(x, "router0").sockets[0]?.addrs, ["10.0.0.1/24"]);
    assert.deepEqual(node(x, "h2-24").sockets[0]?.addrs, ["10.2.0.34/24"]);
    // router1 joins wan link 0 (router0-router1) at its socket 1, link 2 (router1-router2) at socket 2.
    assert.deepEqual(node(x, "router1").sockets[1]?.addrs, ["172.16.0.2/30"]);
    assert.deepEqual(node(x, "router1").sockets[2]?.addrs, ["172.16.2.1/30"]);
    assert.deepEqual(node(x, "router2").constraints, [c("proc.cores", ">=", 2), c("memory.capacity", ">=", gb(4))]);
    assert.deepEqual(x.parameters, { routing: "static" });
  });

  test("node-constraints: metal, image, memory, cores, groups", async () => {
    const x = await compile("node-constraints.py");
    const server = node(x, "server");
    assert.equal(server.image, "2004");
    assert.deepEqual(server.constraints, [
      c("metal", "==", true),
      c("memory.capacity", "==", gb(8)),
      c("proc.cores", "==", 4),
    ]);
    assert.equal(gb(8), 8 * 1024 ** 3);
    assert.deepEqual(server.properties, { group: ["servers"] });
    const db = node(x, "db");
    assert.equal(db.image, undefined);
    assert.deepEqual(db.properties, { group: ["servers", "storage"] });
    assert.deepEqual(db.constraints, [
      c("metal", "==", true),
      c("disk.capacity", ">=", gb(200)),
      c("memory.capacity", ">=", gb(16)),
    ]);
    for (let i = 0; i < 4; i++) {
      const cl = node(x, `client${i}`);
      assert.equal(cl.image, "2004");
      assert.deepEqual(cl.constraints, [
        c("metal", "==", false),
        c("proc.cores", ">=", 1),
        c("memory.capacity", ">=", mb(512)),
      ]);
      assert.deepEqual(cl.properties, { group: ["clients"] });
    }
    assert.equal(x.links[1]?.endpoints.length, 5);
  });

  test("emulated-links: latency, loss and capacity in base units; emulation == netem", async () => {
    const x = await compile("emulated-links.py");
    assert.deepEqual(x.parameters, { emulation: "netem", addressing: "ipv4", routing: "static" });
    assert.deepEqual(x.links[0]?.constraints, [c("latency", "==", ms(10)), c("capacity", "==", mbps(50))]);
    assert.deepEqual(x.links[1]?.constraints, [
      c("latency", "==", 25_000_000),
      c("loss", "==", 0.02),
      c("capacity", "==", 10_000_000),
    ]);
    assert.deepEqual(node(x, "dst").sockets[0]?.addrs, ["10.1.0.2/24"]);
    assert.deepEqual(node(x, "mid").sockets[1]?.addrs, ["10.1.0.1/24"]);
    assert.deepEqual(node(x, "mid").sockets[0]?.addrs, []);
  });

  test("three-node-lan: one multipoint link", async () => {
    const x = await compile("three-node-lan.py");
    assert.equal(x.links.length, 1);
    assert.deepEqual(
      x.links[0]?.endpoints.map((e) => `${e.node}.${e.socket}`),
      ["a.0", "b.0", "c.0"],
    );
  });

  test("groups: properties['group'] per node, a router on two LANs", async () => {
    const x = await compile("groups.py");
    assert.equal(x.name, "example topology with groups");
    assert.deepEqual(node(x, "a1").properties, { group: ["group_a"] });
    assert.deepEqual(node(x, "b2").properties, { group: ["group_b"] });
    assert.deepEqual(node(x, "router").properties, {});
    assert.equal(node(x, "router").sockets.length, 2);
    assert.deepEqual(
      x.links.map((l) => l.endpoints.length),
      [3, 4],
    );
  });

  test("star: one /24 per spoke, latency on ground links", async () => {
    const x = await compile("star.py");
    assert.equal(x.nodes.length, 11);
    assert.equal(x.links.length, 10);
    const cm = node(x, "cm");
    assert.equal(cm.sockets.length, 10);
    assert.deepEqual(cm.sockets[0]?.addrs, ["10.0.16.2/24"]);
    assert.deepEqual(cm.sockets[9]?.addrs, ["10.0.35.2/24"]);
    assert.deepEqual(node(x, "honolulu").sockets[0]?.addrs, ["10.0.34.1/24"]);
    assert.deepEqual(x.links[9]?.constraints, [c("latency", "==", ms(40))]);
    assert.deepEqual(x.links[0]?.constraints, []);
  });

  test("ingress: node.ingress(http, 80) and node.ingress('tcp', 8443)", async () => {
    const x = await compile("ingress.py");
    assert.deepEqual(node(x, "web").ingress, [
      { protocol: "http", port: 80 },
      { protocol: "tcp", port: 8443 },
    ]);
    assert.equal(node(x, "client").ingress, undefined);
    assert.equal(node(x, "web").image, "bullseye");

    // No facility materializes an ingress yet: one warning says so, at the node.
    const r = await compileFile(`${examples}ingress.py`);
    assert.ok(r.ok, JSON.stringify(r.diagnostics));
    const warned = r.diagnostics.filter((d) => d.code === "ingress-not-provided");
    assert.equal(warned.length, 1);
    assert.equal(warned[0]?.severity, "warning");
    assert.equal(warned[0]?.location?.line, 6, "the line that made the web node");
    assert.match(
      warned[0]?.message ?? "",
      /ingress asked for \(web http:80, web tcp:8443\), but no facility provides ingresses yet/,
    );
  });

  test("training-lab: addresses by hand on one link beside addressing == ipv4; tuple groups; link tags", async () => {
    const x = await compile("training-lab.py");
    assert.deepEqual(x.parameters, { addressing: "ipv4", routing: "static" });
    assert.deepEqual(node(x, "attacker").sockets[0]?.addrs, ["10.0.0.1/24"]);
    assert.deepEqual(node(x, "gateway").sockets[0]?.addrs, ["10.0.0.254/24"]);
    assert.deepEqual(node(x, "gateway").sockets[1]?.addrs, [], "the LAN is left to addressing == ipv4");
    assert.deepEqual(node(x, "attacker").properties, { group: ["red"] }, "a tuple is a list");
    assert.deepEqual(node(x, "gateway").properties, { group: ["blue", "routers"] });
    assert.deepEqual(node(x, "target0").ingress, [{ protocol: "http", port: 8080 }]);
    assert.equal(node(x, "target1").image, "2404");
    assert.deepEqual(x.links[0]?.properties, { tags: ["entry", "monitored"] });
    assert.deepEqual(x.links[0]?.constraints, [
      { prop: "capacity", op: "==", value: mbps(100) },
      { prop: "latency", op: "==", value: ms(5) },
    ]);

    // Reticulated, the hand-made /24 stays and the LAN gets a subnet apart from it.
    const r = await compileFile(`${examples}training-lab.py`);
    assert.ok(r.ok && r.xir, JSON.stringify(r.diagnostics));
    assert.deepEqual(node(r.xir, "attacker").sockets[0]?.addrs, ["10.0.0.1/24"]);
    const lan = ["gateway", "target0", "target1"].map((n) => {
      const s = node(r.xir as Experiment, n).sockets.at(-1);
      return s?.addrs[0] ?? "";
    });
    for (const a of lan) assert.doesNotMatch(a, /^10\.0\.0\./, `${a} is outside the hand-made 10.0.0.0/24`);
    assert.equal(new Set(lan.map((a) => a.split("/")[1])).size, 1, "one prefix for the LAN");
  });

  test("ports: port.model/queues on connect, port.capacity on hand-made sockets, a named link", async () => {
    const x = await compile("ports.py");
    assert.deepEqual(
      x.links.map((l) => l.name),
      ["link0", "fast"],
    );
    assert.deepEqual(x.links[0]?.constraints, [c("layer", "==", 2)]);
    assert.deepEqual(x.links[1]?.constraints, [c("capacity", "==", gbps(10))]);
    const a = node(x, "a");
    assert.deepEqual(a.constraints, [c("platform", "==", "x86_64")]);
    assert.deepEqual(node(x, "b").constraints, [c("host", "==", "x42")]);
    assert.deepEqual(a.sockets[0], {
      index: 0,
      addrs: [],
      constraints: [c("port.model", "==", "e1000"), c("port.queues", "==", 4)],
    });
    assert.deepEqual(a.sockets[1], {
      index: 1,
      addrs: ["192.168.1.1/24"],
      constraints: [c("port.capacity", ">=", gbps(10))],
    });
    assert.deepEqual(node(x, "b").sockets[1]?.constraints, [
      c("port.capacity", ">=", gbps(10)),
      c("port.model", "==", "virtio"),
    ]);
  });

  test("infranet-names: experimentnetresolution == False, emulation == click, us()", async () => {
    const x = await compile("infranet-names.py");
    assert.deepEqual(x.parameters, { routing: "static", nameResolution: "infranet", emulation: "click" });
    assert.deepEqual(x.links[1]?.constraints, [c("latency", "==", us(500))]);
    assert.deepEqual(node(x, "r").sockets[1]?.addrs, ["10.0.1.2/24"]);
  });

  test("operators: == != < <= > >= and reflected comparisons", async () => {
    const x = await compile("operators.py");
    assert.deepEqual(node(x, "n").constraints, [
      c("proc.cores", ">", 2),
      c("proc.cores", "<=", 16),
      c("memory.capacity", ">", gb(4)),
      c("memory.capacity", "<", gb(64)),
      c("disk.capacity", ">=", tb(1)),
      c("host", "!=", "x0"),
      c("platform", "==", "x86_64"),
      c("gpu.model", "==", "a100"),
      c("metal", "!=", true),
    ]);
    assert.equal(node(x, "m").image, "2204");
    assert.deepEqual(x.links[0]?.constraints, [
      c("capacity", ">=", mbps(10)),
      c("latency", "<=", ms(5)),
      c("loss", "<", 0.1),
      c("kind", "==", "wifi_ac"),
    ]);
  });

  test("ring: addresses computed with the standard library", async () => {
    const x = await compile("ring.py");
    assert.equal(x.links.length, 8);
    assert.deepEqual(node(x, "r0").sockets[0]?.addrs, ["10.10.0.1/30"]);
    assert.deepEqual(node(x, "r0").sockets[1]?.addrs, ["10.10.0.30/30"]);
    // r7's first link is hop 6 (r6-r7, 10.10.0.24/30), where it is the second host.
    assert.deepEqual(node(x, "r7").sockets[0]?.addrs, ["10.10.0.26/30"]);
    assert.deepEqual(node(x, "r7").sockets[1]?.addrs, ["10.10.0.29/30"]);
  });
});

describe("python model results", () => {
  test("source locations point at the lines that made each element", async () => {
    const file = `${examples}hello-world.py`;
    const r = await runPythonModel(file);
    assert.deepEqual(r.origins.get("nodes[1]")?.location, { file, line: 9, column: 5 });
    assert.deepEqual(r.origins.get("links[0]")?.location, { file, line: 12, column: 8 });
    assert.deepEqual(r.origins.get("nodes[0].sockets[0].addrs[0]")?.location, { file, line: 15, column: 1 });
  });

  test("the same script gives byte-identical XIR on every run, even iterating a set", async () => {
    const source = [
      "from mergexp import *",
      "net = Network('sets')",
      "names = {'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'}",
      "nodes = [net.node(n) for n in names]",
      "net.connect(nodes)",
      "experiment(net)",
    ].join("\n");
    const one = await runPythonSource(source, "sets.py");
    const two = await runPythonSource(source, "sets.py");
    assert.equal(one.experiment.nodes.length, 8);
    assert.equal(canonicalJSON(one.experiment), canonicalJSON(two.experiment));
  });

  test("what the script prints comes back as output and never corrupts the XIR", async () => {
    const source = [
      "import sys",
      "from mergexp import *",
      'print(\'{"ok": false, "not": "xir"}\')',
      "sys.stderr.write('to stderr\\n')",
      "net = Network('noisy')",
      "a, b = net.node('a'), net.node('b')",
      "net.connect([a, b])",
      "print('made', len(net.nodes), 'nodes')",
      "experiment(net)",
    ].join("\n");
    const r = await runPythonSource(source, "noisy.py");
    assert.equal(r.experiment.name, "noisy");
    assert.equal(r.experiment.nodes.length, 2);
    assert.match(r.output, /"not": "xir"/);
    assert.match(r.output, /made 2 nodes/);
    assert.match(r.output, /to stderr/);
    const printed = r.diagnostics.find((d) => d.code === "model-output");
    assert.equal(printed?.severity, "warning");
    assert.match(printed?.message ?? "", /made 2 nodes/);

    const chatty = await runPythonSource(
      "from mergexp import *\nfor i in range(100000): print('line', i)\nnet = Network('c')\nnet.node('a')\nexperiment(net)\n",
      "chatty.py",
    );
    assert.equal(chatty.experiment.nodes.length, 1);
    assert.ok(chatty.output.length <= 2 * 64 * 1024 + 20, "output is cut");
    const said = chatty.diagnostics.find((d) => d.code === "model-output")?.message ?? "";
    assert.match(said, /line 19\n\.\.\. \(\d+ more lines in the output\)$/);
  });

  test("a plain number where a unit belongs is a located warning", async () => {
    const source = [
      "from mergexp import *",
      "net = Network('w')",
      "a = net.node('a', memory.capacity >= 8)",
      "experiment(net)",
    ].join("\n");
    const r = await runPythonSource(source, "w.py");
    assert.deepEqual(node(r.experiment, "a").constraints, [c("memory.capacity", ">=", 8)]);
    const w = r.diagnostics.find((d) => d.code === "mergexp-warning");
    assert.match(w?.message ?? "", /8 bytes; did you mean gb\(8\)/);
    assert.deepEqual(w?.location, { file: "w.py", line: 3, column: 19 });

    const viz = await runPythonSource(
      "from mergexp import *\nnet = Network('v')\na = net.node('a')\na.color('red')\nexperiment(net)\n",
      "viz.py",
    );
    const ignored = viz.diagnostics.find((d) => d.code === "mergexp-warning");
    assert.match(ignored?.message ?? "", /a\.color\('red'\) has no effect/);
    assert.equal(ignored?.location?.line, 4);
  });

  test("v1 through a module alias or named imports is not the v0 API", async () => {
    const aliased = [
      "import mergexp as mx",
      "net = mx.Network('alias', mx.routing == mx.static)",
      "a, b = net.node('a', mx.proc.cores >= 2), net.node('b')",
      "l = net.connect([a, b], mx.latency == mx.ms(1))",
      "l[a].socket.addrs = mx.ip4('10.0.0.1/24')",
      "mx.experiment(net)",
    ].join("\n");
    const named = [
      "from mergexp import Network, experiment, ip4, latency, ms, proc, routing, static",
      "net = Network('alias', routing == static)",
      "a, b = net.node('a', proc.cores >= 2), net.node('b')",
      "l = net.connect([a, b], latency == ms(1))",
      "l[a].socket.addrs = ip4('10.0.0.1/24')",
      "experiment(net)",
    ].join("\n");
    const one = await runPythonSource(aliased, "alias.py");
    const two = await runPythonSource(named, "named.py");
    assert.deepEqual(one.experiment.parameters, { routing: "static" });
    assert.deepEqual(node(one.experiment, "a").constraints, [c("proc.cores", ">=", 2)]);
    assert.equal(canonicalJSON(one.experiment), canonicalJSON(two.experiment));
  });

  test("concurrent runs stay apart", async () => {
    const model = (i: number) =>
      `from mergexp import *\nnet = Network('n${i}')\nfor j in range(${i + 1}):\n    net.node('x%d' % j)\nexperiment(net)\n`;
    const runs = await Promise.all([0, 1, 2, 3, 4].map((i) => runPythonSource(model(i), `m${i}.py`)));
    assert.deepEqual(
      runs.map((r) => `${r.experiment.name}:${r.experiment.nodes.length}`),
      ["n0:1", "n1:2", "n2:3", "n3:4", "n4:5"],
    );
  });

  test("the script runs as __main__, with __file__ and argv naming it", async () => {
    const source = [
      "import sys",
      "from mergexp import *",
      "net = Network('main')",
      "net.node('argv=' + ','.join(sys.argv))",
      "net.node('file=' + __file__)",
      "if __name__ == '__main__':",
      "    experiment(net)",
    ].join("\n");
    const r = await runPythonSource(source, "models/main.py");
    assert.deepEqual(
      r.experiment.nodes.map((n) => n.name),
      ["argv=models/main.py", "file=models/main.py"],
    );
  });

  test("net.useSRIOV() asks later sockets for a virtual function (port.vf)", async () => {
    const source = [
      "from mergexp import *",
      "net = Network('sriov')",
      "a, b, c = net.node('a'), net.node('b'), net.node('c')",
      "net.connect([a, b])",
      "net.useSRIOV()",
      "net.connect([b, c], port.capacity >= gbps(10))",
      "experiment(net)",
    ].join("\n");
    const r = await runPythonSource(source, "sriov.py");
    assert.deepEqual(node(r.experiment, "b").sockets[0]?.constraints, []);
    assert.deepEqual(node(r.experiment, "b").sockets[1]?.constraints, [
      c("port.vf", "==", true),
      c("port.capacity", ">=", gbps(10)),
    ]);
  });

  test("unnamed links count past names the script gave", async () => {
    const source = [
      "from mergexp import *",
      "net = Network('names')",
      "a, b, c = net.node('a'), net.node('b'), net.node('c')",
      "net.connect([a, b], name='link1')",
      "net.connect([b, c])",
      "net.connect([a, c])",
      "x = net.connect([a, b, c])",
      "x.name = 'backbone'",
      "experiment(net)",
    ].join("\n");
    const r = await runPythonSource(source, "names.py");
    assert.deepEqual(
      r.experiment.links.map((l) => l.name),
      ["link1", "link0", "link2", "backbone"],
    );
  });
});
