/**
 * One direction of a link: a socket's `rx.*` constraints describe the link
 * toward that socket's node and replace the link's own on the same property.
 * The engine emulates such links, picks per-direction values and checks them;
 * the independent checker holds it to the same rules.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AllocationTable, checkRealizations, formatEmbedding, prepareInternet, realize } from "@merge/realize";
import {
  type Experiment,
  emulationToward,
  type LinkEmbedding,
  type Realization,
  type ResourceInternet,
} from "@merge/xir";
import { c, experiment, facility, Gbps, interconnect, Mbps, ms, node, nodes, ok, one, problems } from "./fixtures.ts";

const lan = () => one(facility({ name: "f", racks: [nodes("n", 4)], emulators: 1 }));

/** Realize, reserve, and check independently. */
function realized(net: ResourceInternet, x: Experiment): { rz: Realization; link: (name: string) => LinkEmbedding } {
  const ix = prepareInternet(net);
  const r = realize(x, ix, new AllocationTable(), { id: `r.${x.name}.p` });
  const rz = ok(r);
  if (!r.ok) throw new Error("unreachable");
  assert.deepEqual(new AllocationTable().reserve(r.records, ix), { ok: true });
  assert.deepEqual(checkRealizations(net, [{ experiment: x, realization: rz }]), []);
  return { rz, link: (name) => rz.links.find((l) => l.link === name)! };
}

/** Violations of a copy of `rz` changed by `tamper`. */
function violationsAfter(
  net: ResourceInternet,
  x: Experiment,
  rz: Realization,
  tamper: (rz: Realization) => void,
): string[] {
  const copy = structuredClone(rz);
  tamper(copy);
  return checkRealizations(net, [{ experiment: x, realization: copy }]).map((v) => v.message);
}

