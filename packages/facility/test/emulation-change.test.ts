// A link's emulation after a runtime change (in every direction, or toward one
// node), and its trip over the wire with its directions.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { emulationParamsFromPb, emulationParamsToPb, linkEmulation } from "@merge/materialize";
import { changedEmulation } from "../src/node-ops.ts";

const MS = 1e6;
const asym = { capacity: 10e6, latency: 10 * MS, toward: [{ node: "a", capacity: 2e6, latency: 30 * MS }] };

describe("emulation changes by direction", () => {
  test("toward one node: only that direction changes; a new direction is added", () => {
    assert.deepEqual(changedEmulation(asym, { loss: 0.01 }, "a"), {
      capacity: 10e6,
      latency: 10 * MS,
      toward: [{ node: "a", capacity: 2e6, latency: 30 * MS, loss: 0.01 }],
    });
    assert.deepEqual(changedEmulation(asym, { latency: 50 * MS }, "b"), {
      ...asym,
      toward: [...asym.toward, { node: "b", latency: 50 * MS }],
    });
  });

  test("every direction: the link's value changes and directions lose their own for that field", () => {
    assert.deepEqual(changedEmulation(asym, { latency: 20 * MS }), {
      capacity: 10e6,
      latency: 20 * MS,
      toward: [{ node: "a", capacity: 2e6 }],
    });
    // A direction left with nothing of its own goes.
    assert.deepEqual(changedEmulation(asym, { latency: 20 * MS, capacity: 5e6 }), { capacity: 5e6, latency: 20 * MS });
    assert.deepEqual(changedEmulation({ latency: MS }, { loss: 0.1 }), { latency: MS, loss: 0.1 });
  });

  test("directions survive the wire; absent fields stay absent", () => {
    assert.deepEqual(emulationParamsFromPb(emulationParamsToPb(asym)), asym);
    assert.deepEqual(emulationParamsFromPb(emulationParamsToPb({ loss: 0 })), { loss: 0 });
  });
});

describe("emulation read from constraints (records without the realization's values)", () => {
  test("link values held by ==, <=, <; a socket's rx.* constraints give its direction", () => {
    const node = (name: string, rx: { prop: string; op: "==" | ">="; value: number }[] = []) => ({
      name,
      constraints: [],
      properties: {},
      sockets: [{ index: 0, addrs: [], constraints: rx }],
    });
    const xp = { nodes: [node("a", [{ prop: "rx.latency", op: "==", value: 30 * MS }]), node("b")] };
    const link = {
      name: "wire",
      properties: {},
      endpoints: [
        { node: "a", socket: 0 },
        { node: "b", socket: 0 },
      ],
      constraints: [
        { prop: "latency", op: "==" as const, value: 10 * MS },
        { prop: "capacity", op: ">=" as const, value: 1e6 },
      ],
    };
    assert.deepEqual(linkEmulation(link, xp), { latency: 10 * MS, toward: [{ node: "a", latency: 30 * MS }] });
    assert.equal(linkEmulation({ ...link, constraints: [] }, { nodes: [node("a"), node("b")] }), undefined);
  });
});
