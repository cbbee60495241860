/**
 * Hypervisors offer kinds (vm, container) and overcommit ratios; the engine
 * packs virtual nodes by cores and memory never beyond the policy, gives each
 * the kind it asks for (or the hypervisor's first), and a failure names which
 * hypervisor ran out of what.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AllocationTable, checkRealizations, formatProblem, prepareInternet, realize } from "@merge/realize";
import { canonicalHash, type Experiment, type Facility, type HypervisorInfo, type ResourceInternet } from "@merge/xir";
import { c, experiment, facility, GiB, node, nodes } from "./fixtures.ts";

function hypervisors(virt: HypervisorInfo | undefined): ResourceInternet {
  const f: Facility = facility({
    name: "f",
    racks: [
      nodes("h", 2, {
        alloc: ["virtual"],
        props: { "proc.cores": 8, "memory.capacity": 32 * GiB, "disk.capacity": 1024 * GiB },
      }),
    ],
  });
  if (virt) for (const r of f.resources) if (r.alloc.includes("virtual")) r.virt = virt;
  return { facilities: [f], interconnects: [] };
}

/** `count` VMs of 1 core and 4 GiB in a chain. */
function vms(count: number, extra = [c("virt.kind", "==", "vm")]): Experiment {
  const ns = Array.from({ length: count }, (_, i) =>
    node(`v${i}`, [c("proc.cores", "==", 1), c("memory.capacity", "==", 4 * GiB), ...extra]),
  );
  const links = ns.slice(1).map((n, i) => ({ ends: [`v${i}`, n.name] }));
  return experiment(`vms${count}`, ns, links);
}

const policy: HypervisorInfo = { kinds: ["vm", "container"], overcommit: { cores: 2, memory: 1.25 } };

describe("packing virtual machines by the hypervisors' policy", () => {
  test("20 VMs on two hypervisors: 10 each (memory 32 GiB × 1.25 = 40 GiB holds ten 4 GiB VMs), all VMs", () => {
    const net = hypervisors(policy);
    const x = vms(20);
    const r = realize(x, net, new AllocationTable(), { id: "r.vms.p" });
    if (!r.ok) assert.fail(r.problems.map(formatProblem).join("; "));
    const per = new Map<string, number>();
    for (const n of r.realization.nodes) {
      assert.equal(n.mode, "virtual");
      assert.equal(n.kind, "vm");
      per.set(n.resource, (per.get(n.resource) ?? 0) + 1);
    }
    assert.deepEqual([...per.values()].sort(), [10, 10]);
    assert.deepEqual(checkRealizations(net, [{ experiment: x, realization: r.realization }]), []);
    // The reservation holds under the same policy, and nothing more fits.
    const table = new AllocationTable();
    assert.deepEqual(table.reserve(r.records, prepareInternet(net)), { ok: true });
    const more = realize(vms(1), net, table, { id: "r.more.p" });
    assert.equal(more.ok, false);
    const why = more.ok ? "" : more.problems.map(formatProblem).join("; ");
    assert.match(why, /no hypervisor has room for it as a vm of 1 cores, 4 GiB memory/);
    assert.match(why, /h0 ran out of memory: 0 B left of 40 GiB \(1\.25× overcommit of 32 GiB\)/);
    assert.match(why, /h1 ran out of memory/);
  });

  test("without overcommit the same 20 do not fit, and the failure names the cores that ran out", () => {
    const r = realize(vms(20), hypervisors({ kinds: ["vm"] }), new AllocationTable(), { id: "r.vms.p" });
    assert.equal(r.ok, false);
    const why = r.ok ? "" : r.problems.map(formatProblem).join("; ");
    assert.match(why, /h0 ran out of cores: 0 left of 8/);
    assert.match(why, /h1 ran out of cores: 0 left of 8/);
  });

  test("kinds: a node gets the hypervisor's first kind unless it asks; a kind not offered is refused", () => {
    const net = hypervisors({ kinds: ["container", "vm"] });
    const x = experiment(
      "mixed",
      [node("any"), node("vm", [c("virt.kind", "==", "vm")]), node("nic", [], 1, [[c("port.model", "==", "e1000")]])],
      [],
    );
    x.links.push({
      name: "l",
      constraints: [],
      properties: {},
      endpoints: [
        { node: "any", socket: 0 },
        { node: "nic", socket: 0 },
      ],
    });
    x.nodes[0]!.sockets.push({ index: 0, addrs: [], constraints: [] });
    const r = realize(x, net, new AllocationTable(), { id: "r.mixed.p" });
    if (!r.ok) assert.fail(r.problems.map(formatProblem).join("; "));
    const kind = Object.fromEntries(r.realization.nodes.map((n) => [n.node, n.kind]));
    assert.deepEqual(kind, { any: "container", vm: "vm", nic: "vm" });
    const ifs = Object.fromEntries(r.realization.nodes.map((n) => [n.node, n.interfaces[0]?.model]));
    assert.equal(ifs.any, undefined, "a container's veth has no NIC model");
    assert.equal(ifs.nic, "e1000");
    assert.deepEqual(checkRealizations(net, [{ experiment: x, realization: r.realization }]), []);

    const only = realize(vms(1), hypervisors({ kinds: ["container"] }), new AllocationTable(), { id: "r.c.p" });
    assert.equal(only.ok, false);
    assert.match(only.ok ? "" : only.problems.map(formatProblem).join("; "), /node v0: .*virt\.kind == "vm"/);
  });

  test("profile settings are not matched against hypervisors: clock.dilation makes a VM, cpu.share a virtual node", () => {
    const net = hypervisors({ kinds: ["container", "vm"] });
    const x = experiment(
      "profiles",
      [
        node("slow", [c("clock.dilation", "==", 10), c("cpu.share", "==", 0.5)]),
        node("capped", [c("cpu.share", "==", 0.25)]),
      ],
      [{ ends: ["slow", "capped"] }],
    );
    const r = realize(x, net, new AllocationTable(), { id: "r.profiles.p" });
    if (!r.ok) assert.fail(r.problems.map(formatProblem).join("; "));
    const kind = Object.fromEntries(r.realization.nodes.map((n) => [n.node, [n.mode, n.kind]]));
    assert.deepEqual(kind, { slow: ["virtual", "vm"], capped: ["virtual", "container"] });
    assert.deepEqual(checkRealizations(net, [{ experiment: x, realization: r.realization }]), []);
    // The realization is of the model as written.
    assert.equal(r.realization.experiment, canonicalHash(x));
    const refused = realize(x, hypervisors({ kinds: ["container"] }), new AllocationTable(), { id: "r.c.p" });
    assert.equal(refused.ok, false);
    assert.match(refused.ok ? "" : refused.problems.map(formatProblem).join("; "), /node slow: .*virt\.kind == "vm"/);
  });
});

