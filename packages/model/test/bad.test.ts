// Every bad model in test/bad/ with the diagnostic it must produce: severity,
// code, a fragment of the message, and the line:column in the model. Each
// expected line is also marked `// <-` in the model itself, so a location that
// drifts to another line fails twice over.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { compileFile, compileSource, formatDiagnostic } from "../src/index.ts";

const dir = join(import.meta.dirname, "bad");

type Row = [file: string, severity: "error" | "warning", code: string, fragment: string, line: number, column: number];

const table: Row[] = [
  ["duplicate-node", "error", "duplicate-node", 'duplicate node name "a"', 5, 15],
  ["duplicate-link", "error", "duplicate-link", 'duplicate link name "wire"', 7, 5],
  [
    "bad-node-name",
    "error",
    "bad-node-name",
    'node name "web server" cannot be a hostname; use letters, digits',
    4,
    15,
  ],
  ["single-endpoint", "error", "single-endpoint-link", "has a single endpoint (a)", 7, 5],
  ["empty-link", "error", "empty-link", "has no endpoints", 7, 5],
  ["islanded", "error", "islanded", "2 islands that no link joins: {a, b}, {c, d}", 3, 13],
  ["linkless", "warning", "linkless", "node monitor has no experiment links: reachable over the infranet only", 7, 15],
  ["islanded-many", "error", "islanded", "12 islands that no link joins: {isle0-0, isle0-1}", 3, 13],
  ["bad-octet", "error", "malformed-address", '"10.0.0.256" is not an IPv4 address', 8, 13],
  ["no-prefix", "error", "malformed-address", '"10.0.0.1" has no prefix length', 7, 13],
  ["prefix-33", "error", "malformed-address", 'prefix length "33" must be a number from 0 to 32', 7, 13],
  ["network-address", "error", "malformed-address", "10.0.0.0/24 is the network address", 7, 9],
  ["broadcast-address", "error", "malformed-address", "10.0.0.255/24 is the broadcast address", 7, 9],
  ["not-an-ip", "error", "malformed-address", '"banana" is not an IPv4 address', 7, 9],
  [
    "duplicate-address",
    "error",
    "duplicate-address",
    "duplicate address 10.1.0.1: node b socket 0 and node a socket 0",
    9,
    13,
  ],
  ["subnet-mismatch", "error", "subnet-mismatch", "10.0.0.0/24 (a:10.0.0.1/24) vs 10.0.1.0/24 (b:10.0.1.2/24)", 6, 15],
  ["prefix-mismatch", "error", "subnet-mismatch", "vs 10.0.0.0/25 (b:10.0.0.2/25)", 6, 15],
  ["subnet-overlap", "error", "subnet-overlap", "10.0.1.0/24, which overlaps subnet 10.0.0.0/16", 8, 16],
  ["memory-contradiction", "error", "contradiction", "memory.capacity >= 8 GiB, memory.capacity <= 4 GiB", 4, 50],
  ["cores-contradiction", "error", "contradiction", "proc.cores == 4, proc.cores == 8", 5, 14],
  ["metal-virtual", "error", "contradiction", "metal == true, metal == false", 4, 38],
  ["latency-contradiction", "error", "contradiction", "latency < 5 ms, latency > 10 ms", 6, 48],
  ["port-contradiction", "error", "contradiction", "port.capacity >= 10 Gbit/s, port.capacity <= 1 Gbit/s", 7, 60],
  ["platform-contradiction", "error", "contradiction", 'platform == "x86_64", platform == "arm64"', 4, 57],
  ["nic-contradiction", "error", "contradiction", 'port.model == "e1000", port.model in ["virtio", "i40e"]', 7, 43],
  ["unknown-image", "warning", "unknown-image", 'unknown image "bookwrom" (did you mean "bookworm"?)', 4, 25],
  ["unknown-property", "warning", "unknown-property", '"memroy.capacity" (did you mean "memory.capacity"?)', 4, 25],
  ["wrong-element", "error", "wrong-element", "latency is a link property; it cannot constrain a node", 4, 25],
  ["wrong-type", "error", "wrong-type", 'proc.cores must be a number, got string "four"', 4, 25],
  ["bad-nic", "error", "bad-value", 'port.model "tulip" is not one of virtio, e1000', 7, 18],
  ["loss-percent", "error", "model-exception", "loss: expected a fraction between 0 and 1, got 1.5", 6, 29],
  ["fractional-cores", "error", "bad-value", "proc.cores must be a whole number, got 2.5", 4, 31],
  ["bad-layer", "error", "bad-value", "layer must be 1, 2 or 3, got 7", 6, 21],
  ["in-scalar", "error", "wrong-type", '"in" needs a list of values', 4, 25],
  [
    "routing-no-addresses",
    "error",
    "routing-needs-addresses",
    "socket 1 of node b; give it one or add addressing.ipv4",
    10,
    5,
  ],
  ["not-on-link", "error", "not-on-link", "node c is not an endpoint of this link (endpoints: a, b)", 9, 3],
  ["bad-option", "error", "bad-option", "a node cannot take a link constraint", 4, 15],
  ["throws", "error", "model-exception", "the model threw Error: boom", 5, 27],
  ["type-error", "error", "model-exception", "TypeError: Cannot read properties of undefined (reading 'name')", 6, 19],
  ["no-export", "error", "no-network", "end it with `export default net`", 1, 1],
  ["export-string", "error", "no-network", "default export is string, not a Network", 1, 1],
  ["two-networks", "error", "several-networks", "the model names 2 networks (one, two)", 5, 13],
  ["foreign-node", "error", "foreign-node", "node b belongs to network theirs, not mine", 7, 5],
  ["negative-memory", "error", "model-exception", "gb: expected a finite, non-negative number, got -1", 4, 35],
  [
    "subnet-full",
    "error",
    "subnet-full",
    "10.9.0.0/30 (from the addresses you gave), which has no free address left",
    5,
    17,
  ],
  ["boolean-order", "error", "wrong-type", "metal is true or false; compare it with == or !=", 4, 25],
  ["empty-experiment", "error", "empty-experiment", "the experiment has no nodes", 3, 13],
  ["empty-in", "error", "bad-value", "gpu.model in []: no value can be in an empty list", 4, 35],
  ["bad-route", "error", "bad-route", "via 10.7.0.1: the gateway is not on socket 0's subnet (10.0.0.1/24)", 9, 3],
  ["route-host-bits", "error", "bad-route", "10.9.1.0/16 has host bits set; the prefix is 10.9.0.0/16", 9, 3],
  ["rx-loss", "error", "bad-value", "socket 0 of node b: rx.loss is a fraction from 0 to 1, got 2", 7, 26],
  ["node-twice", "error", "node-twice-on-link", "link loop joins node a twice (sockets 0 and 1)", 6, 5],
  [
    "toward-kind",
    "error",
    "not-directional",
    "toward(b): kind cannot be set for one direction of a link; toward takes capacity, latency, loss",
    7,
    3,
  ],
];

