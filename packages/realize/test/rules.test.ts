import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AllocationTable, checkRealizations, prepareInternet, realize } from "@merge/realize";
import { canonicalJSON, type Experiment, linkOf, type Realization, type ResourceInternet } from "@merge/xir";
import {
  c,
  experiment,
  facility,
  Gbps,
  GiB,
  interconnect,
  Mbps,
  ms,
  node,
  nodes,
  ok,
  one,
  problems,
} from "./fixtures.ts";

/** Realize, check independently, and reserve into the table. */
function realizeChecked(
  internet: ResourceInternet,
  x: Experiment,
  table: AllocationTable,
  held: { experiment: Experiment; realization: Realization }[],
  id = `r${held.length}.${x.name}.p`,
): Realization {
  const ix = prepareInternet(internet);
  const r = realize(x, ix, table, { id });
  const rz = ok(r);
  if (!r.ok) throw new Error("unreachable");
  assert.deepEqual(table.reserve(r.records, ix), { ok: true });
  held.push({ experiment: x, realization: rz });
  assert.deepEqual(checkRealizations(internet, held), []);
  return rz;
}

describe("placement", () => {
  test("two nodes and a link: a path through their leaf, deterministic", () => {
    const net = one(facility({ name: "f", racks: [nodes("n", 4)] }));
    const x = experiment("pair", [node("a"), node("b")], [{ ends: ["a", "b"] }]);
    const rz = realizeChecked(net, x, new AllocationTable(), []);
    const seg = rz.links[0]!.segments[0]!;
    assert.deepEqual(
      seg.waypoints.map((w) => `${w.resource}:${w.port}`),
      [`${rz.nodes[0]!.resource}:eth1`, "leaf0:swp1", "leaf0:swp2", `${rz.nodes[1]!.resource}:eth1`],
    );
    assert.equal(rz.links[0]!.external, false);
    const again = ok(realize(x, net, new AllocationTable(), { id: rz.id }));
    assert.equal(canonicalJSON(again), canonicalJSON(rz));
  });

  test("scarcity: a request both classes satisfy gets the abundant class", () => {
    const big = { props: { "proc.cores": 16, "memory.capacity": 64 * GiB, "disk.capacity": 1024 * GiB } };
    const small = { props: { "proc.cores": 4, "memory.capacity": 10 * GiB, "disk.capacity": 256 * GiB } };
    // Big nodes first in the rack, so a placement by order alone would take them.
    const net = one(facility({ name: "f", racks: [[...nodes("big", 10, big), ...nodes("small", 200, small)]] }));
    const x = experiment(
      "s",
      [node("a", [c("memory.capacity", ">=", 8 * GiB)]), node("b", [c("memory.capacity", ">", 30 * GiB)])],
      [],
    );
    const rz = realizeChecked(net, x, new AllocationTable(), []);
    assert.match(rz.nodes[0]!.resource, /^small/);
    assert.match(rz.nodes[1]!.resource, /^big/);
  });

  test("locality: a connected experiment stays on one leaf, then one fabric", () => {
    const net = one(facility({ name: "f", racks: [nodes("a", 4), nodes("b", 4), nodes("c", 4)] }));
    const x = experiment(
      "chain",
      ["p", "q", "r", "s"].map((n) => node(n)),
      [{ ends: ["p", "q"] }, { ends: ["q", "r"] }, { ends: ["r", "s"] }],
    );
    const table = new AllocationTable();
    const held: { experiment: Experiment; realization: Realization }[] = [];
    const rz = realizeChecked(net, x, table, held);
    assert.equal(new Set(rz.nodes.map((n) => n.resource[0])).size, 1, "all four on one leaf");
    // Rack a is full now; a second chain goes whole onto the next leaf: no spine hops.
    const rz2 = realizeChecked(net, x, table, held);
    assert.equal(new Set(rz2.nodes.map((n) => n.resource[0])).size, 1);
    for (const l of rz2.links) assert.ok(l.segments[0]!.waypoints.every((w) => w.resource !== "spine"));
  });

  test("fragmented facility: scattered free nodes still realize, across leaves", () => {
    const net = one(facility({ name: "f", racks: [nodes("a", 4), nodes("b", 4), nodes("c", 4)] }));
    const table = new AllocationTable();
    const held: { experiment: Experiment; realization: Realization }[] = [];
    // Take 3 of 4 in every rack with single-node experiments, pinned by host.
    for (const id of ["a0", "a1", "a2", "b0", "b2", "b3", "c1", "c2", "c3"]) {
      realizeChecked(net, experiment(`pin-${id}`, [node("x", [c("host", "==", id)])], []), table, held);
    }
    const x = experiment(
      "tri",
      ["p", "q", "r"].map((n) => node(n)),
      [{ ends: ["p", "q", "r"] }],
    );
    const rz = realizeChecked(net, x, table, held);
    assert.deepEqual(rz.nodes.map((n) => n.resource).sort(), ["a3", "b1", "c0"]);
    const seg = rz.links[0]!.segments;
    assert.equal(seg.length, 3, "a multipoint link has a segment per endpoint");
    const hub = seg[0]!.waypoints.at(-1)!.resource;
    assert.ok(seg.every((s) => s.waypoints.at(-1)!.resource === hub));
    const more = realize(experiment("one-more", [node("z"), node("y")], [{ ends: ["z", "y"] }]), net, table);
    assert.deepEqual(problems(more), [
      "node z: all 12 resources that could host it are taken: 12 allocated to other experiments",
      "node y: all 12 resources that could host it are taken: 12 allocated to other experiments",
    ]);
  });

  test("metal is honoured both ways; exact sizes no machine has become a VM", () => {
    const hv = {
      alloc: ["physical", "virtual"] as ("physical" | "virtual")[],
      props: { "proc.cores": 32, "memory.capacity": 128 * GiB, "disk.capacity": 2048 * GiB },
    };
    const net = one(facility({ name: "f", racks: [[...nodes("m", 2), ...nodes("h", 2, hv)]] }));
    const x = experiment(
      "modes",
      [
        node("bare", [c("metal", "==", true)]),
        node("vm", [c("metal", "==", false)]),
        node("exact", [c("proc.cores", "==", 2), c("memory.capacity", "==", 4 * GiB)]),
      ],
      [],
    );
    const rz = realizeChecked(net, x, new AllocationTable(), []);
    const [bare, vm, exact] = rz.nodes;
    assert.equal(bare!.mode, "physical");
    assert.equal(vm!.mode, "virtual");
    assert.match(vm!.resource, /^h/);
    assert.equal(exact!.mode, "virtual");
    assert.deepEqual([exact!.alloc.cores, exact!.alloc.memory], [2, 4 * GiB]);
    // metal == false on a facility without hypervisors cannot be met.
    const none = one(facility({ name: "g", racks: [nodes("m", 2)] }));
    assert.match(
      problems(realize(experiment("v", [node("vm", [c("metal", "==", false)])], []), none))[0]!,
      /node vm: metal == false/,
    );
  });

  test("VM packing: VMs fill a hypervisor before the next; remaining capacity counts other realizations", () => {
    const hv = {
      alloc: ["virtual"] as "virtual"[],
      props: { "proc.cores": 8, "memory.capacity": 32 * GiB, "disk.capacity": 1024 * GiB },
    };
    const net = one(facility({ name: "f", racks: [nodes("h", 3, hv)] }));
    const table = new AllocationTable();
    const held: { experiment: Experiment; realization: Realization }[] = [];
    const vms = (name: string, n: number) =>
      experiment(
        name,
        Array.from({ length: n }, (_, i) => node(`v${i}`, [c("proc.cores", "==", 2)])),
        [],
      );
    const first = realizeChecked(net, vms("a", 6), table, held);
    const per = new Map<string, number>();
    for (const n of first.nodes) per.set(n.resource, (per.get(n.resource) ?? 0) + 1);
    assert.deepEqual([...per.values()].sort(), [2, 4], "4 VMs of 2 cores fill an 8-core host, 2 go to the next");
    // 24 cores, 12 taken: 6 more VMs fit, 7 do not.
    assert.match(problems(realize(vms("b", 7), net, table))[0]!, /proc\.cores == 2/);
    realizeChecked(net, vms("c", 6), table, held);
  });
});

