// Node operations for real, on the linux data plane: portal + commander (mTLS)
// + driver + rex + LinuxBackend in this process, driven by `mrg`. Exec a ping
// across an emulated link, change its latency at runtime and measure it, reboot
// a node and see it come back, dematerialize and check nothing is left.
// Needs root and network namespaces; skipped with the reason otherwise.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { medianRtt, skip } from "@merge/facility/testing/linux";
import { linuxPairSuite } from "./portal-stack.ts";

describe("node operations on the linux backend, through portal and commander", { skip }, () => {
  const pair = linuxPairSuite("mrg-nodeops-linux-");
  const { mz: MZ, mrg } = pair;

  test("exec, emulation change measured, reboot tracked, dematerialize leaves nothing", {
    timeout: 240_000,
  }, async () => {
    const up = await mrg(["materialize", MZ, "--timeout", "180"]);
    assert.equal(up.code, 0, up.stderr + up.stdout);

    // Exec: output streamed back, the remote exit code is mrg's.
    const ping = await mrg(["exec", "a", MZ, "--", "busybox", "ping", "-c", "10", "-i", "0.2", "b"]);
    assert.equal(ping.code, 0, ping.stderr + ping.stdout);
    const base = medianRtt(ping.stdout);
    assert.ok(base > 17 && base < 26, `RTT ${base} ms over the 10 ms link, expected ≈ 20`);
    const fail = await mrg(["exec", "a", MZ, "--", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert.equal(fail.code, 3);
    assert.equal(fail.stdout, "out\n");
    assert.equal(fail.stderr, "err\n");

    // A command that outlives its --timeout is killed, inside the node too.
    const t0 = Date.now();
    const slowCmd = await mrg(["exec", "a", MZ, "--timeout", "1", "--", "busybox", "sleep", "30"]);
    assert.equal(slowCmd.code, 137, slowCmd.stderr);
    assert.ok(Date.now() - t0 < 15_000, "killed after about a second");
    const ps = await mrg(["exec", "a", MZ, "--", "busybox", "ps"]);
    assert.doesNotMatch(ps.stdout, /sleep 30/);
    // No command: a shell in the node, fed from stdin (shell-linux.test.ts covers terminals).
    const shell = await mrg(["exec", "a", MZ], "echo in-$(hostname)\n");
    assert.equal(shell.code, 0, shell.stderr);
    assert.match(shell.stdout, /in-a/);

    // Emulation at runtime: 30 ms each way, RTT ≈ 60 ms.
    const set = await mrg(["emu", "set", "ab", MZ, "--latency", "30ms"]);
    assert.equal(set.code, 0, set.stderr);
    const slow = await mrg(["exec", "a", MZ, "--", "busybox", "ping", "-c", "10", "-i", "0.2", "b"]);
    assert.equal(slow.code, 0, slow.stderr + slow.stdout);
    const rtt = medianRtt(slow.stdout);
    assert.ok(Math.abs(rtt - 60) <= 6, `RTT ${rtt} ms after setting 30 ms, expected 60 ± 6`);
    const shown = await mrg(["emu", "show", MZ, "--json"]);
    assert.deepEqual(JSON.parse(shown.stdout), [{ link: "ab", emulation: { latencyNs: 30e6 } }]);

    // Power: stop (node answers nothing, tracked off), reboot back (answers again, tracked on).
    /** Start time (clock ticks since host boot) of b's init, PID 1 of its PID namespace. */
    const initStart = async () => {
      const r = await mrg(["exec", "b", MZ, "--", "busybox", "cat", "/proc/1/stat"]);
      assert.equal(r.code, 0, r.stderr);
      return Number(r.stdout.slice(r.stdout.lastIndexOf(")") + 2).split(" ")[19]);
    };
    const bootedBefore = await initStart();
    const stop = await mrg(["node", "stop", "b", MZ, "--json"]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(JSON.parse(stop.stdout).power, "off");
    const dead = await mrg(["exec", "a", MZ, "--", "busybox", "ping", "-c", "2", "-W", "1", "b"]);
    assert.notEqual(dead.code, 0, "a stopped node does not answer");
    const exStopped = await mrg(["exec", "b", MZ, "--", "true"]);
    assert.equal(exStopped.code, 1);
    assert.match(exStopped.stderr, /node b is not running \(power it on first\)/);
    const status1 = JSON.parse((await mrg(["show", "materialization", MZ, "--json"])).stdout) as {
      nodes: { node: string; power: string }[];
    };
    assert.equal(status1.nodes.find((n) => n.node === "b")?.power, "off");

    const start = await mrg(["node", "start", "b", MZ, "--json"]);
    assert.equal(start.code, 0, start.stderr);
    assert.equal(JSON.parse(start.stdout).power, "on");
    const started = await initStart();
    assert.ok(started > bootedBefore, `b's init is new after stop and start (${bootedBefore} → ${started})`);
    // A reboot keeps the node's disk; a reimage wipes it back to the image.
    const mark = await mrg(["exec", "b", MZ, "--", "busybox", "touch", "/root/scratch"]);
    assert.equal(mark.code, 0, mark.stderr);
    const hasMark = async () =>
      (await mrg(["exec", "b", MZ, "--", "busybox", "test", "-e", "/root/scratch"])).code === 0;
    const reboot = await mrg(["node", "reboot", "b", MZ, "--json"]);
    assert.equal(reboot.code, 0, reboot.stderr);
    assert.equal(JSON.parse(reboot.stdout).power, "on");
    const alive = await mrg(["exec", "a", MZ, "--", "busybox", "ping", "-c", "3", "-W", "2", "b"]);
    assert.equal(alive.code, 0, alive.stderr + alive.stdout);
    const booted = await initStart();
    assert.ok(booted > started, `b's init is new after the reboot (start time ${started} → ${booted})`);
    assert.ok(await hasMark(), "a reboot keeps what was written to the node's disk");
    const reimage = await mrg(["node", "reimage", "b", MZ, "--json"]);
    assert.equal(reimage.code, 0, reimage.stderr);
    assert.equal(JSON.parse(reimage.stdout).power, "on");
    assert.equal(await hasMark(), false, "a reimage wipes the node's disk back to its image");
    const fresh = await mrg(["exec", "a", MZ, "--", "busybox", "ping", "-c", "3", "-W", "2", "b"]);
    assert.equal(fresh.code, 0, `the reimaged node is configured again: ${fresh.stderr}${fresh.stdout}`);
    const status2 = JSON.parse((await mrg(["show", "materialization", MZ, "--json"])).stdout) as {
      nodes: { node: string; power: string }[];
    };
    assert.deepEqual(
      status2.nodes.map((n) => [n.node, n.power]),
      [
        ["a", "on"],
        ["b", "on"],
      ],
    );

    await pair.dematerializeClean(120);
  });
});
