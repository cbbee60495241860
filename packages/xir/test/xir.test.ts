import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  canonicalHash,
  canonicalJSON,
  contradictions,
  describeConstraint,
  type Experiment,
  firstUnsatisfied,
  gb,
  linkOf,
  mbps,
  ms,
  needsEmulation,
  satisfies,
  validateExperiment,
  validateFacility,
} from "../src/index.ts";

describe("constraint semantics", () => {
  test("every op on numbers", () => {
    assert.equal(satisfies(8, { prop: "proc.cores", op: "==", value: 8 }), true);
    assert.equal(satisfies(8, { prop: "proc.cores", op: "!=", value: 8 }), false);
    assert.equal(satisfies(8, { prop: "proc.cores", op: "<", value: 8 }), false);
    assert.equal(satisfies(8, { prop: "proc.cores", op: "<=", value: 8 }), true);
    assert.equal(satisfies(9, { prop: "proc.cores", op: ">", value: 8 }), true);
    assert.equal(satisfies(7, { prop: "proc.cores", op: ">=", value: 8 }), false);
    assert.equal(satisfies(4, { prop: "proc.cores", op: "in", value: [2, 4] }), true);
    assert.equal(satisfies(3, { prop: "proc.cores", op: "in", value: [2, 4] }), false);
  });
  test("strings, booleans, missing values and type mismatches", () => {
    assert.equal(satisfies("x86_64", { prop: "platform", op: "==", value: "x86_64" }), true);
    assert.equal(satisfies(true, { prop: "metal", op: "==", value: false }), false);
    assert.equal(satisfies(undefined, { prop: "metal", op: "!=", value: false }), false);
    assert.equal(satisfies("8", { prop: "proc.cores", op: ">=", value: 4 }), false);
  });
  test("firstUnsatisfied names the failing constraint", () => {
    const props: Record<string, number> = { "proc.cores": 4, "memory.capacity": gb(16) };
    const failing = firstUnsatisfied(
      (p) => props[p],
      [
        { prop: "proc.cores", op: ">=", value: 2 },
        { prop: "memory.capacity", op: ">=", value: gb(32) },
      ],
    );
    assert.equal(failing && describeConstraint(failing), "memory.capacity >= 32 GiB");
  });
  test("contradictions: memory >= 8 GiB and <= 4 GiB", () => {
    const found = contradictions([
      { prop: "memory.capacity", op: ">=", value: gb(8) },
      { prop: "memory.capacity", op: "<=", value: gb(4) },
      { prop: "proc.cores", op: ">=", value: 2 },
      { prop: "proc.cores", op: "<=", value: 2 },
    ]);
    assert.equal(found.length, 1);
    assert.equal(found[0]?.[0]?.prop, "memory.capacity");
  });
  test("contradictions: equality against a set, strict bounds, booleans", () => {
    assert.equal(
      contradictions([
        { prop: "metal", op: "==", value: true },
        { prop: "metal", op: "==", value: false },
      ]).length,
      1,
    );
    assert.equal(
      contradictions([
        { prop: "proc.cores", op: "<", value: 4 },
        { prop: "proc.cores", op: ">", value: 3 },
      ]).length,
      0,
    );
    assert.equal(
      contradictions([
        { prop: "proc.cores", op: "<", value: 4 },
        { prop: "proc.cores", op: ">=", value: 4 },
      ]).length,
      1,
    );
    assert.equal(
      contradictions([
        { prop: "platform", op: "in", value: ["arm64"] },
        { prop: "platform", op: "!=", value: "arm64" },
      ]).length,
      1,
    );
  });
  test("emulation need: latency, loss, or capacity under line rate", () => {
    assert.equal(needsEmulation({ constraints: [{ prop: "latency", op: "==", value: ms(10) }] }, 1e9), true);
    assert.equal(needsEmulation({ constraints: [{ prop: "capacity", op: "==", value: mbps(100) }] }, 1e9), true);
    assert.equal(needsEmulation({ constraints: [{ prop: "capacity", op: ">=", value: mbps(100) }] }, 1e9), false);
    assert.equal(needsEmulation({ constraints: [] }, 1e9), false);
  });
});

describe("units", () => {
  test("binary sizes, decimal rates, nanoseconds", () => {
    assert.equal(gb(1), 1073741824);
    assert.equal(mbps(100), 1e8);
    assert.equal(ms(10), 1e7);
    assert.throws(() => gb(-1), /non-negative/);
  });
});

describe("canonical JSON", () => {
  test("key order does not matter; hashes are stable", () => {
    const a = { b: 1, a: { d: [1, { y: 2, x: 1 }], c: "s" } };
    const b = { a: { c: "s", d: [1, { x: 1, y: 2 }] }, b: 1 };
    assert.equal(canonicalJSON(a), '{"a":{"c":"s","d":[1,{"x":1,"y":2}]},"b":1}');
    assert.equal(canonicalHash(a), canonicalHash(b));
    assert.notEqual(canonicalHash(a), canonicalHash({ ...b, b: 2 }));
  });
  test("undefined members are dropped, NaN refused", () => {
    assert.equal(canonicalJSON({ a: undefined, b: null }), '{"b":null}');
    assert.throws(() => canonicalJSON({ a: Number.NaN }), /not representable/);
  });
});

describe("schema validation", () => {
  const good: Experiment = {
    xir: "1.0",
    name: "hello",
    parameters: { routing: "static" },
    nodes: [
      { name: "a", constraints: [], properties: {}, sockets: [{ index: 0, addrs: ["10.0.0.1/24"], constraints: [] }] },
      { name: "b", constraints: [], properties: {}, sockets: [{ index: 0, addrs: ["10.0.0.2/24"], constraints: [] }] },
    ],
    links: [
      linkOf("l0", [
        ["a", 0],
        ["b", 0],
      ]),
    ],
  };
  test("a good experiment validates", () => {
    assert.equal(validateExperiment(good).ok, true);
  });
  test("errors carry exact paths", () => {
    const bad = structuredClone(good) as unknown as Record<string, unknown>;
    const nodes = bad.nodes as { sockets: { addrs: string[] }[]; colour?: string }[];
    (nodes[1] as { sockets: { addrs: string[] }[] }).sockets[0]!.addrs = ["10.0.0.2"];
    nodes[0]!.colour = "red";
    (bad.parameters as Record<string, string>).routing = "ospf";
    const r = validateExperiment(bad);
    assert.equal(r.ok, false);
    if (r.ok) return;
    const paths = r.errors.map((e) => `${e.path}: ${e.message}`);
    assert.ok(
      paths.some((p) => /^nodes\[1\]\.sockets\[0\]\.addrs\[0\]: must match pattern/.test(p)),
      paths.join("\n"),
    );
    assert.ok(paths.includes("nodes[0].colour: is not a known field"));
    assert.ok(paths.includes('parameters.routing: must be one of "static"'));
  });
  test("facility schema rejects unknown kinds", () => {
    const r = validateFacility({
      xir: "1.0",
      name: "f",
      resources: [{ id: "x", kind: "toaster", alloc: [], props: {}, ports: [] }],
      cables: [],
      tags: { vlan: {}, vni: [] },
    });
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.errors[0]!.path, /^resources\[0\]\.kind$/);
  });
});
