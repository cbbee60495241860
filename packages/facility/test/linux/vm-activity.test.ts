/**
 * A VM node's activity for idle detection (linux/activity.ts vmActivity): the
 * CPU time of its QEMU process, packets on its experiment tap (a container
 * pinging it), logins counted in the guest through its agent. One boot (TCG
 * is slow on a shared host: the waits are generous).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Constraint } from "@merge/xir";
import type { NodeActivity } from "../../src/linux/activity.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { experiment, type Harness, harness, isClean, leftovers, link, localPlan, node, qemuSkip } from "./fixture.ts";

const c = (prop: string, value: Constraint["value"]): Constraint => ({ prop, op: "==", value });

describe("linux data plane: a VM node's activity", { skip: qemuSkip(), timeout: 1_500_000 }, () => {
  let h: Harness;
  let mzid: string;
  before(async () => {
    h = await harness();
    mzid = h.mzid("vmact");
    const v = node("v", [["10.0.0.1/24"]]);
    v.constraints.push(c("virt.kind", "vm"), c("proc.cores", 1), c("memory.capacity", 256 * 2 ** 20));
    const ct = node("ct", [["10.0.0.2/24"]]);
    const xp = experiment(
      "vmact",
      [v, ct],
      [
        link("l", [
          ["v", 0],
          ["ct", 0],
        ]),
      ],
    );
    await h.dp.materialize(localPlan(xp, mzid));
  });
  after(async () => {
    if (h && mzid) await h.dp.dematerialize(mzid).catch(() => undefined);
    if (h && mzid) assert.ok(isClean(await leftovers(prefixOf(mzid), h.dataDir)), "nothing of the VM is left");
    await h?.close();
  });

  const sample = async () => new Map((await h.dp.activity(mzid)).map((a): [string, NodeActivity] => [a.node, a]));
  const packets = (a: NodeActivity | undefined) => (a ? a.rxPackets + a.txPackets : 0);

  test("QEMU's CPU time, packets on its experiment tap from a ping, no logins; all measured", async () => {
    const first = (await sample()).get("v")!;
    assert.equal(first.unmeasured, undefined, `all measured: ${first.unmeasured}`);
    assert.ok(first.cpuSeconds > 0, `a booted VM used CPU (${first.cpuSeconds} s)`);
    assert.equal(first.sshSessions, 0, "nobody is logged in to the guest");
    const ping = await h.dp.run(mzid, "ct", ["ping", "-c", "20", "-i", "0.05", "-W", "5", "10.0.0.1"]);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    const after = (await sample()).get("v")!;
    const grew = packets(after) - packets(first);
    // 20 echo requests in and 20 replies out through the tap (counted once, not again on its veth and bridge).
    assert.ok(grew >= 40 && grew < 120, `${grew} more packets on the VM's experiment tap`);
    assert.ok(after.cpuSeconds >= first.cpuSeconds, "CPU time only grows");
  });
});
