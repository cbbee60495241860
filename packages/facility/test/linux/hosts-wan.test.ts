// Failures and a wide-area underlay, with hosts as namespaces (hosts-fixture.ts):
// h2 and h3 on another subnet behind a router that delays each way (VXLAN over
// L3), and a host whose namespace is deleted mid-materialization (its machine gone).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fragmentToPb } from "@merge/materialize";
import * as pb from "@merge/proto";
import type { Facility } from "@merge/xir";
import { readHost } from "../../src/host/records.ts";
import { fabricVeth } from "../../src/linux/fabric.ts";
import { until } from "../fixture.ts";
import { skip } from "./fixture.ts";
import {
  busyboxSynthetic,
  dematerializeClean,
  hostPrefix,
  materializePlan,
  planOf,
  portalOf,
  suiteHosts,
} from "./hosts-fixture.ts";

const HOSTS = ["h1", "h2", "h3"];
const DELAY_MS = 5;
/** One LAN of six busybox nodes round robin over h1..h3 (n0 n3 on h1, n1 n4 on h2, n2 n5 on h3); infra on h1. */
const shaped = (mzid: string) => busyboxSynthetic(6, mzid, HOSTS, 6);
const model: Facility = shaped("model.x.y").facility;

const fx = suiteHosts(model, HOSTS, { leaseTtl: 3, routed: { hosts: ["h2", "h3"], delayMs: DELAY_MS } }, skip);

function inNs(ns: string, cmd: string): string {
  const r = spawnSync("nsenter", [`--net=/run/netns/${ns}`, "--", "busybox", "sh", "-c", cmd], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} in ${ns}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

const rttOf = (out: string) => Number(/= [\d.]+\/([\d.]+)\//.exec(out)?.[1]);
const node = (mzid: string, name: string, host: string) => `${hostPrefix(mzid, host)}-n-${name}`;

test("a routed underlay with latency: the infranet and a LAN span both subnets over VXLAN across the router", {
  skip,
}, async () => {
  const h2 = fx.hosts[1]!;
  assert.notEqual(h2.underlay.split(".").slice(0, 3).join("."), fx.gateway.split(".").slice(0, 3).join("."));
  const mzid = `wan.${fx.run}.test`;
  const p = planOf(shaped(mzid));
  const st = await materializePlan(fx, p);
  assert.equal(st.status, pb.MzStatus.ACTIVE, JSON.stringify(st.failed));
  // n1 (h2, far side) leased its address from the infrapod on h1 across the router.
  assert.match(inNs(node(mzid, "n1", "h2"), "busybox ip -4 addr show eth0"), /172\.30\.0\.3\//);
  // n1 → n0 (h1) crosses the router: both delays; a full 1500-byte frame passes unfragmented.
  inNs(node(mzid, "n1", "h2"), "busybox ping -c 1 -W 2 10.0.0.1");
  const across = rttOf(inNs(node(mzid, "n1", "h2"), "busybox ping -c 5 -i 0.2 -W 2 10.0.0.1"));
  assert.ok(across >= 2 * DELAY_MS, `RTT ${across} ms across the router`);
  inNs(node(mzid, "n1", "h2"), "busybox ping -c 1 -W 2 -s 1472 10.0.0.1");
  // n1 → n2 (h3): same far subnet, no router between.
  inNs(node(mzid, "n1", "h2"), "busybox ping -c 1 -W 2 10.0.0.3");
  const near = rttOf(inNs(node(mzid, "n1", "h2"), "busybox ping -c 5 -i 0.2 -W 2 10.0.0.3"));
  assert.ok(near < across, `RTT ${near} ms on one side, ${across} ms across`);
  await dematerializeClean(fx, p, HOSTS);
});

test("a host's namespace deleted mid-materialization: the facility sees it down, its nodes fail naming it, the rest completes, teardown completes", {
  skip,
}, async () => {
  const mzid = `gone.${fx.run}.test`;
  const p = planOf(shaped(mzid));
  const part = p.facilities[0]!;
  // Swept on every host when the fixture closes, even if this test fails half way.
  fx.fabric.track(mzid);
  const portal = portalOf(fx);
  await portal.notifyIncoming({ mzid, resources: part.resources });
  await portal.materialize({ mzid, fragments: part.fragments.map(fragmentToPb) });
  await until(
    "the infrapod up",
    async () => ((await portal.status({ mzid, resources: part.resources })).complete >= 3 ? true : undefined),
    60_000,
  );
  // h3's machine goes: its link to the underlay and its namespace, its agent still running (cut off,
  // the facility's connections to it open: no reset reaches the facility); then the agent.
  const h3 = fx.hosts[2]!;
  spawnSync("ip", ["link", "del", fabricVeth(fx.fabric, "h3")]);
  spawnSync("ip", ["netns", "del", h3.netns]);
  await until("h3 down", async () => ((await readHost(fx.store, "h3"))?.alive === false ? true : undefined), 30_000);
  const settled = await until(
    "every node settled",
    async () => {
      const st = await portal.status({ mzid, resources: part.resources });
      const done = st.nodes.filter((n) => n.action === pb.ActionState.COMPLETE || n.action === pb.ActionState.ERROR);
      return done.length === 6 ? st : undefined;
    },
    120_000,
  );
  assert.equal(settled.status, pb.MzStatus.ERROR);
  for (const n of settled.nodes) {
    if (n.node === "n2" || n.node === "n5") {
      if (n.action === pb.ActionState.ERROR) assert.match(n.error, /host h3 is down/, `${n.node}: ${n.error}`);
    } else assert.equal(n.action, pb.ActionState.COMPLETE, `${n.node} (not on h3) completes: ${n.error}`);
  }
  assert.ok(
    settled.nodes.some((n) => n.action === pb.ActionState.ERROR),
    "a node on h3 failed (h3 went before its nodes were up)",
  );
  // The rest works: n0 (h1) and n1 (h2) on the LAN.
  inNs(node(mzid, "n1", "h2"), "busybox ping -c 1 -W 2 10.0.0.1");
  await dematerializeClean(fx, p, ["h1", "h2"]);
  // What h3 made is swept when the fixture closes (as when the machine comes back: reconcile.ts).
  await h3.kill("SIGKILL");
});
