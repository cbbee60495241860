// Node operations end to end on the sim backend: `mrg node`, `mrg emu`, `mrg exec`
// → portal routes (policy, validation) → commander (mTLS, routed by resource) →
// driver → NodeOps on the backend; tracked state read back through status.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  certFiles,
  Driver,
  loadTls,
  NodeOps,
  SimBackend,
  startCommander,
  startDriverServer,
  tlsClient,
} from "@merge/facility";
import { closeThenRemove } from "@merge/facility/testing";
import { PortalClient } from "@merge/portal/client";
import type { Started } from "@merge/portal/main";
import * as pb from "@merge/proto";
import { openMemoryStore } from "@merge/store";
import { type PortalStack, startPortalStack } from "./portal-stack.ts";

const tmp = mkdtempSync(join(tmpdir(), "mrg-nodeops-"));
let stack: PortalStack;
let portal: Started;
let admin: PortalClient;
let backend: SimBackend;
const MZ = "r1.e1.p1";

const mrg = (args: string[], input?: string) => stack.mrg(args, input);

interface Shown {
  status: string;
  nodes: { node: string; resource: string; power: string; current: string }[];
  links: { link: string; emulation?: { latencyNs?: number; lossFraction?: number; capacityBps?: number } }[];
}

async function shown(): Promise<Shown> {
  const s = await mrg(["show", "materialization", MZ, "--json"]);
  assert.equal(s.code, 0, s.stderr);
  return JSON.parse(s.stdout) as Shown;
}

// Three nodes: a—b over an emulated 10 ms link (tagged "slow", as MergeTB models tag links), b—c plain.
const MODEL = `
import { latency, ms, Network, addressing, property, routing } from "@merge/model";
const net = new Network("ops", addressing.ipv4, routing.static);
const a = net.node("a");
const b = net.node("b");
const c = net.node("c");
net.connect([a, b], latency.eq(ms(10)), property("tags", ["slow", "ab-tag"])).named("ab");
net.connect([b, c]).named("bc");
export default net;
`;

before(async () => {
  backend = new SimBackend({ durations: { imaging: 20, power: 5, network: 2, infrapod: 5 } });
  stack = await startPortalStack(tmp, backend);
  ({ portal, admin } = stack);

  await stack.accepted("p1", "e1", MODEL, "ts");
});

after(() => closeThenRemove(tmp, stack));

test("before materializing: node operations say it is not materialized", async () => {
  const r = await mrg(["node", "stop", "a", MZ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /r1\.e1\.p1 is not materialized/);
});

test("power changes are carried out and tracked in status", async () => {
  const up = await mrg(["materialize", MZ, "--timeout", "60"]);
  assert.equal(up.code, 0, up.stderr);
  const before = await shown();
  assert.equal(before.status, "active");
  assert.deepEqual(
    before.nodes.map((n) => n.power),
    ["on", "on", "on"],
  );
  const a = before.nodes.find((n) => n.node === "a")!;

  const stop = await mrg(["node", "stop", "a", MZ, "--json"]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.deepEqual(JSON.parse(stop.stdout), { node: "a", resource: a.resource, power: "off", state: "ready" });
  assert.equal(backend.nodes.get(a.resource)?.power, "off");
  assert.equal((await shown()).nodes.find((n) => n.node === "a")?.power, "off");

  const start = await mrg(["node", "start", "a", MZ]);
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stdout, /a .*on/);
  assert.equal(backend.nodes.get(a.resource)?.power, "on");

  const restart = await mrg(["node", "restart", "b", MZ]);
  assert.equal(restart.code, 0, restart.stderr);
  const reboot = await mrg(["node", "reboot", "b", MZ, "--hard", "--json"]);
  assert.equal(reboot.code, 0, reboot.stderr);
  assert.equal(JSON.parse(reboot.stdout).power, "on");
  // Reimage is the backend's node reset (a failure there shows), then it works.
  const bRes = before.nodes.find((n) => n.node === "b")!.resource;
  backend.inject({ method: "nodeReset", target: bRes, times: 1, message: "imaging server did not answer" });
  const badImage = await mrg(["node", "reimage", "b", MZ]);
  assert.equal(badImage.code, 1);
  assert.match(badImage.stderr, /imaging server did not answer/);
  const reimage = await mrg(["node", "reimage", "b", MZ, "--json"]);
  assert.equal(reimage.code, 0, reimage.stderr);
  assert.equal(JSON.parse(reimage.stdout).power, "on");
  const after = await shown();
  assert.deepEqual(
    after.nodes.map((n) => [n.node, n.power]),
    [
      ["a", "on"],
      ["b", "on"],
      ["c", "on"],
    ],
  );

  // A failed change: the error is tracked, the node is where it was.
  const c = after.nodes.find((n) => n.node === "c")!;
  backend.inject({ method: "nodePower", target: c.resource, times: 1, message: "BMC did not answer" });
  const failed = await mrg(["node", "stop", "c", MZ]);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /BMC did not answer/);
  const cNow = (await shown()).nodes.find((n) => n.node === "c") as { power: string; powerError?: string };
  assert.equal(cNow.power, "on");
  assert.match(cNow.powerError ?? "", /power off: BMC did not answer/);
  const retried = await mrg(["node", "stop", "c", MZ, "--json"]);
  assert.equal(retried.code, 0, retried.stderr);
  const cAfter = (await shown()).nodes.find((n) => n.node === "c") as { power: string; powerError?: string };
  assert.deepEqual([cAfter.power, cAfter.powerError], ["off", undefined]);

  const unknown = await mrg(["node", "cycle", "zz", MZ]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /has no node 'zz' \(nodes: a, b, c\)/);
});

