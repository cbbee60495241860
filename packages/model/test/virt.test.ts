/**
 * Node virtualization in the model: `virt`, `virt.kind` and NIC models in
 * TypeScript and Python give the same XIR, and static analysis refuses a node
 * no kind (bare metal, VM, container) can satisfy, naming why each is out.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { nodeProfile, possibleKinds } from "@merge/xir";
import {
  clock,
  compileExperiment,
  compilePythonSource,
  cores,
  cpu,
  custom,
  type Diagnostic,
  metal,
  Network,
  nic,
  virt,
} from "../src/index.ts";

const errors = (ds: readonly Diagnostic[]) => ds.filter((d) => d.severity === "error");

describe("virt and NIC models in TypeScript", () => {
  test("virt(true), virt.kind and nic compile to XIR constraints", () => {
    const net = new Network("v");
    const x = net.node("x", cores.eq(4), virt(true), virt.kind.eq("vm"));
    const y = net.node("y", virt(false));
    const l = net.connect([x, y]);
    l.socket(x).with(nic("virtio"));
    const r = compileExperiment(net.toXIR());
    assert.deepEqual(errors(r.diagnostics), []);
    const xn = r.xir!.nodes[0]!;
    assert.deepEqual(
      xn.constraints.map((c) => [c.prop, c.op, c.value]),
      [
        ["proc.cores", "==", 4],
        ["virt", "==", true],
        ["virt.kind", "==", "vm"],
      ],
    );
    assert.deepEqual(xn.sockets[0]!.constraints, [{ prop: "port.model", op: "==", value: "virtio" }]);
  });

  test("a VM on metal == true is refused, saying why each kind is out", () => {
    const net = new Network("v");
    const a = net.node("a", metal(true), virt.kind.eq("vm"));
    net.connect([a, net.node("b")]);
    const r = compileExperiment(net.toXIR());
    const [e, ...rest] = errors(r.diagnostics);
    assert.equal(rest.length, 0);
    assert.equal(e!.code, "kind-contradiction");
    assert.equal(e!.path, "nodes[0].constraints[1]");
    assert.match(e!.message, /node a: no kind of node satisfies/);
    assert.match(e!.message, /metal: virt\.kind == "vm" rules out bare metal/);
    assert.match(e!.message, /vm: metal == true rules out a virtual machine/);
  });

  test("a NIC model the kind cannot give is refused: virtio on bare metal, any model on a container", () => {
    const net = new Network("v");
    const a = net.node("a", metal(true));
    const c = net.node("c", virt.kind.eq("container"));
    const l = net.connect([a, c]);
    l.socket(a).with(nic("virtio"));
    l.socket(c).with(nic("e1000"));
    const es = errors(compileExperiment(net.toXIR()).diagnostics);
    assert.equal(es.length, 2);
    assert.match(es[0]!.message, /node a: .*metal: socket 0 asks port\.model == "virtio", but bare metal gives e1000/);
    assert.match(es[1]!.message, /node c: .*container: socket 0 asks port\.model == "e1000", but a container has veth/);
  });

  test("virt(false) with a kind, and a hardware NIC on a VM, are refused; a NIC model alone leaves the kind open", () => {
    const net = new Network("v");
    const a = net.node("a", virt(false), virt.kind.eq("container"));
    const b = net.node("b", virt.kind.eq("vm"));
    const c = net.node("c");
    const l = net.lan([a, b, c]);
    l.socket(b).with(nic("mlx5"));
    l.socket(c).with(nic("e1000"));
    const es = errors(compileExperiment(net.toXIR()).diagnostics);
    assert.deepEqual(
      es.map((d) => d.message.split(":")[0]),
      ["node a", "node b"],
    );
    assert.match(es[1]!.message, /a virtual machine gives virtio, e1000, e1000e, rtl8139/);
  });
});

describe("virt and NIC models in Python", () => {
  test("virt == True, virt.kind == 'vm' and link[x].spec(nic == virtio) give the TypeScript twin's XIR", async () => {
    const r = await compilePythonSource(
      [
        "from mergexp import *",
        "net = Network('v')",
        "x = net.node('x', proc.cores == 4, virt == True, virt.kind == 'vm')",
        "y = net.node('y', virt == False)",
        "link = net.connect([x, y])",
        "link[x].spec(nic == virtio)",
        "experiment(net)",
      ].join("\n"),
      "v.py",
    );
    assert.deepEqual(errors(r.diagnostics), []);
    const net = new Network("v");
    const x = net.node("x", cores.eq(4), virt(true), virt.kind.eq("vm"));
    const y = net.node("y", virt(false));
    net.connect([x, y]).socket(x).with(nic("virtio"));
    const twin = compileExperiment(net.toXIR());
    assert.deepEqual(r.xir!.nodes, twin.xir!.nodes);
  });

  test("the same contradictions are refused with the script's line", async () => {
    const r = await compilePythonSource(
      [
        "from mergexp import *",
        "net = Network('v')",
        "a = net.node('a', metal == True, virt.kind == 'vm')",
        "b = net.node('b')",
        "net.connect([a, b])",
        "experiment(net)",
      ].join("\n"),
      "v.py",
    );
    const [e] = errors(r.diagnostics);
    assert.equal(e?.code, "kind-contradiction");
    assert.equal(e?.location?.line, 3);
  });

  test("bad values name what is valid", async () => {
    const r = await compilePythonSource(
      "from mergexp import *\nnet = Network('v')\nnet.node('a', virt.kind == 'lxc')\nexperiment(net)\n",
      "v.py",
    );
    const [e] = errors(r.diagnostics);
    assert.match(e!.message, /virt\.kind == 'lxc': unknown value; valid values are vm, container/);
  });
});

describe("profile settings: cpu.share and clock.dilation", () => {
  test("TypeScript and Python give the same XIR; the settings imply the kind (dilation needs a VM)", async () => {
    const net = new Network("p");
    const a = net.node("a", cpu.share.eq(0.5), clock.dilation.eq(10));
    const b = net.node("b", cpu.share.eq(0.25));
    net.connect([a, b]);
    const ts = compileExperiment(net.toXIR());
    assert.deepEqual(errors(ts.diagnostics), []);
    assert.deepEqual(ts.xir!.nodes[0]!.constraints, [
      { prop: "cpu.share", op: "==", value: 0.5 },
      { prop: "clock.dilation", op: "==", value: 10 },
    ]);
    const py = await compilePythonSource(
      [
        "from mergexp import *",
        "net = Network('p')",
        "a = net.node('a', cpu.share == 0.5, clock.dilation == 10)",
        "b = net.node('b', cpu.share == 0.25)",
        "net.connect([a, b])",
        "experiment(net)",
      ].join("\n"),
      "p.py",
    );
    assert.deepEqual(errors(py.diagnostics), []);
    assert.deepEqual(py.xir!.nodes, ts.xir!.nodes);
    assert.deepEqual(nodeProfile(ts.xir!.nodes[0]!.constraints), { cpuShare: 0.5, clockDilation: 10 });
    assert.deepEqual(possibleKinds(ts.xir!.nodes[0]!.constraints, [[]]).kinds, ["vm"]);
    assert.deepEqual(possibleKinds(ts.xir!.nodes[1]!.constraints, [[]]).kinds, ["vm", "container"]);
  });

  test("nonsense values and comparisons are refused, naming the valid range", () => {
    const net = new Network("p");
    const a = net.node("a", cpu.share.eq(1.5));
    const b = net.node("b", clock.dilation.eq(0.5));
    const c = net.node("c", custom("node", "cpu.share", ">=", 0.5));
    net.lan([a, b, c]);
    const es = errors(compileExperiment(net.toXIR()).diagnostics);
    assert.deepEqual(
      es.map((e) => [e.code, e.path]),
      [
        ["bad-value", "nodes[0].constraints[0]"],
        ["bad-value", "nodes[1].constraints[0]"],
        ["wrong-op", "nodes[2].constraints[0]"],
      ],
    );
    assert.match(es[0]!.message, /cpu\.share is from 0\.01 to 1, got 1\.5/);
    assert.match(es[1]!.message, /clock\.dilation is from 1 to 1000, got 0\.5/);
    assert.match(es[2]!.message, /set it with ==/);
  });

  test("a dilated container or a CPU share on bare metal is a contradiction", () => {
    const net = new Network("p");
    const a = net.node("a", virt.kind.eq("container"), clock.dilation.eq(10));
    const b = net.node("b", metal(true), cpu.share.eq(0.5));
    net.connect([a, b]);
    const es = errors(compileExperiment(net.toXIR()).diagnostics);
    assert.equal(es.length, 2);
    assert.match(es[0]!.message, /node a: .*container: clock\.dilation == 10 needs a virtual machine, not a container/);
    assert.match(es[1]!.message, /node b: .*metal: cpu\.share == 0\.5 needs a virtual machine or a container/);
  });

  test("Python refuses them at the script's line", async () => {
    for (const [line, want] of [
      ["net.node('a', cpu.share == 0)", /cpu\.share == 0: must be at least 0\.01/],
      ["net.node('a', clock.dilation >= 10)", /clock\.dilation >= \.\.\.: clock\.dilation only accepts ==/],
      ["net.node('a', clock.dilation == 5000)", /must be at most 1000/],
    ] as const) {
      const r = await compilePythonSource(
        ["from mergexp import *", "net = Network('p')", line, "experiment(net)"].join("\n"),
        "p.py",
      );
      const [e] = errors(r.diagnostics);
      assert.match(e!.message, want);
      assert.equal(e!.location?.line, 3);
    }
  });
});
