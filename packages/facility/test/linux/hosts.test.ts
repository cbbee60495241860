// A facility of several hosts on this machine (hosts-fixture.ts): host agents in
// their own network namespaces, driven through the real path (plan → commander
// → driver → rex → the agent of each action's host → the linux backend there).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { fragmentToPb, planMaterialization } from "@merge/materialize";
import * as pb from "@merge/proto";
import type { Experiment, Facility, Realization } from "@merge/xir";
import { readHost } from "../../src/host/records.ts";
import { listNetns } from "../../src/linux/processes.ts";
import { minRtt, skip } from "./fixture.ts";
import {
  busyboxSynthetic,
  dematerializeClean,
  hostPrefix,
  materializePlan,
  portalOf,
  suiteHosts,
} from "./hosts-fixture.ts";

const HOSTS = ["h1", "h2", "h3"];

// Every test's materializations use this facility model: 12 nodes round robin over h1..h3, infra on h1.
const model: Facility = busyboxSynthetic(12, "model.x.y", HOSTS).facility;

const fx = suiteHosts(model, HOSTS, { leaseTtl: 3 }, skip);

/** Keeps only the nodes in `keep`, with no links or interfaces: what is left is the infranet. */
function unlinkedOnly(s: { realization: Realization; experiment: Experiment }, keep: Set<string>) {
  s.experiment.nodes = s.experiment.nodes.filter((n) => keep.has(n.name));
  s.realization.nodes = s.realization.nodes.filter((n) => keep.has(n.node));
  s.experiment.links = [];
  s.realization.links = [];
  for (const n of s.experiment.nodes) n.sockets = [];
  for (const n of s.realization.nodes) n.interfaces = [];
}

function plan(s: { realization: Realization; experiment: Experiment }) {
  return planMaterialization(s.realization, s.experiment, [model]);
}