describe("interfaces", () => {
  test("more links than ports: virtual interfaces trunked on a port, each with its own VLAN", () => {
    const net = one(facility({ name: "f", racks: [nodes("n", 4)] }));
    const x = experiment(
      "star",
      ["hub", "a", "b", "c"].map((n) => node(n, [c("metal", "==", true)])),
      [{ ends: ["hub", "a"] }, { ends: ["hub", "b"] }, { ends: ["hub", "c"] }],
    );
    const rz = realizeChecked(net, x, new AllocationTable(), []);
    const hub = rz.nodes.find((n) => n.node === "hub")!;
    assert.equal(hub.interfaces.length, 3);
    assert.ok(hub.interfaces.every((i) => i.virtual && i.port === "eth1"));
    const vlans = hub.interfaces.map((i) => i.vlan);
    assert.equal(new Set(vlans).size, 3);
    assert.ok(vlans.every((v) => typeof v === "number"));
    const leaf = rz.nodes.find((n) => n.node === "a")!;
    assert.equal(leaf.interfaces[0]!.virtual, false, "a node with a port per link uses access ports");
  });

  test("trunking stays within the port's line rate", () => {
    const net = one(facility({ name: "f", racks: [nodes("n", 4, { ports: [{ capacity: 1 * Gbps }] })] }));
    const x = experiment(
      "fat",
      ["hub", "a", "b"].map((n) => node(n)),
      [
        { ends: ["hub", "a"], constraints: [c("capacity", ">=", 600 * Mbps)] },
        { ends: ["hub", "b"], constraints: [c("capacity", ">=", 600 * Mbps)] },
      ],
    );
    assert.match(problems(realize(x, net))[0]!, /node hub: .*ports/);
  });

  test("NIC model constraints choose the resource and port", () => {
    const net = one(
      facility({
        name: "f",
        racks: [
          [
            ...nodes("e", 3, { ports: [{ capacity: 1 * Gbps, model: "e1000e" }] }),
            ...nodes("m", 1, {
              ports: [
                { capacity: 1 * Gbps, model: "e1000e" },
                { capacity: 100 * Gbps, model: "mlx5" },
              ],
            }),
          ],
        ],
      }),
    );
    const a = node("a", [], 1, [[c("port.model", "==", "mlx5")]]);
    const x: Experiment = {
      ...experiment("nic", [a, node("b", [], 1)], []),
      links: [
        linkOf("l", [
          ["a", 0],
          ["b", 0],
        ]),
      ],
    };
    const rz = realizeChecked(net, x, new AllocationTable(), []);
    const ea = rz.nodes.find((n) => n.node === "a")!;
    assert.equal(ea.resource, "m0");
    assert.equal(ea.interfaces[0]!.port, "eth2");
    const bad = node("a", [], 1, [[c("port.model", "==", "bnxt")]]);
    assert.match(problems(realize({ ...x, nodes: [bad, node("b", [], 1)] }, net))[0]!, /port\.model == "bnxt"/);
  });
});

