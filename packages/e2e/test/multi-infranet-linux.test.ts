// One experiment across two facilities, its network core: each facility's infranet (its
// own subnet) is routed to the other's over the gateway tunnel between them, so a node at
// one reaches a node at the other by its infranet name and address; a LAN with members at
// both is one VXLAN segment over that tunnel (the wide area's latency shows); the portal
// keeps what it handed the gateways in its store, so a restarted portal neither hands
// them again nor fails to dematerialize; teardown leaves nothing at either facility or in
// the wide area.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { SECOND_FACILITY } from "@merge/facility";
import { fastest, pings, skip } from "@merge/facility/testing/linux";
import { phobos } from "@merge/facility-model";
import type { MaterializationStatus } from "@merge/portal/client";
import { compiledHere, dematerializeClean, facilityPrefix, type MultiStack, startMulti } from "./multi-fixture.ts";

const noWg = spawnSync("wg", ["--version"]).status !== 0 ? "wireguard-tools is not installed" : false;

/** Four bare-metal nodes on one LAN: one facility (three metal-capable nodes) cannot hold them. */
const LAN4 = `
import { addressing, image, metal, Network, routing } from "@merge/model";
const net = new Network("lan4", addressing.ipv4, routing.static);
const n = ["a", "b", "c", "d"].map((x) => net.node(x, image("busybox"), metal()));
net.connect(n);
export default net;
`;

const PROJECT = `xinf${randomBytes(2).toString("hex")}`;
const EXPERIMENT = "lan";
const MZ = `r1.${EXPERIMENT}.${PROJECT}`;

describe("infranets routed across facilities, a LAN spanning them", { skip: skip || noWg }, () => {
  let stack: MultiStack;
  let st: MaterializationStatus;
  before(async () => {
    stack = await startMulti({ backend: "linux", models: [phobos(), phobos({ name: SECOND_FACILITY })] });
    await stack.accepted(PROJECT, EXPERIMENT, JSON.stringify(await compiledHere(LAN4)), "xir");
    const up = await stack.mrg(["materialize", MZ, "--timeout", "300"]);
    assert.equal(up.code, 0, up.stderr);
    st = JSON.parse((await stack.mrg(["show", "materialization", MZ, "--json"])).stdout) as MaterializationStatus;
    assert.equal(st.status, "active", JSON.stringify(st));
  });
  after(async () => {
    await stack?.close();
  });

  /** `busybox ping -c <n> -W 3 <to>` run on node `from` through `mrg exec`. */
  const execPing = (from: string, to: string, n: number) =>
    stack.mrg(["exec", from, MZ, "--", "busybox", "ping", "-c", String(n), "-W", "3", to]);

  /** One node at each facility, with its namespace and addresses. */
  function pair() {
    const at = (f: string) => st.nodes.filter((n) => n.facility === f);
    const [fa, fb] = stack.sites.facilities.map((f) => f.name) as [string, string];
    assert.ok(at(fa).length && at(fb).length, `nodes at both facilities: ${JSON.stringify(st.nodes)}`);
    const one = (n: (typeof st.nodes)[number]) => ({
      node: n.node,
      facility: n.facility,
      netns: `${facilityPrefix(MZ, n.facility)}-n-${n.node}`,
      address: (n.addresses?.[0] ?? "").split("/")[0]!,
    });
    const second = at(fa)[1];
    return { a: one(at(fa)[0]!), b: one(at(fb)[0]!), a2: second ? one(second) : undefined };
  }

  test("a node at one facility reaches a node at the other on its infranet, by name, and its experiment address", async () => {
    const { a, b } = pair();
    const byInfranet = await execPing(a.node, `${b.node}.infranet`, 2);
    assert.equal(
      byInfranet.code,
      0,
      `${a.node}@${a.facility} pings ${b.node}.infranet: ${byInfranet.stdout}${byInfranet.stderr}`,
    );
    const to = /PING \S+ \((172\.(\d+)\.\d+\.\d+)\)/.exec(byInfranet.stdout);
    assert.ok(to, byInfranet.stdout);
    const mine = await execPing(a.node, `${a.node}.infranet`, 1);
    const own = /PING \S+ \((172\.(\d+)\.\d+\.\d+)\)/.exec(mine.stdout);
    assert.ok(own, mine.stdout);
    assert.notEqual(to[2], own[2], `the infranets are distinct subnets (${own[1]} here, ${to[1]} there)`);
    // The reply took the wide area both ways (a facility's own infranet is a bridge away).
    assert.match(byInfranet.stdout, /2 packets received/);
    const rtt = [...byInfranet.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
    assert.ok(fastest(rtt) >= 30, `infranet RTT across ${fastest(rtt)} ms (two 15 ms crossings)`);
    // And from the other side, the other way.
    const back = await execPing(b.node, `${a.node}.infranet`, 1);
    assert.equal(back.code, 0, `${b.node} pings ${a.node}.infranet: ${back.stdout}${back.stderr}`);
    // The name alone is the node's experiment address (on the LAN).
    const named = await execPing(a.node, b.node, 2);
    assert.equal(named.code, 0, named.stdout + named.stderr);
    assert.match(named.stdout, new RegExp(`PING ${b.node} \\(${b.address.replaceAll(".", "\\.")}\\)`));
  });

  test("a LAN with members at both facilities: one segment across, the wide area's latency shows", () => {
    const { a, b, a2 } = pair();
    const across = fastest(pings(a.netns, b.address, 8));
    assert.ok(
      across >= 30 && across < 45,
      `LAN RTT ${across} ms from ${a.node}@${a.facility} to ${b.node}@${b.facility}`,
    );
    if (a2) {
      const here = fastest(pings(a.netns, a2.address, 4));
      assert.ok(here < 10, `LAN RTT ${here} ms between ${a.node} and ${a2.node}, both at ${a.facility}`);
    }
  });

  test("a restarted portal keeps the gateways it handed over and still dematerializes everything", async () => {
    const key = `portal/materializations/${PROJECT}/${EXPERIMENT}/r1`;
    const before = JSON.parse((await stack.portal.store.get(key))!.value) as {
      facilities: { facility: string; gatewayPeers?: { peer: string; publicKey: string }[] }[];
    };
    for (const f of before.facilities) {
      assert.equal(f.gatewayPeers?.length, 1, `${f.facility} was handed its peer's end: ${JSON.stringify(f)}`);
      assert.notEqual(f.gatewayPeers?.[0]?.peer, f.facility);
    }
    const joined = () => stack.portalLog.filter((l) => l.includes(`${MZ}: gateways joined`)).length;
    assert.equal(joined(), 1);
    await stack.restartPortal();
    // The restarted portal's reconcile sees the record: nothing handed again, the path still up.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(joined(), 1, stack.portalLog.join("\n"));
    const { a, b } = pair();
    assert.ok(fastest(pings(a.netns, b.address, 3)) >= 30);

    await dematerializeClean(stack, MZ, 240);
    // The wide area and the sites hold only their own ports.
    const wan = stack.sites.wan!.netns;
    const links = (ns: string) =>
      (JSON.parse(spawnSync("ip", ["-n", ns, "-j", "link"], { encoding: "utf8" }).stdout) as { ifname: string }[])
        .map((l) => l.ifname)
        .sort();
    assert.deepEqual(links(wan), ["lo", "s0", "s1"]);
    for (const f of stack.sites.facilities) assert.deepEqual(links(f.site!.netns), ["lo", "wan0"]);
  });
});