describe("one direction of a link", () => {
  test("a link whose only emulation constraint is rx.latency on one socket gets an emulator and a toward entry", () => {
    const net = lan();
    const x = experiment(
      "oneway",
      [node("a", [], 1), node("b", [], 1, [[c("rx.latency", "==", 30 * ms)]]), node("c", [], 1), node("d", [], 1)],
      [
        { name: "slow", ends: ["a", "b"] },
        { name: "plain", ends: ["c", "d"] },
      ],
    );
    const { rz, link } = realized(net, x);
    const slow = link("slow");
    assert.deepEqual(slow.emulator, { facility: "f", resource: "emu0" });
    assert.deepEqual(slow.emulation, { toward: [{ node: "b", latency: 30 * ms }] });
    assert.deepEqual(emulationToward(slow.emulation!, "b"), { latency: 30 * ms });
    assert.deepEqual(emulationToward(slow.emulation!, "a"), {});
    assert.equal(slow.segments.length, 2);
    assert.equal(link("plain").emulator, undefined);
    assert.equal(link("plain").emulation, undefined);
    // rx.* is about the link, not the port: b got an ordinary port.
    assert.equal(rz.nodes.find((n) => n.node === "b")!.interfaces[0]!.port, "eth1");
    assert.match(formatEmbedding(rz), /slow \(emulated at f\/emu0, toward b: latency 30 ms\)/);
  });

  test("link and direction values mix: a direction replaces only what it names", () => {
    const net = lan();
    const x = experiment(
      "mixed",
      [
        node("a", [], 1, [[c("rx.capacity", "==", 2 * Mbps), c("rx.latency", "==", 30 * ms)]]),
        node("b", [], 1),
        node("c", [], 1),
        node("d", [], 1, [[c("rx.capacity", "<=", 50 * Mbps)]]),
      ],
      [
        { name: "l0", ends: ["a", "b"], constraints: [c("latency", "==", 10 * ms), c("loss", "==", 0.01)] },
        { name: "capped", ends: ["c", "d"] },
      ],
    );
    const { rz, link } = realized(net, x);
    const l0 = link("l0");
    assert.deepEqual(l0.emulation, {
      latency: 10 * ms,
      loss: 0.01,
      toward: [{ node: "a", capacity: 2 * Mbps, latency: 30 * ms }],
    });
    assert.deepEqual(emulationToward(l0.emulation!, "a"), { latency: 30 * ms, loss: 0.01, capacity: 2 * Mbps });
    assert.deepEqual(emulationToward(l0.emulation!, "b"), { latency: 10 * ms, loss: 0.01 });
    // Reserved: the most one direction needs (2 Mbit/s toward a; nothing asked toward b).
    assert.equal(l0.capacity, 2 * Mbps);
    // Only one direction capped below the line rate: emulated, and that cap is reserved.
    const capped = link("capped");
    assert.ok(capped.emulator);
    assert.deepEqual(capped.emulation, { toward: [{ node: "d", capacity: 50 * Mbps }] });
    assert.equal(capped.capacity, 50 * Mbps);
    const text = formatEmbedding(rz);
    assert.match(
      text,
      /l0 \(reserves 2 Mbit\/s, emulated at f\/emu0, latency 10 ms, loss 1%, toward a: rate 2 Mbit\/s latency 30 ms\)/,
    );
    assert.match(text, /capped \(reserves 50 Mbit\/s, emulated at f\/emu0, toward d: rate 50 Mbit\/s\)/);
  });

  test("a link's capacity and a smaller direction: the link's is reserved", () => {
    const net = lan();
    const x = experiment(
      "both",
      [node("a", [], 1), node("b", [], 1, [[c("rx.capacity", "==", 10 * Mbps)]])],
      [{ ends: ["a", "b"], constraints: [c("capacity", "==", 100 * Mbps)] }],
    );
    const { link } = realized(net, x);
    assert.deepEqual(link("l0").emulation, { capacity: 100 * Mbps, toward: [{ node: "b", capacity: 10 * Mbps }] });
    assert.equal(link("l0").capacity, 100 * Mbps);
  });

  test("an impossible direction fails naming the link and the direction", () => {
    // The only emulator is across a 3 ms interconnect: both halves cross it, 6 ms already.
    const net: ResourceInternet = {
      facilities: [
        facility({ name: "east", racks: [nodes("e", 2)], emulators: 0, gateway: true }),
        facility({ name: "west", racks: [nodes("w", 2)], emulators: 1, gateway: true }),
      ],
      interconnects: [interconnect("east", "west", 10 * Gbps, 3 * ms)],
    };
    const x = (rx: number) =>
      experiment(
        "far",
        [node("a", [c("host", "==", "e0")], 1), node("b", [c("host", "==", "e1")], 1, [[c("rx.latency", "==", rx)]])],
        [{ ends: ["a", "b"], constraints: [c("latency", "==", 10 * ms)] }],
      );
    assert.deepEqual(problems(realize(x(5 * ms), net)), [
      "link l0: toward b: rx.latency == 5 ms: the path cannot provide it (its latency is already 6 ms)",
    ]);
    // The same direction at 7 ms is fine; the link's own 10 ms holds toward a.
    const { link } = realized(net, x(7 * ms));
    assert.deepEqual(link("l0").emulation, { latency: 10 * ms, toward: [{ node: "b", latency: 7 * ms }] });
    assert.equal(link("l0").external, true);
    // A direction that contradicts itself is named as such.
    const y = experiment(
      "odd",
      [node("a", [], 1), node("b", [], 1, [[c("rx.capacity", ">=", 10 * Mbps), c("rx.capacity", "<", 5 * Mbps)]])],
      [{ ends: ["a", "b"] }],
    );
    assert.deepEqual(problems(realize(y, lan())), [
      "link l0: toward b: capacity constraints contradict: rx.capacity >= 10 Mbit/s and rx.capacity < 5 Mbit/s",
    ]);
  });

  test("with no emulator, the refusal says which direction needs one", () => {
    const net = one(facility({ name: "f", racks: [nodes("n", 2)], emulators: 0 }));
    const x = experiment(
      "noemu",
      [node("a", [], 1), node("b", [], 1, [[c("rx.loss", "==", 0.05)]])],
      [{ ends: ["a", "b"] }],
    );
    assert.match(
      problems(realize(x, net))[0]!,
      /^link l0: needs an emulator \(it has toward b: rx\.loss == 5%\) and none is reachable from a$/,
    );
  });

  test("a node with two sockets on a link cannot name a direction", () => {
    const x = experiment(
      "loop",
      [node("a", [], 1, [[c("rx.latency", "==", 5 * ms)]]), node("b", [], 0)],
      [{ ends: ["a", "a", "b"] }],
    );
    assert.deepEqual(problems(realize(x, lan())), [
      "link l0: node a has two sockets on it, so their rx.* constraints cannot name one direction (a direction is named by the node it leads to)",
    ]);
  });

  test("the checker refuses tampered directions", () => {
    const net = lan();
    const x = experiment(
      "tamper",
      [
        node("a", [], 1, [[c("rx.latency", "==", 30 * ms)]]),
        node("b", [], 1),
        node("c", [], 1, [[c("rx.capacity", ">=", 1 * Gbps)]]),
        node("d", [], 1),
      ],
      [
        { name: "l0", ends: ["a", "b"], constraints: [c("latency", "==", 10 * ms)] },
        { name: "plain", ends: ["c", "d"] },
      ],
    );
    const { rz } = realized(net, x);
    const l0 = (r: Realization) => r.links.find((l) => l.link === "l0")!;
    const plain = (r: Realization) => r.links.find((l) => l.link === "plain")!;
    // A direction's value that does not meet its socket's constraint.
    assert.deepEqual(
      violationsAfter(net, x, rz, (r) => {
        l0(r).emulation!.toward![0]!.latency = 20 * ms;
      }),
      ["link l0: toward a: rx.latency == 30000000 not met (realized: 20000000)"],
    );
    // The direction dropped: toward a gets the link's 10 ms.
    assert.deepEqual(
      violationsAfter(net, x, rz, (r) => {
        delete l0(r).emulation!.toward;
      }),
      ["link l0: toward a: rx.latency == 30000000 not met (realized: 10000000)"],
    );
    // Moved to the wrong end: a gets 10 ms, b gets 30 ms against the link's 10 ms.
    assert.deepEqual(
      violationsAfter(net, x, rz, (r) => {
        l0(r).emulation!.toward![0]!.node = "b";
      }),
      [
        "link l0: toward a: rx.latency == 30000000 not met (realized: 10000000)",
        "link l0: toward b: latency == 10000000 not met (realized: 30000000)",
      ],
    );
    // A direction toward a node that is not on the link.
    assert.deepEqual(
      violationsAfter(net, x, rz, (r) => {
        l0(r).emulation!.toward!.push({ node: "c", latency: 10 * ms });
      }),
      ["link l0: emulation toward c: not an endpoint's node"],
    );
    // A toward entry on a link that is not emulated (c's rx.capacity >= 1 Gbit/s needs no emulator).
    assert.equal(plain(rz).emulator, undefined);
    assert.deepEqual(
      violationsAfter(net, x, rz, (r) => {
        plain(r).emulation = { toward: [{ node: "c", capacity: 2 * Gbps }] };
      }),
      ["link plain: has emulation values but is not emulated"],
    );
    // An emulated direction-only link stripped of its emulator.
    const y = experiment(
      "strip",
      [node("a", [], 1), node("b", [], 1, [[c("rx.latency", "==", 30 * ms)]])],
      [{ ends: ["a", "b"] }],
    );
    const { rz: rz2 } = realized(net, y);
    assert.deepEqual(
      violationsAfter(net, y, rz2, (r) => {
        delete r.links[0]!.emulator;
        delete r.links[0]!.emulation;
      }),
      ["link l0: needs emulation but has no emulator"],
    );
    // A reservation below what a direction's capacity asks.
    const z = experiment(
      "thin",
      [node("a", [], 1), node("b", [], 1, [[c("rx.capacity", "==", 50 * Mbps)]])],
      [{ ends: ["a", "b"] }],
    );
    const { rz: rz3 } = realized(net, z);
    assert.deepEqual(
      violationsAfter(net, z, rz3, (r) => {
        r.links[0]!.capacity = 10 * Mbps;
      }),
      ["link l0: reserves 10000000 bit/s, less than its capacity constraints ask"],
    );
  });
});