describe("links", () => {
  test("emulated links are cut at an emulator; plain links are not", () => {
    const two = { ports: [{ capacity: 10 * Gbps }, { capacity: 10 * Gbps }] };
    const net = one(facility({ name: "f", racks: [nodes("a", 2, two), nodes("b", 2, two)], emulators: 1 }));
    const x = experiment(
      "emu",
      ["p", "q", "r", "s"].map((n) => node(n)),
      [
        { name: "slow", ends: ["p", "q"], constraints: [c("latency", "==", 10 * ms), c("loss", "==", 0.01)] },
        { name: "thin", ends: ["q", "r"], constraints: [c("capacity", "==", 100 * Mbps)] },
        { name: "full", ends: ["r", "s"], constraints: [c("capacity", "==", 10 * Gbps)] },
        { name: "lan", ends: ["p", "r", "s"], constraints: [c("latency", "<=", 5 * ms)] },
      ],
    );
    const rz = realizeChecked(net, x, new AllocationTable(), []);
    const byName = new Map(rz.links.map((l) => [l.link, l]));
    const slow = byName.get("slow")!;
    assert.deepEqual(slow.emulator, { facility: "f", resource: "emu0" });
    assert.deepEqual(slow.emulation, { latency: 10 * ms, loss: 0.01 });
    assert.equal(slow.segments.length, 2);
    for (const s of slow.segments) {
      assert.equal(s.endpoints.length, 1);
      assert.equal(s.waypoints.at(-1)!.resource, "emu0");
    }
    // The two halves never share a tag: traffic cannot bypass the emulator.
    const tagsOf = (s: (typeof slow.segments)[number]) =>
      new Set(s.waypoints.flatMap((w) => [`v${w.vlan}`, `x${w.vni}`]).filter((t) => !t.endsWith("undefined")));
    const [h0, h1] = slow.segments.map(tagsOf);
    assert.ok([...h0!].every((t) => !h1!.has(t)));
    assert.deepEqual(byName.get("thin")!.emulation, { capacity: 100 * Mbps });
    assert.equal(byName.get("thin")!.capacity, 100 * Mbps);
    assert.equal(byName.get("full")!.emulator, undefined, "capacity at line rate needs no emulation");
    assert.equal(byName.get("lan")!.segments.length, 3);
    assert.equal(byName.get("lan")!.emulation!.latency, 0);
  });

  test("capacity is reserved on every cable; an exhausted uplink forces a diagnosis", () => {
    const net = one(facility({ name: "f", racks: [nodes("a", 2), nodes("b", 2)], uplink: 10 * Gbps }));
    const table = new AllocationTable();
    const held: { experiment: Experiment; realization: Realization }[] = [];
    const cross = (name: string, cap: number) =>
      experiment(
        name,
        [
          node("x", [c("host", "==", name === "one" ? "a0" : "a1")]),
          node("y", [c("host", "==", name === "one" ? "b0" : "b1")]),
        ],
        [{ ends: ["x", "y"], constraints: [c("capacity", ">=", cap)] }],
      );
    const rz = realizeChecked(net, cross("one", 6 * Gbps), table, held);
    assert.ok(rz.links[0]!.segments[0]!.waypoints.some((w) => w.resource === "spine"));
    const r = realize(cross("two", 6 * Gbps), net, table);
    assert.match(problems(r)[0]!, /link l0: no path between x and y with 6 Gbit\/s free/);
    realizeChecked(net, cross("two", 4 * Gbps), table, held);
  });

  test("VLAN ids and VNIs never collide with other realizations; exhaustion is diagnosed", () => {
    const net = one(facility({ name: "f", racks: [nodes("n", 12)], vlan: [{ first: 10, last: 13 }] }));
    const table = new AllocationTable();
    const held: { experiment: Experiment; realization: Realization }[] = [];
    const pairs = (name: string, k: number) =>
      experiment(
        name,
        Array.from({ length: 2 * k }, (_, i) => node(`n${i}`)),
        Array.from({ length: k }, (_, i) => ({ ends: [`n${2 * i}`, `n${2 * i + 1}`] })),
      );
    const a = realizeChecked(net, pairs("a", 2), table, held);
    const b = realizeChecked(net, pairs("b", 2), table, held);
    const vlans = (rz: Realization) =>
      rz.links.flatMap((l) => l.segments[0]!.waypoints.map((w) => w.vlan)).filter((v) => v !== undefined);
    assert.deepEqual([...new Set(vlans(a))], [10, 11]);
    assert.deepEqual([...new Set(vlans(b))], [12, 13]);
    table.free(held[0]!.realization.id);
    held.shift();
    const r = realize(pairs("c", 3), net, table);
    assert.match(problems(r).join("\n"), /no free VLAN id in VLAN domain xp of facility f \(pool 10-13 is exhausted\)/);
    const d = realizeChecked(net, pairs("d", 2), table, held);
    assert.deepEqual([...new Set(vlans(d))], [10, 11], "freed tags are reused");
  });

  test("multipoint links span leaves through a hub switch", () => {
    const net = one(facility({ name: "f", racks: [nodes("a", 2), nodes("b", 2)] }));
    const x = experiment(
      "lan",
      ["p", "q", "r", "s"].map((n) => node(n)),
      [{ ends: ["p", "q", "r", "s"] }],
    );
    const rz = realizeChecked(net, x, new AllocationTable(), []);
    assert.equal(rz.links[0]!.segments.length, 4);
  });
});

