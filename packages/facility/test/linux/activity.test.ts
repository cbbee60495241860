// A node's activity as the facility reports it for idle detection (linux/activity.ts): packets on
// its experiment interfaces grow with traffic between nodes and not without; CPU time grows while
// something computes in it; the parsers of /proc and `ip -s -j link`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  experimentPackets,
  GUEST_LOGINS,
  isSshSession,
  type NodeActivity,
  statCpuSeconds,
  vmActivity,
  vmPackets,
} from "../../src/linux/activity.ts";
import { type Harness, harness, line3, localPlan, skip } from "./fixture.ts";

test("parsers: CPU seconds of a stat line (a command with spaces and parentheses), packets, ssh sessions", () => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
  const stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 30 20 20 0 1 0 100 1000 10";
  assert.equal(statCpuSeconds(stat), 3.5);
  const ip = JSON.stringify([
    { ifname: "lo", stats64: { rx: { packets: 1000 }, tx: { packets: 1000 } } },
    { ifname: "eth0", stats64: { rx: { packets: 500 }, tx: { packets: 400 } } },
    { ifname: "eth1", stats64: { rx: { packets: 7 }, tx: { packets: 9 } } },
    { ifname: "eth2", stats64: { rx: { packets: 3 }, tx: { packets: 1 } } },
  ]);
  assert.deepEqual(experimentPackets(ip), { rx: 10, tx: 10 }, "loopback and the infranet (eth0) do not count");
  assert.ok(isSshSession("sshd: alice@pts/0\0\0"));
  assert.ok(isSshSession("sshd: root@notty"));
  assert.ok(!isSshSession("sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"));
  assert.ok(!isSshSession("/usr/sbin/sshd\0-D\0"));
  // A VM's namespace: each NIC's frames cross its tap, bridge and veth; only the experiment taps count.
  const vmIp = JSON.stringify([
    { ifname: "t0", stats64: { rx: { packets: 900 }, tx: { packets: 900 } } },
    { ifname: "b1", stats64: { rx: { packets: 20 }, tx: { packets: 20 } } },
    { ifname: "eth1", stats64: { rx: { packets: 20 }, tx: { packets: 20 } } },
    { ifname: "t1", stats64: { rx: { packets: 20 }, tx: { packets: 21 } } },
    { ifname: "t12", stats64: { rx: { packets: 1 }, tx: { packets: 2 } } },
  ]);
  assert.deepEqual(vmPackets(vmIp), { rx: 21, tx: 23 });
});

test("guest logins: the busybox script counts sshd sessions (run here on /proc); a VM not running is unmeasured", async () => {
  const { execFileSync, spawn } = await import("node:child_process");
  const count = () => Number(execFileSync("/bin/busybox", ["sh", "-c", GUEST_LOGINS], { encoding: "utf8" }).trim());
  const here = count();
  assert.ok(Number.isInteger(here) && here >= 0, `a count: ${here}`);
  // A process named as sshd names a login's session process counts as one login more.
  const login = spawn("sleep", ["30"], { argv0: "sshd: alice@pts/7", stdio: "ignore" });
  try {
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(count(), here + 1);
  } finally {
    login.kill();
  }
  const down = await vmActivity("v", "nowhere", undefined, () => Promise.reject(new Error("not asked")));
  assert.equal(down.unmeasured, "the VM is not running");
  // The guest agent failing leaves logins unmeasured, naming why; CPU and packets are still read.
  const self = await vmActivity("v", "no-such-netns-x", process.pid, async () => ({
    code: 1,
    output: Buffer.from("agent gone"),
  }));
  assert.ok(self.cpuSeconds > 0, "this process's CPU as the QEMU stand-in");
  assert.match(self.unmeasured ?? "", /packets: .*; logins: exit 1: agent gone/);
});

describe("linux data plane: node activity", { skip }, () => {
  let h: Harness;
  let mzid: string;
  before(async () => {
    h = await harness();
    mzid = h.mzid("activity");
    await h.dp.materialize(localPlan(line3(), mzid));
  });
  after(async () => {
    if (h && mzid) await h.dp.dematerialize(mzid).catch(() => undefined);
    await h?.close();
  });

  const sample = async () => new Map((await h.dp.activity(mzid)).map((a): [string, NodeActivity] => [a.node, a]));
  const packets = (a: NodeActivity | undefined) => (a ? a.rxPackets + a.txPackets : 0);

  test("traffic between nodes shows as packets on their experiment interfaces; no traffic, no growth", async () => {
    // A node's first seconds send its own neighbour and router messages (IPv6 on experiment interfaces);
    // a loaded host may start them late: wait until a second passes without them.
    let settled = await sample();
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const next = await sample();
      const still = ["a", "b", "c"].every((n) => packets(next.get(n)) - packets(settled.get(n)) < 3);
      settled = next;
      if (still) break;
    }
    const before = settled;
    assert.deepEqual([...before.keys()].sort(), ["a", "b", "c"]);
    for (const a of before.values()) {
      assert.equal(a.unmeasured, undefined, `${a.node}: all measured`);
      assert.equal(a.sshSessions, 0);
    }
    // a → c across b (the routed middle node): 20 echo requests and replies.
    const ping = await h.dp.run(mzid, "a", ["ping", "-c", "20", "-i", "0.05", "-W", "2", "10.0.1.2"]);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    const during = await sample();
    for (const [node, least] of [
      ["a", 40],
      ["b", 80],
      ["c", 40],
    ] as const) {
      const grew = packets(during.get(node)) - packets(before.get(node));
      assert.ok(grew >= least, `${node}: ${grew} more packets on its experiment interfaces (at least ${least})`);
    }
    // Quiet for a second: at most a stray neighbour or router message, nothing like the ping's.
    await new Promise((r) => setTimeout(r, 1000));
    const quiet = await sample();
    for (const node of ["a", "b", "c"]) {
      const grew = packets(quiet.get(node)) - packets(during.get(node));
      assert.ok(grew < 10, `${node}: ${grew} packets while nothing talked`);
    }
  });

  test("CPU time grows while something computes in the node", async () => {
    const before = (await sample()).get("b")!;
    // A busy loop in the background: it runs on in the node after the command returns.
    const r = await h.dp.run(mzid, "b", ["sh", "-c", "(while :; do :; done) >/dev/null 2>&1 & echo $!"]);
    assert.equal(r.code, 0, r.stderr);
    const pid = r.stdout.trim();
    try {
      await new Promise((res) => setTimeout(res, 2000));
      const busy = (await sample()).get("b")!;
      assert.ok(
        busy.cpuSeconds - before.cpuSeconds >= 0.2,
        `b used ${busy.cpuSeconds - before.cpuSeconds} s of CPU while busy`,
      );
    } finally {
      await h.dp.run(mzid, "b", ["kill", pid]);
    }
  });
});
