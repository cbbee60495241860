// A facility whose parts are spread over hosts: the harbor's infrapod on one host
// with standby nodes on another (its infranet tunnelled between them), and an
// emulator on a host that carries neither nodes nor the infrapod (cleaned at
// teardown like the rest). Hosts are namespaces with their own agents (hosts-fixture.ts).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { planMaterialization } from "@merge/materialize";
import * as pb from "@merge/proto";
import type { Facility } from "@merge/xir";
import { harborName, harborSpecOf } from "../../src/harbor.ts";
import { harborMzid } from "../../src/linux/backend.ts";
import { listNetns } from "../../src/linux/processes.ts";
import { prefixesOwned } from "../../src/linux/state.ts";
import { until } from "../fixture.ts";
import { minRtt, skip } from "./fixture.ts";
import { busyboxSynthetic, hostPrefix, materializePlan, suiteHosts } from "./hosts-fixture.ts";

const HOSTS = ["h1", "h2", "h3"];
/** Six testbed nodes round robin over h1 and h2 (LANs of three), the infrapod server on h1, the emulator on h3. */
function shaped(mzid: string) {
  const s = busyboxSynthetic(6, mzid, ["h1", "h2"], 3);
  const emu = s.facility.resources.find((r) => r.kind === "emulator");
  if (emu) emu.host = "h3";
  return s;
}
const model: Facility = shaped("model.x.y").facility;

const fx = suiteHosts(model, HOSTS, { leaseTtl: 3, harbor: true }, skip);

function inNs(ns: string, cmd: string): { code: number; out: string } {
  const r = spawnSync("nsenter", [`--net=/run/netns/${ns}`, "--", "busybox", "sh", "-c", cmd], { encoding: "utf8" });
  return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

/** A harbor resource's standby namespace on its host. */
function standbyNs(resource: string): string {
  const host = model.resources.find((r) => r.id === resource)?.host as string;
  const h = fx.hosts.find((x) => x.name === host);
  if (!h) throw new Error(`no host ${host}`);
  return `${hostPrefix(harborMzid(harborName(model.name), h.dataDir), host)}-n-${resource}`;
}

/** Until every harbor resource waits in standby on its host holding its harbor lease. */
async function allInStandby(): Promise<void> {
  // One deadline for all. 13-16 s here; a host registering while the server's part was being made once
  // left its standby nodes unanswered for their 90 s boot deadline (the server now floods to it first).
  const end = Date.now() + 60_000;
  for (const r of harborSpecOf(model).resources)
    await until(
      `${r.id} in standby with ${r.address}`,
      async () =>
        inNs(standbyNs(r.id), "busybox ip -4 addr show eth0").out.includes(`${r.address}/`) ? true : undefined,
      Math.max(0, end - Date.now()),
    );
}

test("the harbor spans hosts: its infrapod on h1 leases and configures the standby nodes of h2", { skip }, async () => {
  await allInStandby();
  // m1 is on h2: its lease came from h1's harbor infrapod, through the harbor's tunnel.
  const m1 = standbyNs("m1");
  assert.ok(
    m1.startsWith(hostPrefix(harborMzid(harborName(model.name), fx.hosts[1]!.dataDir), "h2")),
    "m1 waits on h2",
  );
  assert.equal(inNs(m1, "busybox ping -c 1 -W 2 172.30.0.1").code, 0, "h2's standby node reaches h1's harbor infrapod");
  // The harbor's own names resolve there (its nex on h1), and m0 (h1) answers m1 (h2).
  const m0 = harborSpecOf(model).resources.find((r) => r.id === "m0")?.address as string;
  assert.match(inNs(m1, "busybox nslookup -type=a m0 172.30.0.1").out, new RegExp(m0.replaceAll(".", "\\.")));
  assert.equal(inNs(m1, `busybox ping -c 1 -W 2 ${m0}`).code, 0, "standby nodes of two hosts reach each other");
});

test("an emulator on a host with neither nodes nor the infrapod carries the link, and teardown leaves nothing there; nodes return to the harbor on their hosts", {
  skip,
}, async () => {
  const mzid = `emu.${fx.run}.test`;
  const s = shaped(mzid);
  // wan0 joins n0 (h1) and n3 (h2) through the emulator on h3: 10 ms each way.
  const sock = (node: string, i: number) =>
    s.experiment.nodes.find((n) => n.name === node)!.sockets.find((k) => k.index === i)!;
  sock("n0", 1).addrs = ["10.254.0.0/31"];
  sock("n3", 2).addrs = ["10.254.0.1/31"];
  s.experiment.links.find((l) => l.name === "wan0")!.constraints = [{ prop: "latency", op: "==", value: 10_000_000 }];
  const p = planMaterialization(s.realization, s.experiment, [model]);
  assert.deepEqual(p.facilities[0]?.hosts?.slice().sort(), HOSTS, "h3 has a part: the emulator");
  const st = await materializePlan(fx, p);
  assert.equal(st.status, pb.MzStatus.ACTIVE, JSON.stringify(st.failed));
  const on = (h: string) => listNetns().filter((n) => n.startsWith(hostPrefix(mzid, h)));
  assert.ok(on("h3").includes(`${hostPrefix(mzid, "h3")}-e`), "the emulator is h3's");
  assert.equal(on("h3").filter((n) => n.includes("-n-")).length, 0, "and no node is");
  const n3 = `${hostPrefix(mzid, "h2")}-n-n3`;
  inNs(n3, "busybox ping -c 1 -W 2 10.254.0.0");
  const ping = inNs(n3, "busybox ping -c 5 -i 0.2 -W 2 10.254.0.0");
  const rtt = minRtt(ping.out);
  assert.ok(rtt >= 19 && rtt <= 27, `RTT ${rtt} ms through h3's emulator: ${ping.out}`);
  // The nodes left the harbor on their hosts.
  assert.ok(!listNetns().includes(standbyNs("m1")), "m1 left the harbor on h2");

  const d = await materializePlan(fx, p, "dematerialize");
  assert.equal(d.status, pb.MzStatus.DEMATERIALIZED);
  for (const h of fx.hosts) {
    assert.deepEqual(on(h.name), [], `no namespace of ${mzid} is left on ${h.name}`);
    assert.ok(
      !prefixesOwned(h.dataDir).includes(hostPrefix(mzid, h.name)),
      `no record of ${mzid} is left on ${h.name}`,
    );
  }
  await allInStandby();
});