describe("multi-facility", () => {
  const site = (name: string) => facility({ name, racks: [nodes(`${name}n`, 2)], gateway: true });

  test("a link crosses facilities through the interconnect and is marked external", () => {
    const net: ResourceInternet = {
      facilities: [site("east"), site("west")],
      interconnects: [interconnect("east", "west", 10 * Gbps, 5 * ms)],
    };
    const x = experiment(
      "big",
      ["a", "b", "c"].map((n) => node(n)),
      [{ ends: ["a", "b"] }, { ends: ["b", "c"] }],
    );
    const rz = realizeChecked(net, x, new AllocationTable(), []);
    assert.deepEqual([...new Set(rz.nodes.map((n) => n.facility))].sort(), ["east", "west"]);
    const ext = rz.links.filter((l) => l.external);
    assert.equal(ext.length, 1);
    assert.ok(ext[0]!.segments[0]!.waypoints.some((w) => w.resource === "gw" && w.port === "wan"));
    assert.deepEqual(rz.infranets.map((i) => i.facility).sort(), ["east", "west"]);
  });

  test("external == false and unmeetable latency forbid crossing: diagnosed", () => {
    const net: ResourceInternet = {
      facilities: [site("east"), site("west")],
      interconnects: [interconnect("east", "west", 10 * Gbps, 5 * ms)],
    };
    for (const cs of [[c("external", "==", false)], [c("latency", "<=", 1 * ms)]]) {
      const x = experiment(
        "big",
        ["a", "b", "c"].map((n) => node(n)),
        [
          { ends: ["a", "b"], constraints: cs },
          { ends: ["b", "c"], constraints: cs },
        ],
      );
      const msg = problems(realize(x, net)).join("\n");
      assert.match(msg, /node c: all 2 resources in facility east that could host it are taken/);
      assert.match(msg, /cannot cross facilities/);
    }
    // Latency the interconnect can meet (with emulation adding the rest) is fine.
    const x = experiment(
      "big",
      ["a", "b", "c"].map((n) => node(n)),
      [
        { ends: ["a", "b"], constraints: [c("latency", "==", 20 * ms)] },
        { ends: ["b", "c"], constraints: [c("latency", "==", 20 * ms)] },
      ],
    );
    const rz = realizeChecked(net, x, new AllocationTable(), []);
    const ext = rz.links.find((l) => l.external)!;
    assert.equal(ext.emulation!.latency, 20 * ms);
  });
});

