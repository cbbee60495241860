import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { listNetns, processesIn } from "../../src/linux/processes.ts";
import { type Wan, wanUp } from "../../src/linux/wan.ts";
import { skip } from "./fixture.ts";

function rtts(netns: string, to: string, n = 5): number[] {
  const r = spawnSync("ip", ["netns", "exec", netns, "ping", "-c", String(n), "-i", "0.2", "-W", "2", to], {
    encoding: "utf8",
  });
  return [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? Number.NaN;

describe("a wide area between sites", { skip }, () => {
  const run = `wt${randomBytes(2).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), `mrg-${run}-`));
  let wan: Wan | undefined;
  after(async () => {
    await wan?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a round trip takes twice the one-way latency, the rate holds, a change applies at once, close leaves nothing", async () => {
    wan = await wanUp({ run, sites: ["phobos", "deimos"], latencyNs: 15_000_000, rateBps: 20_000_000, dataDir: dir });
    const [a, b] = wan.sites;
    assert.ok(a && b);
    assert.deepEqual(
      wan.sites.map((s) => [s.name, s.address]),
      [
        ["phobos", "203.0.113.1"],
        ["deimos", "203.0.113.2"],
      ],
    );
    const rtt = median(rtts(a.netns, b.address));
    assert.ok(rtt >= 30 && rtt < 45, `RTT ${rtt} ms across a 15 ms one-way wide area`);

    // iperf3 from site a to site b: held to the 20 Mbit/s of the port toward b.
    const server = spawn("ip", ["netns", "exec", b.netns, "iperf3", "-s", "-1", "-B", b.address], { stdio: "ignore" });
    try {
      await new Promise((r) => setTimeout(r, 500));
      const c = spawnSync(
        "ip",
        ["netns", "exec", a.netns, "iperf3", "-c", b.address, "-t", "3", "-J", "--connect-timeout", "3000"],
        { encoding: "utf8", timeout: 20_000 },
      );
      const bps = (JSON.parse(c.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received
        .bits_per_second;
      assert.ok(bps < 22e6 && bps > 5e6, `iperf3 across a 20 Mbit/s wide area: ${(bps / 1e6).toFixed(1)} Mbit/s`);
    } finally {
      server.kill();
    }

    await wan.setLatency(40_000_000);
    const slower = median(rtts(a.netns, b.address, 3));
    assert.ok(slower >= 80 && slower < 100, `RTT ${slower} ms after setting 40 ms one way`);

    const names = [wan.netns, a.netns, b.netns];
    await wan.close();
    assert.deepEqual(
      listNetns().filter((n) => names.includes(n)),
      [],
    );
    assert.deepEqual(processesIn(names), []);
  });

  test("bad options are refused, naming what is valid, and leave nothing", async () => {
    await assert.rejects(wanUp({ run: "Bad-Name", sites: ["a", "b"], dataDir: dir }), /run prefix 'Bad-Name'/);
    await assert.rejects(wanUp({ run, sites: ["a"], dataDir: dir }), /1 sites: expected between 2 and 200/);
    await assert.rejects(
      wanUp({ run, sites: ["a", "b"], rateBps: 10, dataDir: dir }),
      /rate 10 bit\/s: expected ≥ 8000/,
    );
    assert.deepEqual(
      listNetns().filter((n) => n.startsWith(run)),
      [],
    );
  });
});
