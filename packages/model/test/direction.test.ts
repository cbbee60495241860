/**
 * One direction of a link: `link.toward(node, ...)` (TypeScript and Python) and
 * `rx.*` socket constraints give the direction that delivers to a node its own
 * capacity, latency or loss; the compiler keeps them on that node's socket,
 * refuses what cannot be directional (more in bad/: rx-loss, toward-kind,
 * node-twice: directions are named by node, so a node has one socket per link).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { type Constraint, canonicalJSON, type Experiment, towardConstraints } from "@merge/xir";
import { compileFile, compileSource, ModelError } from "../src/index.ts";
import { runPythonModel, runPythonSource } from "../src/python.ts";

const examples = join(import.meta.dirname, "..", "..", "..", "examples");
const c = (prop: string, op: Constraint["op"], value: Constraint["value"]): Constraint => ({ prop, op, value });

function socketOf(x: Experiment, link: number, node: string): Constraint[] {
  const ep = x.links[link]?.endpoints.find((e) => e.node === node);
  assert.ok(ep, `no endpoint ${node} on links[${link}]`);
  const s = x.nodes.find((n) => n.name === node)?.sockets[ep.socket];
  assert.ok(s);
  return s.constraints;
}

const TS_HEAD = `import { capacity, kind, latency, loss, mbps, ms, Network, nic, percent, rx } from "@merge/model";
const net = new Network("dir");
const a = net.node("a");
const b = net.node("b");
`;

describe("TypeScript: link.toward and rx.*", () => {
  test("the asymmetric example: the direction toward a on a's socket, the link keeps its values", async () => {
    const r = await compileFile(join(examples, "asymmetric.ts"));
    assert.ok(r.ok && r.xir, JSON.stringify(r.diagnostics));
    const x = r.xir;
    assert.deepEqual(x.links[0]?.constraints, [c("latency", "==", 10e6), c("capacity", "==", 10e6)]);
    assert.deepEqual(socketOf(x, 0, "a"), [c("rx.capacity", "==", 2e6), c("rx.latency", "==", 30e6)]);
    assert.deepEqual(socketOf(x, 0, "b"), []);
    const a = x.nodes.find((n) => n.name === "a")?.sockets[0];
    assert.ok(a);
    assert.deepEqual(towardConstraints(a), [c("capacity", "==", 2e6), c("latency", "==", 30e6)]);
  });

  test("toward is rx.* on the node's socket, after its other port constraints", async () => {
    const viaToward = await compileSource(
      `${TS_HEAD}const l = net.connect([a, b], latency.eq(ms(10)));
l.socket(b).with(nic("e1000"));
l.toward(b, latency.eq(ms(30)), loss.le(percent(1))).toward(a, capacity.le(mbps(2)));
export default net;
`,
    );
    const viaRx = await compileSource(
      `${TS_HEAD}const l = net.connect([a, b], latency.eq(ms(10)));
l.socket(b).with(nic("e1000"), rx.latency.eq(ms(30)), rx.loss.le(percent(1)));
l.socket(a).with(rx.capacity.le(mbps(2)));
export default net;
`,
    );
    assert.ok(viaToward.ok && viaToward.xir, JSON.stringify(viaToward.diagnostics));
    assert.ok(viaRx.ok && viaRx.xir, JSON.stringify(viaRx.diagnostics));
    assert.deepEqual(socketOf(viaToward.xir, 0, "b"), [
      c("port.model", "==", "e1000"),
      c("rx.latency", "==", 30e6),
      c("rx.loss", "<=", 0.01),
    ]);
    assert.deepEqual(socketOf(viaToward.xir, 0, "a"), [c("rx.capacity", "<=", 2e6)]);
    assert.deepEqual(viaToward.xir.links[0]?.constraints, [c("latency", "==", 10e6)]);
    assert.equal(canonicalJSON(viaToward.xir), canonicalJSON(viaRx.xir));
  });

  test("toward refuses a node that is not on the link", async () => {
    const r = await compileSource(
      `${TS_HEAD}const c = net.node("c");
const l = net.connect([a, b]);
net.connect([b, c]);
l.toward(c, latency.eq(ms(5)));
export default net;
`,
      "off.ts",
    );
    assert.equal(r.ok, false);
    assert.equal(r.diagnostics[0]?.code, "not-on-link");
    assert.match(r.diagnostics[0]?.message ?? "", /node c is not an endpoint of this link \(endpoints: a, b\)/);
    assert.equal(r.diagnostics[0]?.location?.line, 8);
  });

  test("contradictory constraints on one direction are an error; a direction differing from the link is not", async () => {
    const bad = await compileSource(
      `${TS_HEAD}const l = net.connect([a, b], latency.eq(ms(10)));
l.toward(b, latency.lt(ms(5)), latency.gt(ms(20)));
export default net;
`,
      "contra.ts",
    );
    assert.equal(bad.ok, false);
    const d = bad.diagnostics.find((x) => x.code === "contradiction");
    assert.ok(d, JSON.stringify(bad.diagnostics));
    assert.match(d.message, /socket 0 of node b: .*rx\.latency < 5 ms, rx\.latency > 20 ms/);
    assert.equal(d.location?.line, 6);
    assert.equal(bad.diagnostics.filter((x) => x.severity === "error").length, 1);
  });
});

describe("Python: link.toward", () => {
  test("asymmetric.py and asymmetric.ts give identical XIR, described and compiled", async () => {
    const py = join(examples, "python", "asymmetric.py");
    const ts = join(examples, "asymmetric.ts");
    const described = await runPythonModel(py);
    const tsRaw = await compileFile(ts, { noReticulate: true });
    assert.ok(tsRaw.ok && tsRaw.xir);
    assert.deepEqual(socketOf(described.experiment, 0, "a"), [
      c("rx.capacity", "==", 2e6),
      c("rx.latency", "==", 30e6),
    ]);
    assert.equal(canonicalJSON(described.experiment), canonicalJSON(tsRaw.xir));
    const pyFull = await compileFile(py);
    const tsFull = await compileFile(ts);
    assert.ok(pyFull.ok, JSON.stringify(pyFull.diagnostics));
    assert.equal(canonicalJSON(pyFull.xir), canonicalJSON(tsFull.xir));
  });

  test("toward returns the link, takes a node's name, and adds after port constraints", async () => {
    const { experiment } = await runPythonSource(
      [
        "from mergexp import *",
        "net = Network('dir')",
        "a, b = net.node('a'), net.node('b')",
        "l = net.connect([a, b], port.model == e1000, latency == ms(10))",
        "assert l.toward('b', loss <= 0.01) is l",
        "l.toward(a, capacity <= mbps(2))",
        "experiment(net)",
      ].join("\n"),
      "ok.py",
    );
    assert.deepEqual(socketOf(experiment, 0, "b"), [c("port.model", "==", "e1000"), c("rx.loss", "<=", 0.01)]);
    assert.deepEqual(socketOf(experiment, 0, "a"), [c("port.model", "==", "e1000"), c("rx.capacity", "<=", 2e6)]);
    assert.deepEqual(experiment.links[0]?.constraints, [c("latency", "==", 10e6)]);
  });

  const HEAD =
    "from mergexp import *\nnet = Network('x')\na, b, c = net.node('a'), net.node('b'), net.node('c')\nl = net.connect([a, b])\n";
  async function failure(line: string) {
    try {
      await runPythonSource(`${HEAD}${line}\nexperiment(net)\n`, "model.py");
    } catch (e) {
      assert.ok(e instanceof ModelError, `expected a ModelError, got ${e}`);
      const d = e.diagnostics[0];
      assert.ok(d);
      return d;
    }
    assert.fail("the script compiled, but it should have failed");
  }

  test("bad uses name the script's line and what toward takes", async () => {
    const kind = await failure("l.toward(b, kind == wifi_ac)");
    assert.equal(kind.code, "mergexp-element");
    assert.match(
      kind.message,
      /link\.toward\(b, \.\.\.\): kind == 'wifi_ac' cannot be set for one direction of a link; toward takes capacity, latency, loss/,
    );
    assert.equal(kind.location?.line, 5);

    const node = await failure("l.toward(b, proc.cores >= 2)");
    assert.equal(node.code, "mergexp-element");
    assert.match(node.message, /proc\.cores >= 2 cannot be set for one direction/);

    const bare = await failure("l.toward(b, latency)");
    assert.equal(bare.code, "mergexp-value");
    assert.match(bare.message, /latency given without a comparison, e\.g\. latency == ms\(10\)/);

    const off = await failure("l.toward(c, latency == ms(5))");
    assert.equal(off.code, "mergexp-topology");
    assert.match(off.message, /link\.toward\(c, \.\.\.\): that node is not on this link \(it joins a, b\)/);
    assert.equal(off.location?.line, 5);

    const unit = await failure("l.toward(b, latency == mbps(5))");
    assert.equal(unit.code, "mergexp-unit");
  });
});