describe("diagnosis", () => {
  test("memory nobody free has, in the user's terms", () => {
    const mem = (gib: number) => ({
      props: { "proc.cores": 8, "memory.capacity": gib * GiB, "disk.capacity": 256 * GiB },
    });
    const net = one(facility({ name: "f", racks: [[...nodes("s", 3, mem(32)), ...nodes("b", 2, mem(64))]] }));
    const table = new AllocationTable();
    const held: { experiment: Experiment; realization: Realization }[] = [];
    realizeChecked(
      net,
      experiment(
        "hog",
        [node("x", [c("memory.capacity", ">=", 48 * GiB)]), node("y", [c("memory.capacity", ">=", 48 * GiB)])],
        [],
      ),
      table,
      held,
    );
    const x = experiment("db", [node("db", [c("memory.capacity", ">=", 47 * GiB)])], []);
    assert.deepEqual(problems(realize(x, net, table)), [
      "node db: memory.capacity >= 47 GiB: no free resource has more; the largest free has 32 GiB; 2 with 64 GiB are allocated to other experiments",
    ]);
    const y = experiment("gpu", [node("g", [c("gpu.model", "==", "a100")])], []);
    assert.deepEqual(problems(realize(y, net, table)), [
      'node g: gpu.model == "a100": no resource in the resource internet has it',
    ]);
    const z = experiment("odd", [node("o", [c("proc.cores", ">=", 8), c("proc.cores", "<", 4)])], []);
    assert.match(
      problems(realize(z, net, table))[0]!,
      /node o: constraints contradict each other: proc\.cores >= 8 and proc\.cores < 4/,
    );
  });

  test("structural mistakes are named", () => {
    const net = one(facility({ name: "f", racks: [nodes("n", 2)] }));
    const x = experiment("bad", [node("a"), node("b")], [{ ends: ["a", "b"] }]);
    x.links[0]!.endpoints[1] = { node: "ghost", socket: 0 };
    assert.deepEqual(problems(realize(x, net)), ["link l0: endpoint names node 'ghost', which does not exist"]);
  });
});