/** Run a command in a namespace; its stdout, or throws with its stderr. */
function inNs(ns: string, cmd: string): string {
  const r = spawnSync("nsenter", [`--net=/run/netns/${ns}`, "--", "busybox", "sh", "-c", cmd], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} in ${ns}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

test("a materialization on one host runs through that host's agent, and its teardown leaves nothing there", {
  skip,
}, async () => {
  const mzid = `one.${fx.run}.test`;
  // Nodes 0, 3 (h1 in the model's round robin) only: everything on h1, where the infrapod server is.
  const s = busyboxSynthetic(12, mzid, HOSTS);
  unlinkedOnly(s, new Set(["n0", "n3", "n6", "n9"]));
  const p = plan(s);
  assert.deepEqual(p.facilities[0]?.hosts, ["h1"]);
  const st = await materializePlan(fx, p);
  assert.equal(st.status, pb.MzStatus.ACTIVE, JSON.stringify(st.failed));
  const prefix = hostPrefix(mzid, "h1");
  assert.ok(listNetns().includes(`${prefix}-i`), "the infrapod is h1's");
  // The infrapod reaches every node on the infranet, on h1.
  for (const a of ["172.30.0.2", "172.30.0.3", "172.30.0.4", "172.30.0.5"])
    inNs(`${prefix}-i`, `busybox ping -c 1 -W 2 ${a}`);
  const d = await materializePlan(fx, p, "dematerialize");
  assert.equal(d.status, pb.MzStatus.DEMATERIALIZED);
  assert.deepEqual(
    listNetns().filter((n) => n.startsWith(prefix)),
    [],
  );
});

test("the infranet spans hosts: nodes on other hosts than the infrapod get DHCP, DNS and their configuration", {
  skip,
}, async () => {
  const mzid = `ifr.${fx.run}.test`;
  const s = busyboxSynthetic(12, mzid, HOSTS);
  const keep = new Set(["n0", "n1", "n2", "n4", "n5"]);
  unlinkedOnly(s, keep);
  const p = plan(s);
  assert.deepEqual(p.facilities[0]?.hosts, HOSTS);
  const st = await materializePlan(fx, p);
  assert.equal(st.status, pb.MzStatus.ACTIVE, JSON.stringify(st.failed));
  // n1 and n4 are on h2, n2 and n5 on h3; the infrapod is on h1.
  const pod = `${hostPrefix(mzid, "h1")}-i`;
  const n1 = `${hostPrefix(mzid, "h2")}-n-n1`;
  const n5 = `${hostPrefix(mzid, "h3")}-n-n5`;
  assert.ok(listNetns().includes(n1) && listNetns().includes(n5), "nodes on their hosts");
  // DHCP gave n1 its planned address (it is the node's own eth0 address), DNS answers it from h1.
  assert.match(inNs(n1, "busybox ip -4 addr show eth0"), /172\.30\.0\.3\//);
  assert.match(inNs(n1, "busybox nslookup -type=a n5 172.30.0.1 2>&1; true"), /172\.30\.0\.6/);
  inNs(pod, "busybox ping -c 1 -W 2 172.30.0.6");
  // Node to node across hosts, over the infranet's tunnels (h2 → h3), full-size frames unfragmented.
  inNs(n1, "busybox ping -c 1 -W 2 172.30.0.6");
  inNs(n1, "busybox ping -c 1 -W 2 -s 1472 172.30.0.6");
  // Exec and shell reach nodes on other hosts (through their agents), as the portal calls them.
  const portal = portalOf(fx);
  const resource = (node: string) => s.realization.nodes.find((n) => n.node === node)?.resource ?? "";
  const exec = await output(
    portal.exec({ mzid, resource: resource("n5"), node: "n5", argv: ["busybox", "ip", "-4", "addr", "show", "eth0"] }),
  );
  assert.equal(exec.exit, 0, exec.stderr);
  assert.match(exec.stdout, /172\.30\.0\.6\//, "the command ran in n5, on h3");
  async function* stdin() {
    const start = create(pb.ShellStartSchema, {
      mzid,
      resource: resource("n1"),
      node: "n1",
      argv: ["busybox", "wc", "-c"],
    });
    yield create(pb.ShellRequestSchema, { in: { case: "start", value: start } });
    yield create(pb.ShellRequestSchema, { in: { case: "stdin", value: new TextEncoder().encode("across hosts\n") } });
    yield create(pb.ShellRequestSchema, { in: { case: "eof", value: true } });
  }
  const sh = await output(portal.shell(stdin()));
  assert.deepEqual([sh.exit, sh.stdout.trim()], [0, "13"], "the shell's input reached n1 on h2");
  // Idle detection: every node measured by the agent of its host; n5 (on h3) busy shows CPU time.
  const busy = await output(
    portal.exec({
      mzid,
      resource: resource("n5"),
      node: "n5",
      argv: ["busybox", "sh", "-c", "(while :; do :; done) >/dev/null 2>&1 & echo $!"],
    }),
  );
  assert.equal(busy.exit, 0, busy.stderr);
  const cpu = async () => (await portal.activity({ mzid })).nodes;
  const before = await cpu();
  await new Promise((r) => setTimeout(r, 2000));
  const during = await cpu();
  await output(
    portal.exec({ mzid, resource: resource("n5"), node: "n5", argv: ["busybox", "kill", busy.stdout.trim()] }),
  );
  assert.deepEqual(
    during.map((a) => [a.node, a.unmeasured]).sort(),
    [...keep].sort().map((n) => [n, ""]),
  );
  const of = (all: typeof during, n: string) => all.find((a) => a.node === n)?.cpuSeconds ?? 0;
  assert.ok(of(during, "n5") - of(before, "n5") >= 0.2, `n5 (h3) used ${of(during, "n5") - of(before, "n5")} s`);
  // A node the materialization does not have: the agent's refusal comes back with its code.
  await assert.rejects(
    output(portal.exec({ mzid, resource: resource("n5"), node: "n9", argv: ["true"] })),
    (e: unknown) => e instanceof ConnectError && e.code === Code.NotFound && /no node 'n9'/.test(e.message),
  );
  await dematerializeClean(fx, p, HOSTS);
});

/** A command's output streams (exec or shell), decoded. */
async function output(
  stream: AsyncIterable<{ out: { case: string | undefined; value?: unknown } }>,
): Promise<{ stdout: string; stderr: string; exit: number }> {
  const dec = new TextDecoder();
  const r = { stdout: "", stderr: "", exit: -1 };
  for await (const m of stream) {
    if (m.out.case === "stdout") r.stdout += dec.decode(m.out.value as Uint8Array);
    else if (m.out.case === "stderr") r.stderr += dec.decode(m.out.value as Uint8Array);
    else if (m.out.case === "exitCode") r.exit = m.out.value as number;
  }
  return r;
}

test("experiment links across hosts: a LAN over three hosts, an emulated link through the emulator's host (ping, iperf3)", {
  skip,
}, async () => {
  const mzid = `xp.${fx.run}.test`;
  const s = busyboxSynthetic(12, mzid, HOSTS);
  // wan0 joins n0 (h1, where the emulator is) and n4 (h2): 10 ms each way, 10 Mbit/s.
  // (The synthetic shape leaves wan links' far ends unaddressed: this one gets its own /31.)
  const sock = (node: string, i: number) =>
    s.experiment.nodes.find((n) => n.name === node)!.sockets.find((k) => k.index === i)!;
  sock("n0", 1).addrs = ["10.254.0.0/31"];
  sock("n4", 2).addrs = ["10.254.0.1/31"];
  const wan0 = s.experiment.links.find((l) => l.name === "wan0");
  wan0!.constraints = [
    { prop: "latency", op: "==", value: 10_000_000 },
    { prop: "capacity", op: "<=", value: 10_000_000 },
  ];
  const p = plan(s);
  const st = await materializePlan(fx, p);
  assert.equal(st.status, pb.MzStatus.ACTIVE, JSON.stringify(st.failed));
  const node = (name: string, host: string) => `${hostPrefix(mzid, host)}-n-${name}`;
  // lan0: n0 (h1), n1 (h2), n2 (h3), n3 (h1) on 10.0.0.0/24.
  inNs(node("n1", "h2"), "busybox ping -c 1 -W 2 10.0.0.3"); // h2 → h3
  inNs(node("n2", "h3"), "busybox ping -c 1 -W 2 10.0.0.4"); // h3 → h1
  inNs(node("n3", "h1"), "busybox ping -c 1 -W 2 -s 1472 10.0.0.2"); // h1 → h2, a full frame
  // wan0: n4 on h2 reaches n0 on h1 through the emulator on h1: 2 × 10 ms.
  inNs(node("n4", "h2"), "busybox ping -c 1 -W 2 10.254.0.0"); // ARP resolved before measuring
  const out = inNs(node("n4", "h2"), "busybox ping -c 5 -i 0.2 -W 2 10.254.0.0");
  const rtt = minRtt(out);
  // The delay line never delivers early; on a loaded machine it may deliver a little late.
  assert.ok(rtt >= 19 && rtt <= 27, `RTT ${rtt} ms`);
  const server = spawn(
    "nsenter",
    [`--net=/run/netns/${node("n0", "h1")}`, "--", "iperf3", "-s", "-1", "-B", "10.254.0.0"],
    {
      stdio: "ignore",
    },
  );
  try {
    await new Promise((r) => setTimeout(r, 500));
    const r = spawnSync(
      "nsenter",
      [`--net=/run/netns/${node("n4", "h2")}`, "--", "iperf3", "-c", "10.254.0.0", "-t", "4", "-O", "1", "-J"],
      { encoding: "utf8" },
    );
    const bps = JSON.parse(r.stdout).end.sum_received.bits_per_second as number;
    assert.ok(Math.abs(bps - 10e6) <= 1.5e6, `measured ${(bps / 1e6).toFixed(2)} Mbit/s`);
  } finally {
    server.kill();
  }
  await dematerializeClean(fx, p, HOSTS);
});

test("isolation across hosts: two materializations with the same addresses on the same hosts never meet (different VNIs)", {
  skip,
}, async () => {
  const make = (name: string, shift: number) => {
    const s = busyboxSynthetic(8, `${name}.${fx.run}.test`, HOSTS);
    // Each materialization has its own tags from the realization (as the allocation table gives them).
    s.realization.infranets[0]!.vni += shift;
    // VMs, so both materializations share the machines (a hypervisor carries several).
    for (const n of s.realization.nodes) n.mode = "virtual";
    for (const n of s.realization.nodes) for (const i of n.interfaces) if (i.vlan !== undefined) i.vlan += shift;
    for (const l of s.realization.links)
      for (const g of l.segments) for (const w of g.waypoints) if (w.vlan !== undefined) w.vlan += shift;
    return s;
  };
  const a = make("isoa", 0);
  const b = make("isob", 500);
  const pa = plan(a);
  const pb2 = plan(b);
  const [sa, sb] = await Promise.all([materializePlan(fx, pa), materializePlan(fx, pb2)]);
  assert.equal(sa.status, pb.MzStatus.ACTIVE, JSON.stringify(sa.failed));
  assert.equal(sb.status, pb.MzStatus.ACTIVE, JSON.stringify(sb.failed));
  const node = (mzid: string, name: string, host: string) => `${hostPrefix(mzid, host)}-n-${name}`;
  // Both have n1 (h2) at 10.0.0.2 and n2 (h3) at 10.0.0.3 on lan0. B's n2 goes quiet: A still answers A,
  // and B does not reach A's n2 through anything.
  inNs(node(pa.mzid, "n1", "h2"), "busybox ping -c 1 -W 2 10.0.0.3");
  inNs(node(pb2.mzid, "n1", "h2"), "busybox ping -c 1 -W 2 10.0.0.3");
  inNs(node(pb2.mzid, "n2", "h3"), "busybox ip link set eth1 down");
  inNs(node(pa.mzid, "n1", "h2"), "busybox ping -c 1 -W 2 10.0.0.3");
  assert.throws(() =>
    inNs(node(pb2.mzid, "n1", "h2"), "busybox ip neigh flush dev eth1; busybox ping -c 2 -W 1 10.0.0.3"),
  );
  // And the infranets: B's n1 leases and resolves from B's infrapod only.
  const macA = /link\/ether ([0-9a-f:]+)/.exec(inNs(node(pa.mzid, "n2", "h3"), "busybox ip link show eth1"))?.[1];
  assert.ok(macA);
  const seen = inNs(node(pb2.mzid, "n1", "h2"), "busybox ip neigh show dev eth1");
  assert.ok(!seen.includes(macA), `B's n1 never learns A's n2 (${macA}): ${seen}`);
  for (const p of [pa, pb2])
    assert.equal((await materializePlan(fx, p, "dematerialize")).status, pb.MzStatus.DEMATERIALIZED);
});

test("an agent SIGKILLed mid-materialization: its nodes fail naming the host, the rest completes; restarted, it reconciles; dematerialize completes without it", {
  skip,
}, async () => {
  const mzid = `kill.${fx.run}.test`;
  const s = busyboxSynthetic(12, mzid, HOSTS);
  const p = plan(s);
  const part = p.facilities[0]!;
  const portal = portalOf(fx);
  await portal.notifyIncoming({ mzid, resources: part.resources });
  await portal.materialize({ mzid, fragments: part.fragments.map(fragmentToPb) });
  const h2 = fx.hosts.find((h) => h.name === "h2")!;
  // Mid-materialization: once the infrapod is up and nodes are being set up.
  await until(async () => (await portal.status({ mzid, resources: part.resources })).complete >= 3);
  await h2.kill("SIGKILL");
  const onH2 = new Set(["n1", "n4", "n7", "n10"]);
  const settled = await until(async () => {
    const st = await portal.status({ mzid, resources: part.resources });
    const done = st.nodes.filter((n) => n.action === pb.ActionState.COMPLETE || n.action === pb.ActionState.ERROR);
    return done.length === 12 ? st : undefined;
  }, 120_000);
  assert.equal(settled.status, pb.MzStatus.ERROR);
  for (const n of settled.nodes) {
    if (onH2.has(n.node)) {
      if (n.action === pb.ActionState.ERROR) assert.match(n.error, /host h2/, `${n.node}: ${n.error}`);
    } else assert.equal(n.action, pb.ActionState.COMPLETE, `${n.node} (not on h2) completes: ${n.error}`);
  }
  assert.ok(
    settled.nodes.some((n) => n.action === pb.ActionState.ERROR),
    "some node on h2 failed",
  );
  // Back: the agent reconciles h2 with the store, the failed actions run again, and all is active.
  await h2.start();
  const active = await until(async () => {
    const st = await portal.status({ mzid, resources: part.resources });
    return st.status === pb.MzStatus.ACTIVE ? st : undefined;
  }, 120_000);
  assert.equal(active.nodes.length, 12);
  inNs(`${hostPrefix(mzid, "h2")}-n-n1`, "busybox ping -c 1 -W 2 10.0.0.3"); // h2 → h3 on lan0

  // Gone again: dematerialize completes without it; h2's part goes when it comes back.
  await h2.kill("SIGKILL");
  await until(async () => ((await readHost(fx.store, "h2"))?.alive ? undefined : true));
  const d = await materializePlan(fx, p, "dematerialize");
  assert.equal(d.status, pb.MzStatus.DEMATERIALIZED);
  assert.ok(
    listNetns().some((n) => n.startsWith(hostPrefix(mzid, "h2"))),
    "h2's part waits for h2",
  );
  await h2.start();
  await until(async () => (listNetns().some((n) => n.startsWith(hostPrefix(mzid, "h2"))) ? undefined : true), 60_000);
  for (const h of HOSTS)
    assert.deepEqual(
      listNetns().filter((n) => n.startsWith(hostPrefix(mzid, h))),
      [],
      h,
    );
});

async function until<T>(check: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 200));
  }
}
