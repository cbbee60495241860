// Host agents on the sim backend: registration over mutual TLS (role and name
// checked), measured resources, and rex's actions routed through the real path
// (portal → commander → driver → rex → the agent of each action's host).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { fragmentToPb, planMaterialization, synthetic } from "@merge/materialize";
import * as pb from "@merge/proto";
import { openStore, type Store } from "@merge/store";
import { certFiles, loadTls, makeCerts, makeHostCert } from "../src/certs.ts";
import { type RunningFacility, startFacility } from "../src/facility.ts";
import { tlsClient } from "../src/grpc.ts";
import { type RunningAgent, startHostAgent } from "../src/host/agent.ts";
import { listHosts, setDrained } from "../src/host/records.ts";
import { SimBackend, type SimMethod } from "../src/sim/sim.ts";
import { until } from "./fixture.ts";

const tmp = mkdtempSync(join(tmpdir(), "mrg-hosts-"));
const certs = join(tmp, "certs");
const mzid = "r1.hosts.proj";
// Nodes round robin over h1 and h2; the infrapod server and the emulator on the facility's own machine.
const s = synthetic(12, { mzid, lanSize: 4, hosts: ["h1", "h2"] });
for (const r of s.facility.resources) if (r.kind !== "node") delete r.host;

let store: Store;
let facility: RunningFacility;
const local = new SimBackend({ strict: false });
const agents = new Map<string, { backend: SimBackend; agent: RunningAgent; calls: [SimMethod, string][] }>();

async function agentOf(name: string): Promise<void> {
  const calls: [SimMethod, string][] = [];
  const backend = new SimBackend({ strict: false, onCall: (m, t) => calls.push([m, t]) });
  const dir = join(tmp, name);
  makeHostCert(certs, dir, name);
  const agent = await startHostAgent({
    name,
    backend,
    tls: loadTls(certFiles(dir, "host")),
    registry: facility.hostRegistryUrl as string,
    underlay: "127.0.0.1",
    dataDir: tmp,
    heartbeatMs: 300,
  });
  await agent.registered;
  agents.set(name, { backend, agent, calls });
}

before(async () => {
  makeCerts(certs, { facility: s.facility.name });
  store = openStore({ backend: "sqlite", dir: join(tmp, "store") });
  facility = await startFacility({
    store,
    backend: local,
    model: s.facility,
    certs,
    hostLeaseTtl: 2,
    underlay: "127.0.0.1",
    ...(process.env.HOSTS_DEBUG ? { log: (m: string) => console.error(m) } : {}),
  });
  assert.ok(facility.hostRegistryUrl, "a model naming hosts gets a host registry");
  await agentOf("h1");
  await agentOf("h2");
});

