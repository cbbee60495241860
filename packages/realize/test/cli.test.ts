/**
 * `mrg realize --local`: the real command line, run as a process.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { phobos } from "@merge/facility-model";
import { compileFile } from "@merge/model";
import { checkRealizations } from "@merge/realize";
import type { Realization } from "@merge/xir";
import { c, experiment, node } from "./fixtures.ts";

const root = new URL("../../..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "realize-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function mrg(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(root, "packages/cli/src/mrg.ts"), ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("a TypeScript model on the phobos sample: the embedding is printed", () => {
  const r = mrg("realize", "--local", "examples/hello.ts", "--facility", "phobos");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^nodes:$/m);
  // No metal constraint: VMs (MergeTB's default), both on one hypervisor, bridged inside it.
  assert.match(r.out, /^ {2}a +phobos\/n\d+ +vm 1 cores/m);
  assert.match(r.out, /a\.0 ~ b\.0: n\d:eth\d$/m);
  assert.match(r.out, /phobos: vni \d+, infrapod on ifr0/);
});

test("XIR JSON in, raw realization out with --json; it passes the checker", () => {
  const x = experiment(
    "tri",
    [node("a"), node("b"), node("c")],
    [{ ends: ["a", "b"], constraints: [c("latency", "==", 5e6)] }, { ends: ["b", "c"] }],
  );
  const file = join(dir, "tri.json");
  writeFileSync(file, JSON.stringify(x));
  const r = mrg("realize", "--local", file, "--facility", "phobos", "--json", "--name", "one.tri.me");
  assert.equal(r.code, 0, r.err);
  const rz = JSON.parse(r.out) as Realization;
  assert.equal(rz.id, "one.tri.me");
  assert.deepEqual(
    checkRealizations({ facilities: [phobos()], interconnects: [] }, [{ experiment: x, realization: rz }]),
    [],
  );
  assert.equal(rz.links.find((l) => l.link === "l0")!.emulator?.resource, "emu0");
});

test("a model with VMs, virtual NIC models and an emulated link: the raw realization passes the checker", async () => {
  const r = mrg("realize", "--local", "examples/emulated.ts", "--facility", "phobos", "--json");
  assert.equal(r.code, 0, r.err);
  const rz = JSON.parse(r.out) as Realization;
  const compiled = await compileFile(join(root, "examples/emulated.ts"));
  assert.ok(compiled.xir);
  const net = { facilities: [phobos()], interconnects: [] };
  assert.deepEqual(checkRealizations(net, [{ experiment: compiled.xir, realization: rz }]), []);
  const client = rz.nodes.find((n) => n.node === "client")!;
  assert.equal(client.interfaces[0]!.model, "e1000");
  assert.ok(rz.links[0]!.emulator);
});

test("the asymmetric example: one direction set apart, printed and in the raw realization", async () => {
  const text = mrg("realize", "--local", "examples/asymmetric.ts", "--facility", "phobos");
  assert.equal(text.code, 0, text.err);
  assert.match(
    text.out,
    /^ {2}wire \(reserves 10 Mbit\/s, emulated at phobos\/emu\d+, rate 10 Mbit\/s, latency 10 ms, toward a: rate 2 Mbit\/s latency 30 ms\)$/m,
  );
  const r = mrg("realize", "--local", "examples/asymmetric.ts", "--facility", "phobos", "--json");
  assert.equal(r.code, 0, r.err);
  const rz = JSON.parse(r.out) as Realization;
  assert.deepEqual(rz.links[0]!.emulation, {
    capacity: 10e6,
    latency: 10e6,
    toward: [{ node: "a", capacity: 2e6, latency: 30e6 }],
  });
  const compiled = await compileFile(join(root, "examples/asymmetric.ts"));
  assert.ok(compiled.xir);
  const net = { facilities: [phobos()], interconnects: [] };
  assert.deepEqual(checkRealizations(net, [{ experiment: compiled.xir, realization: rz }]), []);
});

test("bad input is named; unrealizable experiments are diagnosed", () => {
  const none = mrg("realize", "--local", "examples/hello.ts", "--facility", "nowhere");
  assert.equal(none.code, 1);
  assert.match(none.err, /--facility nowhere: not a sample \(phobos, two-rack, wide-area\) and not a \.json file/);
  const broken = join(dir, "broken.json");
  writeFileSync(broken, '{"xir": "1.0", "name": "x"');
  assert.match(mrg("realize", "--local", broken, "--facility", "phobos").err, /broken\.json: not JSON/);
  const invalid = join(dir, "invalid.json");
  writeFileSync(invalid, JSON.stringify({ xir: "1.0", name: "x", parameters: {}, nodes: [{ name: 1 }], links: [] }));
  assert.match(
    mrg("realize", "--local", invalid, "--facility", "phobos").err,
    /invalid\.json: not a valid XIR experiment/,
  );
  const big = experiment("big", [node("db", [c("memory.capacity", ">=", 1024 ** 4)])], []);
  const bigFile = join(dir, "big.json");
  writeFileSync(bigFile, JSON.stringify(big));
  const r = mrg("realize", "--local", bigFile, "--facility", "phobos");
  assert.equal(r.code, 1);
  assert.match(
    r.err,
    /node db: memory\.capacity >= 1 TiB: no resource in the resource internet has more; the largest has 128 GiB/,
  );
});

test("--best-effort: an experiment that cannot be realized prints the closest mapping and what it leaves unmet", () => {
  const x = experiment(
    "huge",
    [node("a"), node("b"), node("huge", [c("memory.capacity", ">=", 2 ** 50)])],
    [{ ends: ["a", "b"] }, { ends: ["b", "huge"] }],
  );
  const file = join(dir, "huge.json");
  writeFileSync(file, JSON.stringify(x));
  const plain = mrg("realize", "--local", file, "--facility", "phobos");
  assert.equal(plain.code, 1);
  assert.equal(plain.out, "");
  const r = mrg("realize", "--local", file, "--facility", "phobos", "--best-effort");
  assert.equal(r.code, 1, "a best-effort answer is still a refusal");
  assert.match(r.out, /^closest mapping found:$/m);
  assert.match(r.out, /^ {2}a +phobos\/n\d+ +vm/m);
  assert.doesNotMatch(r.out, /^ {2}huge /m);
  assert.match(r.err, /cannot be realized on phobos; the closest mapping leaves these unmet:/);
  assert.match(r.err, /^ {2}node huge: memory\.capacity >= 1 PiB/m);
  assert.match(r.err, /^ {2}link l1: not realized: its endpoint huge has no resource$/m);
});