test("at least 40 bad models, each in the table", async () => {
  const { readdirSync } = await import("node:fs");
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".ts"))
    .map((f) => f.replace(/\.ts$/, ""));
  assert.ok(files.length >= 40, `${files.length} bad models`);
  assert.deepEqual(files.sort(), table.map((r) => r[0]).sort());
});

for (const [name, severity, code, fragment, line, column] of table) {
  test(`bad model ${name}: ${severity} ${code} at ${line}:${column}`, async () => {
    const file = join(dir, `${name}.ts`);
    const result = await compileFile(file);
    const found = result.diagnostics.find((d) => d.code === code);
    const all = result.diagnostics.map(formatDiagnostic).join("\n");
    assert.ok(found, `no ${code} diagnostic; got:\n${all}`);
    assert.equal(found.severity, severity);
    assert.ok(found.message.includes(fragment), `message "${found.message}" lacks "${fragment}"`);
    assert.deepEqual(found.location, { file, line, column });
    assert.equal(result.ok, severity !== "error", "errors fail compilation, warnings do not");
    const sourceLine = readFileSync(file, "utf8").split("\n")[line - 1] ?? "";
    assert.ok(sourceLine.includes("// <-"), `line ${line} of ${name}.ts is not the marked line: ${sourceLine}`);
  });
}

test("a syntax error points at the user's line and column", async () => {
  const text =
    'import { Network } from "@merge/model";\nconst net = new Network("x");\nnet.node("a" "b");\nexport default net;\n';
  const result = await compileSource(text, "broken.ts");
  assert.equal(result.ok, false);
  const d = result.diagnostics[0];
  assert.equal(d?.code, "syntax");
  assert.equal(d?.location?.file, "broken.ts");
  assert.equal(d?.location?.line, 3);
  assert.match(d?.message ?? "", /syntax error: ',' expected/);
});