test("emulation changes are applied to the backend and recorded; bad values are refused", async () => {
  const before = await shown();
  // The API carries base units, named in each field (the model said ms(10)).
  assert.deepEqual(before.links.find((l) => l.link === "ab")?.emulation, { latencyNs: 10e6 });
  assert.equal(before.links.find((l) => l.link === "bc")?.emulation, undefined);

  const set = await mrg(["emu", "set", "ab", MZ, "--latency", "30ms", "--loss", "1%", "--json"]);
  assert.equal(set.code, 0, set.stderr);
  assert.deepEqual(JSON.parse(set.stdout).emulation, { latencyNs: 30e6, lossFraction: 0.01 });
  const sim = [...backend.emulations.values()][0]!.links.find((l) => l.link === "ab")!;
  assert.deepEqual(sim.params, { latency: 30e6, loss: 0.01 });

  // Options left out keep their values.
  const cap = await mrg(["emu", "set", "ab", MZ, "--capacity", "50Mbit"]);
  assert.equal(cap.code, 0, cap.stderr);
  assert.match(cap.stdout, /30 ms.*1%.*50 Mbit\/s/);
  // What people read parses back to what was set (one parse/format, @merge/xir).
  const table = await mrg(["emu", "show", MZ]);
  assert.match(table.stdout, /ab .*30 ms .*1% .*50 Mbit\/s/);
  const show = await mrg(["emu", "show", MZ, "--json"]);
  assert.equal(show.code, 0, show.stderr);
  assert.deepEqual(JSON.parse(show.stdout), [
    { link: "ab", emulation: { latencyNs: 30e6, lossFraction: 0.01, capacityBps: 50e6 } },
    { link: "bc", emulation: null },
  ]);

  const plain = await mrg(["emu", "set", "bc", MZ, "--latency", "5ms"]);
  assert.equal(plain.code, 1);
  assert.match(plain.stderr, /link bc is not emulated/);
  const none = await mrg(["emu", "set", "zz", MZ, "--latency", "5ms"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /has no link 'zz' \(links: ab, bc\)/);
  // A tag in links' properties.tags stands for every link it tags (MergeTB's moacmd set <tag>).
  const tagged = await mrg(["emu", "set", "slow", MZ, "--latency", "30ms", "--json"]);
  assert.equal(tagged.code, 0, tagged.stderr);
  assert.equal(JSON.parse(tagged.stdout).link, "ab");
  const tagTable = await mrg(["emu", "set", "ab-tag", MZ, "--loss", "1%"]);
  assert.match(tagTable.stdout, /ab .*30 ms .*1% .*50 Mbit\/s/);
  const badLoss = await mrg(["emu", "set", "ab", MZ, "--loss", "150%"]);
  assert.equal(badLoss.code, 2, "a bad value is a usage error");
  assert.match(badLoss.stderr, /--loss '150%': expected 0% to 100%/);
  const bare = await mrg(["emu", "set", "ab", MZ, "--capacity", "50"]);
  assert.equal(bare.code, 2, "a bare number is a usage error, not a facility failure");
  assert.match(bare.stderr, /--capacity '50': a number needs a unit, one of bps/);

  // The portal validates on its own too.
  const postEmulation = (body: unknown) =>
    fetch(`${portal.url}/projects/p1/experiments/e1/realizations/r1/materialization/links/ab/emulation`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const res = await postEmulation({ lossFraction: 2 });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { message: string }).message, /lossFraction/);
  // The old unnamed fields are refused, not misread.
  const old = await postEmulation({ latency: 30 });
  assert.equal(old.status, 400);
  assert.deepEqual([...backend.emulations.values()][0]!.links.find((l) => l.link === "ab")!.params, {
    latency: 30e6,
    loss: 0.01,
    capacity: 50e6,
  });
});

