// The wide-area facility of shared hosts (facility-model's wideArea sample, ProtoGENI
// "version zero") on the linux backend with host agents: three sites, site1 and
// site2 behind a router that delays each way (the wide area), agents giving each
// node a block of NAT ports on their host's address. An experiment of three nodes
// takes one node per shared host; its LAN crosses the wide area as VXLAN; a TCP
// connection from a namespace outside the facility to host:port reaches the node
// (port first → its port 22, first+k → the same port); teardown leaves no NAT rule.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import { wideArea } from "@merge/facility-model";
import { planMaterialization, synthetic } from "@merge/materialize";
import * as pb from "@merge/proto";
import { realize } from "@merge/realize";
import type { Facility } from "@merge/xir";
import { listNetns } from "../../src/linux/processes.ts";
import { skip } from "./fixture.ts";
import { fixtureLeftovers, type HostsFixture, hostPrefix, materializePlan, startHosts } from "./hosts-fixture.ts";

const SITES = ["site0", "site1", "site2"];
const DELAY_MS = 5;
const NAT = { first: 20000, last: 20099, perNode: 10 };
const model: Facility = wideArea({ sites: 3 });
let fx: HostsFixture;
let pids: (number | undefined)[] = [];
/** A namespace outside the facility, on the near side's underlay (a user on the wide area). */
let client = "";
const listeners: ChildProcess[] = [];

before(async () => {
  if (skip) return;
  fx = await startHosts(model, SITES, {
    // A loaded machine delays beats: no host is taken for down here.
    leaseTtl: 20,
    routed: { hosts: ["site1", "site2"], delayMs: DELAY_MS },
    agentArgs: () => ["--nat", `${NAT.first}-${NAT.last}/${NAT.perNode}`],
  });
  pids = fx.hosts.map((h) => h.agent?.pid);
  const net = fx.gateway.split(".").slice(0, 3).join(".");
  client = `${fx.run}-cl`;
  const ip = (...a: string[]) => {
    const r = spawnSync("ip", a, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`ip ${a.join(" ")}: ${r.stderr}`);
  };
  ip("netns", "add", client);
  ip("link", "add", `${fx.run}cl`, "type", "veth", "peer", "name", "eth0", "netns", client);
  ip("link", "set", `${fx.run}cl`, "master", `${fx.run}fab`, "up");
  ip("-n", client, "addr", "add", `${net}.250/24`, "dev", "eth0");
  ip("-n", client, "link", "set", "eth0", "up");
  ip("-n", client, "link", "set", "lo", "up");
  // The far sites are behind the router (.254), as for the hosts on this side.
  const far = fx.hosts[1]!.underlay.split(".").slice(0, 3).join(".");
  ip("-n", client, "route", "add", `${far}.0/24`, "via", `${net}.254`);
});

after(async () => {
  if (skip || !fx) return;
  for (const l of listeners) if (l.exitCode === null) l.kill("SIGKILL");
  if (client && listNetns().includes(client)) spawnSync("ip", ["netns", "del", client]);
  spawnSync("ip", ["link", "del", `${fx.run}cl`]);
  await fx.close();
  // A deleted namespace's interfaces go when the kernel has finished with it (asynchronously, slower under load).
  let left = fixtureLeftovers(fx.run, pids);
  for (let i = 0; i < 50 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 200));
    left = fixtureLeftovers(fx.run, pids);
  }
  assert.deepEqual(left, [], "no namespace, interface or agent of the run is left");
});

