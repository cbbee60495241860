import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { spawnForwarder } from "../../src/linux/emulation.ts";
import { nativeProgram } from "../../src/linux/native.ts";
import { killAll } from "../../src/linux/processes.ts";
import { alive, check, skip } from "./fixture.ts";

/** CPU ms a process used so far (utime + stime, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

/**
 * mrg-emu when a port's interface goes down or away under it (a link torn
 * down, a crash half-way): the socket's error is read, not polled again and
 * again (a real-time process spinning on a core starves the host), and a
 * deleted port ends the forwarder (its link is gone).
 */
describe("mrg-emu: a port that goes down or away", { skip }, () => {
  const ns = `mrgemu${randomBytes(3).toString("hex")}`;
  let dir: string;
  let pid = 0;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "mrg-emu-port-"));
    await check("ip", ["netns", "add", ns]);
    for (const k of [0, 1])
      await check("ip", ["-n", ns, "link", "add", `p${k}`, "type", "veth", "peer", "name", `q${k}`]);
    for (const i of ["p0", "q0", "p1", "q1"]) await check("ip", ["-n", ns, "link", "set", i, "up"]);
    pid = await spawnForwarder({
      bin: await nativeProgram(dir, "mrg-emu"),
      netns: ns,
      dir,
      name: "l",
      ports: ["p0", "p1"],
      values: [{ latency: 1e6 }, { latency: 1e6 }],
      what: "the test link",
    });
  });
  after(async () => {
    if (pid && alive(pid)) await killAll([pid]);
    await check("ip", ["netns", "del", ns]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  test("a port taken down: the forwarder stays, idle", async () => {
    await check("ip", ["-n", ns, "link", "set", "p0", "down"]);
    const c0 = cpuMs(pid);
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(alive(pid), "the forwarder exited on a port that is only down");
    const used = cpuMs(pid) - c0;
    assert.ok(used < 300, `the forwarder used ${used} ms of CPU in 1.5 s with a port down (spinning)`);
    await check("ip", ["-n", ns, "link", "set", "p0", "up"]);
  });

  test("a port deleted: the forwarder exits", async () => {
    await check("ip", ["-n", ns, "link", "del", "p0"]);
    const end = Date.now() + 5000;
    while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!alive(pid), "the forwarder still runs after its port was deleted");
    const log = readFileSync(join(dir, "l.log"), "utf8");
    assert.match(log, /port p0 is gone/);
  });
});