test("exec on the sim backend is refused with what to use instead; bad calls are 4xx; outsiders 404", async () => {
  const r = await mrg(["exec", "a", MZ, "--", "echo", "hi"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the sim backend runs no real nodes.*linux backend/);
  const bad = await fetch(`${portal.url}/projects/p1/experiments/e1/realizations/r1/materialization/nodes/a/exec`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" },
    body: JSON.stringify({ argv: [] }),
  });
  assert.equal(bad.status, 400);
  const anon = await fetch(`${portal.url}/projects/p1/experiments/e1/realizations/r1/materialization/nodes/a/power`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ action: "stop" }),
  });
  assert.equal(anon.status, 401);
  // Someone who is not in the project may not touch its nodes or links: to them its private project does not exist.
  const anonClient = new PortalClient(portal.url);
  await anonClient.register({ name: "mallory", email: "mallory@example.org", password: "pw-mallory-secret" });
  await admin.setUserState("mallory", "active");
  const mallory = new PortalClient(portal.url, (await anonClient.login("mallory", "pw-mallory-secret")).token);
  await assert.rejects(mallory.nodePower("p1", "e1", "r1", "a", "stop"), (e: Error & { status?: number }) => {
    assert.equal(e.status, 404);
    return true;
  });
  await assert.rejects(
    mallory.setEmulation("p1", "e1", "r1", "ab", { latencyNs: 1 }),
    (e: Error & { status?: number }) => {
      assert.equal(e.status, 404);
      return true;
    },
  );
  await assert.rejects(
    (async () => {
      for await (const _ of mallory.exec("p1", "e1", "r1", "a", ["true"])) {
      }
    })(),
    (e: Error & { status?: number }) => {
      assert.equal(e.status, 404);
      return true;
    },
  );
  assert.equal((await shown()).nodes.find((n) => n.node === "a")?.power, "on");
});

test("after dematerialize, node operations say so", async () => {
  const down = await mrg(["dematerialize", MZ, "--timeout", "60"]);
  assert.equal(down.code, 0, down.stderr);
  const r = await mrg(["emu", "set", "ab", MZ, "--latency", "5ms"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not materialized/);
});

test("the commander routes node operations by resource to the one driver serving it", async () => {
  const certs = join(tmp, "certs");
  const commander = await startCommander({ tls: loadTls(certFiles(certs, "commander")) });
  const storeA = openMemoryStore();
  const storeB = openMemoryStore();
  const driverTls = loadTls(certFiles(certs, "driver"));
  // A holds its backend (node operations); B does not (its backend would be in another process).
  const a = await startDriverServer({
    driver: new Driver(storeA),
    ops: new NodeOps(storeA, new SimBackend()),
    tls: driverTls,
    name: "a",
    resources: ["x"],
    registry: commander.registry.url,
  });
  const b = await startDriverServer({
    driver: new Driver(storeB),
    tls: driverTls,
    name: "b",
    resources: ["y"],
    registry: commander.registry.url,
  });
  try {
    const c = tlsClient(pb.FacilityService, commander.facility.url, loadTls(certFiles(certs, "portal")));
    const power = (resource: string) =>
      c.nodePower({ mzid: "r.e.p", resource, node: "n", action: pb.PowerAction.CYCLE });
    const refused = async (p: Promise<unknown>, code: Code, message: RegExp) => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ConnectError, `expected a refusal, got ${String(err)}`);
      assert.equal(err.code, code, err.message);
      assert.match(err.rawMessage, message);
    };
    await refused(power("zz"), Code.NotFound, /no driver serves resource 'zz'/);
    await refused(power("x"), Code.NotFound, /r\.e\.p is not materialized on this facility/);
    await refused(power("y"), Code.Unimplemented, /no backend in its process/);
    const out = c.exec({ mzid: "r.e.p", resource: "x", node: "n", argv: ["true"] });
    await refused(
      (async () => {
        for await (const _ of out) {
        }
      })(),
      Code.NotFound,
      /not materialized/,
    );
    await refused(
      c.nodePower({ mzid: "r.e.p", resource: "x", node: "n" }),
      Code.InvalidArgument,
      /power action is unspecified/,
    );
  } finally {
    await a.close();
    await b.close();
    await commander.close();
    await storeA.close();
    await storeB.close();
  }
});