describe("allocation table", () => {
  test("reserve is atomic and concurrent realizations never double-allocate", () => {
    const net = one(facility({ name: "f", racks: [nodes("n", 3)] }));
    const ix = prepareInternet(net);
    const table = new AllocationTable();
    const x = experiment("two", [node("a"), node("b")], [{ ends: ["a", "b"] }]);
    // Both computed against the same (empty) table, as two portal replicas would.
    const r1 = realize(x, ix, table, { id: "r1.two.p" });
    const r2 = realize(x, ix, table, { id: "r2.two.p" });
    assert.ok(r1.ok && r2.ok);
    assert.deepEqual(table.reserve(r1.records, ix), { ok: true });
    const before = [...table.records()].length;
    const second = table.reserve(r2.records, ix);
    assert.equal(second.ok, false);
    assert.equal([...table.records()].length, before, "a failed reserve applies nothing");
    assert.ok(table.free("r1.two.p") > 0);
    assert.equal([...table.records()].length, 0);
    assert.deepEqual(table.reserve(r2.records, ix), { ok: true });
  });
});

describe("virtual NICs", () => {
  test("a VM socket gets the NIC model and queues its constraints ask for", () => {
    const hv = {
      alloc: ["virtual"] as "virtual"[],
      props: { "proc.cores": 8, "memory.capacity": 32 * GiB, "disk.capacity": 1024 * GiB },
    };
    const net = one(facility({ name: "f", racks: [nodes("h", 2, hv)] }));
    const a = node("a", [], 1, [[c("port.model", "==", "e1000")]]);
    const b = node("b", [], 1, [[c("port.model", "==", "virtio"), c("port.queues", ">=", 2)]]);
    const x: Experiment = {
      ...experiment("nics", [a, b], []),
      links: [
        linkOf("l", [
          ["a", 0],
          ["b", 0],
        ]),
      ],
    };
    const rz = realizeChecked(net, x, new AllocationTable(), []);
    const [ia, ib] = rz.nodes.map((n) => n.interfaces[0]!);
    assert.deepEqual([ia!.model, ia!.queues, ia!.virtual], ["e1000", 1, true]);
    assert.deepEqual([ib!.model, ib!.queues], ["virtio", 2]);
    // A NIC no hypervisor emulates and no machine has is diagnosed.
    const c2 = node("a", [], 1, [[c("port.model", "==", "mlx5")]]);
    assert.match(problems(realize({ ...x, nodes: [c2, node("b", [], 1)] }, net))[0]!, /port\.model == "mlx5"/);
  });
});