/** Serve `reply` on `port` in a namespace (a node's sshd stands in: anything listening in the node). */
async function listen(ns: string, port: number, reply: string): Promise<void> {
  const py = `import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(("0.0.0.0",${port}))\ns.listen()\nprint("up",flush=True)\nwhile True:\n  c,a=s.accept()\n  c.sendall(("${reply} from %s\\n" % a[0]).encode())\n  c.close()`;
  const c = spawn("nsenter", [`--net=/run/netns/${ns}`, "--", "python3", "-c", py], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  listeners.push(c);
  await new Promise<void>((resolve, reject) => {
    c.stdout?.once("data", () => resolve());
    c.once("exit", (code) => reject(new Error(`listener in ${ns} exited (${code})`)));
  });
}

/** What a TCP connection from the client to address:port reads. */
function connect(address: string, port: number): string {
  const r = spawnSync(
    "nsenter",
    [`--net=/run/netns/${client}`, "--", "busybox", "nc", "-w", "5", address, String(port)],
    { encoding: "utf8", input: "", timeout: 15_000 },
  );
  return `${r.stdout}${r.stderr}`.trim();
}

function tables(ns: string): string {
  return spawnSync("ip", ["netns", "exec", ns, "nft", "list", "tables"], { encoding: "utf8" }).stdout;
}

test("one node per shared host, a LAN over the wide area, SSH ports through NAT from outside, no NAT rule left", {
  skip,
}, async () => {
  const mzid = `nat.${fx.run}.test`;
  const s = synthetic(3, { mzid, lanSize: 3 });
  for (const n of s.experiment.nodes) delete n.image;
  const r = realize(s.experiment, { facilities: [model], interconnects: [] }, undefined, { id: mzid });
  if (!r.ok) assert.fail(JSON.stringify(r.problems));
  const where = new Map(
    r.realization.nodes.map((n) => [n.node, model.resources.find((x) => x.id === n.resource)?.host]),
  );
  assert.deepEqual([...where.values()].sort(), SITES, "one node on each shared host");
  const plan = planMaterialization(r.realization, s.experiment, [model]);
  const st = await materializePlan(fx, plan);
  assert.equal(st.status, pb.MzStatus.ACTIVE, JSON.stringify(st.failed));
  const nodeNs = (node: string) => `${hostPrefix(mzid, where.get(node) as string)}-n-${node}`;
  const host = (node: string) => fx.hosts.find((h) => h.name === where.get(node))!;
  // The LAN crosses the wide area: n0 to every other node.
  for (const [i, node] of ["n1", "n2"].entries()) {
    const out = spawnSync(
      "nsenter",
      [`--net=/run/netns/${nodeNs("n0")}`, "--", "busybox", "ping", "-c", "1", "-W", "3", `10.0.0.${i + 2}`],
      {
        encoding: "utf8",
      },
    );
    assert.equal(out.status, 0, `n0 → ${node}: ${out.stdout}${out.stderr}`);
  }
  // Each node's block: the status shows it, and from outside its first port reaches the node's port 22.
  const controls = new Map(st.nodes.map((n) => [n.node, n.control]));
  for (const node of ["n0", "n1", "n2"]) {
    const c = controls.get(node);
    assert.ok(c, `node ${node} has its control access in the status`);
    assert.equal(c.address, host(node).underlay, `${node}'s ports are on its host's address`);
    assert.equal(c.lastPort - c.firstPort + 1, NAT.perNode);
    assert.equal(c.sshPort, c.firstPort);
    await listen(nodeNs(node), 22, `ssh of ${node}`);
    await listen(nodeNs(node), c.firstPort + 3, `port ${c.firstPort + 3} of ${node}`);
    // The node sees the connection come from its infranet (the NAT's address there), never the client's.
    const got = connect(c.address, c.sshPort);
    assert.match(got, new RegExp(`^ssh of ${node} from 172\\.30\\.`), `${c.address}:${c.sshPort} → ${node}:22`);
    assert.match(connect(c.address, c.firstPort + 3), new RegExp(`^port ${c.firstPort + 3} of ${node}`));
  }
  const d = await materializePlan(fx, plan, "dematerialize");
  assert.equal(d.status, pb.MzStatus.DEMATERIALIZED);
  for (const h of fx.hosts) {
    const prefix = hostPrefix(mzid, h.name);
    assert.deepEqual(
      listNetns().filter((n) => n.startsWith(prefix)),
      [],
    );
    assert.doesNotMatch(tables(h.netns), new RegExp(prefix), `no NAT table of ${mzid} left on ${h.name}`);
  }
  // Nothing forwards any more: the port reaches no node.
  assert.doesNotMatch(connect(host("n1").underlay, controls.get("n1")!.sshPort), /ssh of/);
});