describe("shared hosts that take one node per experiment (ProtoGENI version zero)", () => {
  function shared(count: number): ResourceInternet {
    const f: Facility = facility({
      name: "wide",
      racks: [
        nodes("s", count, {
          alloc: ["virtual"],
          props: { "proc.cores": 16, "memory.capacity": 64 * GiB, "disk.capacity": 1024 * GiB },
        }),
      ],
    });
    for (const r of f.resources)
      if (r.alloc.includes("virtual")) r.virt = { kinds: ["container", "vm"], sharing: "one-per-experiment" };
    return { facilities: [f], interconnects: [] };
  }

  test("an experiment gets one node per shared host; other experiments share the hosts; one more node is refused by name", () => {
    const net = shared(4);
    const x = vms(4, []);
    const table = new AllocationTable();
    const ix = prepareInternet(net);
    const r = realize(x, net, table, { id: "r.a.p" });
    if (!r.ok) assert.fail(r.problems.map(formatProblem).join("; "));
    assert.deepEqual(new Set(r.realization.nodes.map((n) => n.resource)).size, 4, "four nodes on four hosts");
    assert.deepEqual(checkRealizations(net, [{ experiment: x, realization: r.realization }]), []);
    assert.deepEqual(table.reserve(r.records, ix), { ok: true });

    // Another experiment shares the same four hosts.
    const y = vms(4, []);
    y.name = "other";
    const r2 = realize(y, net, table, { id: "r.b.p" });
    if (!r2.ok) assert.fail(r2.problems.map(formatProblem).join("; "));
    assert.equal(new Set(r2.realization.nodes.map((n) => n.resource)).size, 4);

    // Five nodes of one experiment need five hosts.
    const five = realize(vms(5, []), net, table, { id: "r.c.p" });
    assert.equal(five.ok, false);
    const why = five.ok ? "" : five.problems.map(formatProblem).join("; ");
    assert.match(why, /s\d already has this experiment's one node \(one-per-experiment\)/);
  });

  test("the checker refuses two nodes of one experiment on a shared host", () => {
    const net = shared(2);
    const x = vms(2, []);
    const r = realize(x, net, new AllocationTable(), { id: "r.a.p" });
    if (!r.ok) assert.fail(r.problems.map(formatProblem).join("; "));
    const moved = structuredClone(r.realization);
    moved.nodes[1]!.resource = moved.nodes[0]!.resource;
    const problems = checkRealizations(net, [{ experiment: x, realization: moved }]).map((p) => p.message);
    assert.ok(
      problems.some((m) => /takes one node per experiment, not v0, v1/.test(m)),
      problems.join("\n"),
    );
  });
});
