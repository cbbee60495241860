// External links and infranet routes from a facility of several hosts, for real: phobos
// runs over two host agents (h1 carries its nodes, emulator and infrapod, h2 its gateway,
// which has the facility's site), deimos on one machine, the two joined by the emulated
// wide area (15 ms one way). A node on h1 reaches its peer at deimos over h1 → h2 on
// phobos's VXLAN fabric, then the gateways' WireGuard tunnel; the infrapod on h1 routes
// deimos's infranet through the gateway namespace on h2.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { SECOND_FACILITY } from "@merge/facility";
import { listNetns } from "@merge/facility/linux";
import { skip } from "@merge/facility/testing/linux";
import { phobos, spreadOverHosts } from "@merge/facility-model";
import type { Facility } from "@merge/xir";
import {
  assertAddedLatency,
  crossingAnswers,
  dematerializeEverywhere,
  fastest,
  hostPrefix,
  LINE4,
  LINE4_25MS,
  type MultiStack,
  materializedAcross,
  pings,
  placeOf,
  startMulti,
} from "./multi-fixture.ts";

/** Four bare-metal nodes on one LAN: one facility (three metal-capable nodes) cannot hold them. */
const LAN4 = `
import { addressing, image, metal, Network, routing } from "@merge/model";
const net = new Network("lan4", addressing.ipv4, routing.static);
const n = ["a", "b", "c", "d"].map((x) => net.node(x, image("busybox"), metal()));
net.connect(n);
export default net;
`;

const noWg = spawnSync("wg", ["--version"]).status !== 0 ? "wireguard-tools is not installed" : false;

/** phobos over h1 and h2: everything on h1 but the gateway, on h2. */
function overHosts(): Facility {
  const f = spreadOverHosts(phobos(), ["h1"]);
  return { ...f, resources: f.resources.map((r) => (r.kind === "gateway" ? { ...r, host: "h2" } : r)) };
}

const PROJECT = `xhost${randomBytes(2).toString("hex")}`;

describe("external links from a facility of several hosts", { skip: skip || noWg }, () => {
  let stack: MultiStack;
  before(async () => {
    stack = await startMulti({ backend: "linux", models: [overHosts(), phobos({ name: SECOND_FACILITY })] });
  });
  after(async () => {
    await stack?.close();
  });

  /** Realized, materialized and active: each node of the external link where it is, with its addresses. */
  async function materialized(experiment: string, source: string) {
    const { mz, rz, ends } = await materializedAcross(stack, `${PROJECT}${experiment}`, experiment, source);
    return { mz, nodes: ends.map((e) => ({ ...e, ...placeOf(stack, mz, rz, e.node) })) };
  }

  /** A point-to-point external link: its end at phobos (on h1), its end at deimos. */
  async function across(experiment: string, source: string) {
    const { mz, nodes } = await materialized(experiment, source);
    const a = nodes.find((n) => n.facility === "phobos");
    const b = nodes.find((n) => n.facility === SECOND_FACILITY);
    assert.ok(a && b && nodes.length === 2, JSON.stringify(nodes));
    assert.equal(a.host, "h1", "phobos's end of the external link is on h1, not on the gateway's host");
    crossingAnswers(a, b);
    return { mz, a, b };
  }

  test("a node on a host without the gateway: ping across shows the wide area, names and infranets cross", async () => {
    const { mz, a, b } = await across("line", LINE4);
    try {
      // The gateway is on h2: its namespace is there, not on h1 (where the node and the infrapod are).
      assert.ok(listNetns().includes(`${hostPrefix(stack, mz, "h2")}-g`), "the gateway namespace is on h2");
      assert.ok(!listNetns().includes(`${hostPrefix(stack, mz, "h1")}-g`), "no gateway namespace on h1");
      const rtt = fastest(pings(a.netns, b.address, 10));
      assert.ok(rtt >= 30 && rtt < 45, `RTT ${rtt} ms from ${a.node}@h1 (phobos) to ${b.node}@${b.facility}`);
      // By name, from the node on h1 (exec through its host's agent): the other facility's node resolves.
      const named = await stack.mrg(["exec", a.node, mz, "--", "busybox", "ping", "-c", "2", "-W", "3", b.node]);
      assert.equal(named.code, 0, `${a.node} pings ${b.node} by name: ${named.stdout}${named.stderr}`);
      assert.match(named.stdout, new RegExp(`PING ${b.node} \\(${b.address.replaceAll(".", "\\.")}\\)`));
      // The infranets are routed both ways: h1's infrapod → h2's gateway namespace → deimos.
      assert.ok(a.infranet && b.infranet, "both nodes have infranet addresses");
      assert.ok(fastest(pings(a.netns, b.infranet, 3)) >= 30, `${a.node} reaches ${b.node}'s infranet address`);
      assert.ok(fastest(pings(b.netns, a.infranet, 3)) >= 30, `${b.node} reaches ${a.node}'s infranet address`);
    } finally {
      await dematerializeEverywhere(stack, mz);
      await stack.admin.relinquish(`${PROJECT}line`, "line", "r1");
    }
  });

  test("an emulated external link: the emulator on h1 reaches the gateway on h2", async () => {
    const { mz, a, b } = await across("slow", LINE4_25MS);
    try {
      assertAddedLatency(a, b);
    } finally {
      await dematerializeEverywhere(stack, mz);
      await stack.admin.relinquish(`${PROJECT}slow`, "slow", "r1");
    }
  });

  test("a LAN with members at both facilities: its bridges on h1 and on the gateway's host h2, one segment across", async () => {
    const { mz, nodes } = await materialized("lan", LAN4);
    try {
      const here = nodes.filter((n) => n.facility === "phobos");
      const there = nodes.find((n) => n.facility === SECOND_FACILITY);
      assert.ok(here.length >= 1 && there, JSON.stringify(nodes));
      for (const n of here) assert.equal(n.host, "h1");
      // phobos's LAN bridge on h2 (its gateway's host) joins h1's over the fabric and carries the wide-area segment.
      const br = spawnSync("ip", ["-n", `${hostPrefix(stack, mz, "h2")}-x`, "-o", "link", "show", "type", "bridge"], {
        encoding: "utf8",
      });
      assert.match(br.stdout, /b:/, `a LAN bridge on h2: ${br.stdout}${br.stderr}`);
      const a = here[0]!;
      const across = fastest(pings(a.netns, there.address, 8));
      assert.ok(across >= 30 && across < 45, `LAN RTT ${across} ms from ${a.node}@h1 to ${there.node}@deimos`);
      const a2 = here[1];
      if (a2) assert.ok(fastest(pings(a.netns, a2.address, 4)) < 10, `${a.node} and ${a2.node} meet on h1`);
    } finally {
      await dematerializeEverywhere(stack, mz);
    }
  });
});