after(async () => {
  for (const a of agents.values()) await a.agent.close();
  await facility?.close();
  await store?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test("agents register with what they measured; the wrong name, role or host is refused", async () => {
  const hosts = await listHosts(store);
  assert.deepEqual(
    hosts.map((h) => [h.name, h.state]),
    [
      ["h1", "up"],
      ["h2", "up"],
    ],
  );
  for (const h of hosts) {
    assert.ok(h.cores >= 1 && h.memory > 2 ** 20 && h.disk > 0, JSON.stringify(h));
    assert.equal(h.underlay, "127.0.0.1");
    assert.equal(h.pid, process.pid);
  }
  const url = facility.hostRegistryUrl as string;
  const req = { name: "h2", endpoint: "https://127.0.0.1:1", underlay: "127.0.0.1", cores: 1, memory: 1, disk: 1 };
  const h1 = tlsClient(pb.HostRegistryService, url, loadTls(certFiles(join(tmp, "h1"), "host")));
  await assert.rejects(
    h1.registerHost(req),
    (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied && /host 'h1''s/.test(e.message),
  );
  const driver = tlsClient(pb.HostRegistryService, url, loadTls(certFiles(certs, "driver")));
  await assert.rejects(
    driver.registerHost(req),
    (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied && /role 'driver'/.test(e.message),
  );
  makeHostCert(certs, join(tmp, "h9"), "h9");
  const h9 = tlsClient(pb.HostRegistryService, url, loadTls(certFiles(join(tmp, "h9"), "host")));
  await assert.rejects(
    h9.registerHost({ ...req, name: "h9" }),
    (e: unknown) => e instanceof ConnectError && /names no host 'h9' \(hosts: h1, h2\)/.test(e.message),
  );
  // Only the facility (role commander) may call an agent.
  const agent = tlsClient(pb.HostAgentService, hosts[0]!.endpoint, loadTls(certFiles(certs, "portal")));
  await assert.rejects(agent.perform({ method: "nodeSetup", argsJson: "[]" }), /role 'portal' may not call/);
});

test("each action runs on its host's agent: nodes where the plan puts them, links on every host they touch", async () => {
  const plan = planMaterialization(s.realization, s.experiment, [s.facility]);
  const fragments = plan.facilities[0]!.fragments.map(fragmentToPb);
  const resources = plan.facilities[0]!.resources;
  const portal = tlsClient(pb.FacilityService, facility.url, loadTls(certFiles(certs, "portal")));
  await portal.notifyIncoming({ mzid, resources });
  assert.deepEqual((await portal.materialize({ mzid, fragments })).errors, []);
  let last: pb.StatusResponse | undefined;
  for await (const u of portal.watchStatus({ mzid, resources })) last = u.status;
  assert.equal(last?.status, pb.MzStatus.ACTIVE);

  const setUp = (h: string) =>
    agents
      .get(h)!
      .calls.filter(([m]) => m === "nodeSetup")
      .map(([, t]) => t)
      .sort();
  assert.deepEqual(setUp("h1"), ["m0", "m10", "m2", "m4", "m6", "m8"]);
  assert.deepEqual(setUp("h2"), ["m1", "m11", "m3", "m5", "m7", "m9"]);
  // The infrapod and the emulation on the facility's own machine, no node there.
  assert.equal(local.infrapods.size, 1);
  assert.equal([...local.nodes.values()].filter((n) => n.state === "ready").length, 0);
  assert.equal(local.emulations.size, 1);
  // The infrapod knows each node the agents carry (its foundry configuration, its DHCP/DNS entry).
  assert.equal(local.remoteNodes.get(mzid)?.size, 12);
  // lan0 (n0..n3) spans h1 and h2; wan0 (n0 on h1, n4 on h1) passes the emulator on the facility's machine.
  const linked = (h: string) => agents.get(h)!.calls.filter(([m]) => m === "linkCreate").length;
  assert.equal(linked("h1"), s.realization.links.length, "every link has an endpoint on h1");
  assert.equal(linked("h2"), 3, "the three LANs have endpoints on h2; the emulated links join LAN heads, all on h1");

  assert.deepEqual((await portal.dematerialize({ mzid, fragments })).errors, []);
  for await (const u of portal.watchStatus({ mzid, resources })) last = u.status;
  assert.equal(last?.status, pb.MzStatus.DEMATERIALIZED);
  for (const h of ["h1", "h2"]) {
    const b = agents.get(h)!.backend;
    assert.equal([...b.nodes.values()].filter((n) => n.state !== "clean").length, 0, `${h} has no node left`);
    assert.equal(b.links.size, 0, `${h} has no link left`);
  }
});

function cog(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = new URL("../../cli/src/cog.ts", import.meta.url).pathname;
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ["--import", "tsx", cli, ...args, "--store", `sqlite://${join(tmp, "store")}`]);
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d) => (stdout += d));
    c.stderr.on("data", (d) => (stderr += d));
    c.on("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

test("cog host list | show | drain | undrain: the facility's hosts and the nodes each carries", async () => {
  const mzid2 = "r3.hosts.proj";
  const t = synthetic(4, { mzid: mzid2, lanSize: 4, hosts: ["h1", "h2"] });
  for (const r of t.facility.resources) if (r.kind !== "node") delete r.host;
  const plan = planMaterialization(t.realization, t.experiment, [t.facility]);
  const portal = tlsClient(pb.FacilityService, facility.url, loadTls(certFiles(certs, "portal")));
  const resources = plan.facilities[0]!.resources;
  await portal.notifyIncoming({ mzid: mzid2, resources });
  await portal.materialize({ mzid: mzid2, fragments: plan.facilities[0]!.fragments.map(fragmentToPb) });
  for await (const u of portal.watchStatus({ mzid: mzid2, resources })) void u;

  const list = await cog(["host", "list", "--json"]);
  assert.equal(list.code, 0, list.stderr);
  const hosts = JSON.parse(list.stdout) as { name: string; state: string; nodes: string[] }[];
  assert.deepEqual(
    hosts.map((h) => [h.name, h.state, h.nodes]),
    [
      ["h1", "up", [`n0 (${mzid2})`, `n2 (${mzid2})`]],
      ["h2", "up", [`n1 (${mzid2})`, `n3 (${mzid2})`]],
    ],
  );
  const table = await cog(["host", "list"]);
  assert.match(table.stdout, /h2\W+up\W+127\.0\.0\.1/);
  // What each agent measured free, beside what it has.
  assert.match(table.stdout, /h2\W+up\W+127\.0\.0\.1\W+\d+\W+[\d.]+ free of [\d.]+ GiB/);
  assert.equal((await cog(["host", "drain", "h2"])).code, 0);
  const show = await cog(["host", "show", "h2"]);
  assert.match(show.stdout, /host h2: drained/);
  assert.match(show.stdout, /nodes\s+n1 \(r3\.hosts\.proj\), n3/);
  assert.equal((await cog(["host", "undrain", "h2"])).code, 0);
  const missing = await cog(["host", "drain", "h9"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no host 'h9' is registered \(hosts: h1, h2\)/);
  await portal.dematerialize({ mzid: mzid2, fragments: plan.facilities[0]!.fragments.map(fragmentToPb) });
  for await (const u of portal.watchStatus({ mzid: mzid2, resources })) void u;
});

test("a host whose agent stopped is down: its nodes fail naming the host, the rest completes; drain shows", async () => {
  const down = agents.get("h2")!;
  await down.agent.close();
  await until("h2 down", async () => ((await listHosts(store)).find((h) => h.name === "h2")?.alive ? undefined : true));
  await setDrained(store, "h1", true);
  assert.deepEqual(
    (await listHosts(store)).map((h) => h.state),
    ["drained", "down"],
  );
  await setDrained(store, "h1", false);
  await assert.rejects(setDrained(store, "h7", true), /no host 'h7' is registered \(hosts: h1, h2\)/);

  const id = "r2.hosts.proj";
  const t = synthetic(4, { mzid: id, lanSize: 4, hosts: ["h1", "h2"] });
  for (const r of t.facility.resources) if (r.kind !== "node") delete r.host;
  const plan = planMaterialization(t.realization, t.experiment, [t.facility]);
  const fragments = plan.facilities[0]!.fragments.map(fragmentToPb);
  const resources = plan.facilities[0]!.resources;
  const portal = tlsClient(pb.FacilityService, facility.url, loadTls(certFiles(certs, "portal")));
  await portal.notifyIncoming({ mzid: id, resources });
  await portal.materialize({ mzid: id, fragments });
  const st = await until("r2 settled", async () => {
    const r = await portal.status({ mzid: id, resources });
    const settled = r.nodes.filter((n) => n.action === pb.ActionState.COMPLETE || n.action === pb.ActionState.ERROR);
    return settled.length === 4 ? r : undefined;
  });
  const failed = st.nodes.filter((n) => n.action === pb.ActionState.ERROR);
  assert.deepEqual(failed.map((n) => n.node).sort(), ["n1", "n3"], JSON.stringify(failed.map((n) => n.error)));
  for (const n of failed) assert.match(n.error, /host h2 is down/);
  assert.deepEqual(
    st.nodes
      .filter((n) => n.action === pb.ActionState.COMPLETE)
      .map((n) => n.node)
      .sort(),
    ["n0", "n2"],
  );
  assert.deepEqual((await portal.dematerialize({ mzid: id, fragments })).errors, []);
});
