import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { startEmulationControl } from "../../src/linux/control.ts";
import {
  avgRtt,
  experiment,
  type Harness,
  harness,
  inNetns,
  link,
  listening,
  localPlan,
  node,
  rtPing,
  skip,
} from "./fixture.ts";

const MS = 1e6;

/**
 * One emulated point-to-point link, a — b, changed at runtime between the
 * measurements (which also tests changing emulation without re-materializing).
 * On this kernel (no netem) the emulation is mrg-emu + tbf.
 */
describe("linux data plane: link emulation", { skip }, () => {
  let h: Harness;
  let mzid: string;
  let server: ChildProcess | undefined;
  before(async () => {
    h = await harness();
    mzid = h.mzid("emu");
    const xp = experiment(
      "emu",
      [node("a", [["10.0.0.1/24"]]), node("b", [["10.0.0.2/24"]])],
      [
        link(
          "ab",
          [
            ["a", 0],
            ["b", 0],
          ],
          [{ prop: "latency", op: "==", value: 10 * MS }],
        ),
      ],
    );
    await h.dp.materialize(localPlan(xp, mzid));
    // iperf3 (a host tool) serves in b's network namespace.
    server = spawn("nsenter", [`--net=${h.dp.netnsPath(mzid, "b")}`, "--", "iperf3", "-s", "-B", "10.0.0.2"], {
      stdio: "ignore",
    });
    await listening(h.dp.netnsPath(mzid, "b"), 5201);
  });
  after(async () => {
    if (server?.pid) server.kill("SIGKILL");
    await h?.close();
  });

  test("latency 10 ms per direction gives RTT 20 ± 3 ms", async () => {
    // Warm-up: the first packet also waits for ARP, which crosses the emulator too.
    await h.dp.run(mzid, "a", ["ping", "-c", "1", "10.0.0.2"]);
    const r = rtPing(h.dp.netnsPath(mzid, "a"), "10.0.0.2", 20);
    assert.equal(r.status, 0, r.stdout);
    const rtt = avgRtt(r.stdout);
    assert.ok(Math.abs(rtt - 20) <= 3, `RTT ${rtt} ms: ${r.stdout}`);
  });

  test("runtime change: latency 30 ms gives RTT 60 ± 4 ms, within seconds, no re-materialization", async () => {
    const t0 = Date.now();
    await h.dp.setEmulation(mzid, "ab", { latency: 30 * MS });
    assert.ok(Date.now() - t0 < 2000);
    const r = rtPing(h.dp.netnsPath(mzid, "a"), "10.0.0.2", 10);
    const rtt = avgRtt(r.stdout);
    assert.ok(Math.abs(rtt - 60) <= 4, `RTT ${rtt} ms`);
  });

  test("capacity 10 Mbit/s measured within ± 15% (iperf3, TCP)", async () => {
    await h.dp.setEmulation(mzid, "ab", { capacity: 10e6, latency: 5 * MS });
    const r = inNetns(h.dp.netnsPath(mzid, "a"), ["iperf3", "-c", "10.0.0.2", "-t", "4", "-O", "1", "-J"]);
    assert.equal(r.status, 0, r.stderr || r.stdout.slice(0, 500));
    const bps = JSON.parse(r.stdout).end.sum_received.bits_per_second as number;
    assert.ok(Math.abs(bps - 10e6) <= 1.5e6, `measured ${(bps / 1e6).toFixed(2)} Mbit/s`);
  });

  test("loss 10% within ± 4% over 1,000 packets (one direction, iperf3 UDP)", async () => {
    await h.dp.setEmulation(mzid, "ab", { loss: 0.1 });
    // The loss also hits iperf3's own control connection; on a loaded machine its result
    // exchange can fail. Such a run is repeated (at most 3 times): only a tool failure is,
    // never a measured figure.
    let sum: { packets: number; lost_packets: number } | undefined;
    const failures: string[] = [];
    for (let attempt = 0; attempt < 3 && sum === undefined; attempt++) {
      const r = inNetns(h.dp.netnsPath(mzid, "a"), [
        "iperf3",
        "-c",
        "10.0.0.2",
        "-u",
        "-b",
        "2M",
        "-l",
        "200",
        "-k",
        "1000",
        "-J",
      ]);
      let out: { error?: string; end?: { sum?: { packets: number; lost_packets: number } } } = {};
      try {
        out = JSON.parse(r.stdout);
      } catch {
        failures.push(`exit ${r.status}: ${(r.stderr || r.stdout).slice(0, 200)}`);
        continue;
      }
      if (r.status === 0 && out.end?.sum?.packets !== undefined) sum = out.end.sum;
      else failures.push(`exit ${r.status}: ${out.error ?? "no end.sum in the report"}`);
    }
    assert.ok(sum, `iperf3 gave no UDP result: ${failures.join("; ")}`);
    assert.equal(sum.packets, 1000);
    const loss = sum.lost_packets / sum.packets;
    assert.ok(Math.abs(loss - 0.1) <= 0.04, `lost ${sum.lost_packets} of ${sum.packets}`);
  });

  test("the control endpoint changes emulation over HTTP and reports per-port counters", async () => {
    const ctl = await startEmulationControl(h.dp);
    try {
      const put = await fetch(`${ctl.url}/emulation/${encodeURIComponent(mzid)}/ab`, {
        method: "PUT",
        body: JSON.stringify({ latency: 15 * MS, loss: 0 }),
      });
      assert.equal(put.status, 200, await put.text());
      const r = rtPing(h.dp.netnsPath(mzid, "a"), "10.0.0.2", 10);
      assert.ok(Math.abs(avgRtt(r.stdout) - 30) <= 3, r.stdout);
      const get = (await (await fetch(`${ctl.url}/emulation/${encodeURIComponent(mzid)}/ab`)).json()) as {
        ports: { latency: number; forwarded: number }[];
      };
      if (!h.dp.capabilities.netem) {
        assert.equal(get.ports.length, 2);
        assert.equal(get.ports[0]?.latency, 15 * MS);
        assert.ok((get.ports[1]?.forwarded ?? 0) > 10);
      }
      const bad = await fetch(`${ctl.url}/emulation/${encodeURIComponent(mzid)}/ab`, {
        method: "PUT",
        body: '{"loss": 7}',
      });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: string }).error, /loss = 7 is invalid/);
      const nolink = await fetch(`${ctl.url}/emulation/${encodeURIComponent(mzid)}/zz`, { method: "PUT", body: "{}" });
      assert.match(((await nolink.json()) as { error: string }).error, /has no link "zz"/);
    } finally {
      await ctl.close();
    }
  });
});
