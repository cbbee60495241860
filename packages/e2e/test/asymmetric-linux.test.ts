// One link, two directions, for real through the whole stack (portal +
// commander + driver + rex + LinuxBackend, driven by `mrg`): examples/asymmetric.ts
// gives the direction toward a 2 Mbit/s and 30 ms while a's uplink keeps the
// link's 10 Mbit/s and 10 ms. Measured with iperf3 each way and ping; then
// changed at runtime for one direction and for all. Needs root and network
// namespaces; skipped with the reason otherwise.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isClean, leftovers, prefixOf } from "@merge/facility/linux";
import { avgRtt, inNetns, listening, rtPing, skip } from "@merge/facility/testing/linux";
import { type LinuxPortalStack, startLinuxPortalStack } from "./portal-stack.ts";

const root = join(import.meta.dirname, "../../..");

interface Shown {
  link: string;
  emulation: {
    capacityBps?: number;
    latencyNs?: number;
    lossFraction?: number;
    toward?: { node: string; capacityBps?: number; latencyNs?: number }[];
  } | null;
}

describe("an asymmetric link (examples/asymmetric.ts) on the linux backend", { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-asym-"));
  const dataDir = join(tmp, "linux");
  const proj = `p${randomBytes(4).toString("hex")}`;
  const mz = `r1.asym.${proj}`;
  let stack: LinuxPortalStack | undefined;
  let server: ChildProcess | undefined;
  let addr: { a: string; b: string };

  const mrg = (args: string[]) => (stack as LinuxPortalStack).mrg(args);
  const ns = (node: string) => stack!.backend.dataPlane.netnsPath(mz, node);
  const ok = async (args: string[]) => {
    const r = await mrg(args);
    assert.equal(r.code, 0, `mrg ${args.join(" ")}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  const shown = async () => {
    const links = JSON.parse(await ok(["emu", "show", mz, "--json"])) as Shown[];
    return links.find((l) => l.link === "wire")?.emulation;
  };
  /** Mbit/s received over 4 s of TCP from a to b, or from b to a (`-R`). */
  const rate = (toward: "a" | "b") => {
    const args = ["iperf3", "-c", addr.b, "-t", "4", "-O", "1", "-J", ...(toward === "a" ? ["-R"] : [])];
    const r = inNetns(ns("a"), args);
    assert.equal(r.status, 0, r.stderr || r.stdout.slice(0, 500));
    return (JSON.parse(r.stdout).end.sum_received.bits_per_second as number) / 1e6;
  };
  const rtt = () => {
    const r = rtPing(ns("a"), addr.b, 10);
    assert.equal(r.status, 0, r.stdout);
    return avgRtt(r.stdout);
  };

  before(async () => {
    stack = await startLinuxPortalStack(tmp, [mz]);
    const source = readFileSync(join(root, "examples/asymmetric.ts"), "utf8");
    const xp = await stack.accepted(proj, "asym", source, "ts");
    const at = (n: string) => xp.nodes.find((x) => x.name === n)!.sockets[0]!.addrs[0]!.split("/")[0]!;
    addr = { a: at("a"), b: at("b") };
    await ok(["materialize", mz, "--timeout", "60"]);
    // iperf3 (a host tool) serves in b's network namespace.
    server = spawn("nsenter", [`--net=${ns("b")}`, "--", "iperf3", "-s", "-B", addr.b], { stdio: "ignore" });
    await listening(ns("b"), 5201);
  });

  after(async () => {
    if (server?.pid) server.kill("SIGKILL");
    try {
      if (stack) await ok(["dematerialize", mz, "--timeout", "30"]);
      assert.ok(isClean(await leftovers(prefixOf(mz), dataDir)), "nothing of the materialization is left");
    } finally {
      await stack?.close();
    }
  });

  test("the realization's directions reach the emulator: mrg emu show", async () => {
    assert.deepEqual(await shown(), {
      capacityBps: 10e6,
      latencyNs: 10e6,
      toward: [{ node: "a", capacityBps: 2e6, latencyNs: 30e6 }],
    });
    // The table: the link's own row, then the direction toward a with what it runs.
    const table = await ok(["emu", "show", mz]);
    const rows = table.split("\n").filter((l) => /^│ wire /.test(l));
    assert.deepEqual(
      rows.map((l) =>
        l
          .split("│")
          .slice(1, -1)
          .map((c) => c.trim()),
      ),
      [
        ["wire", "phobos", "yes", "all", "10 ms", "", "10 Mbit/s"],
        ["wire", "phobos", "yes", "a", "30 ms", "", "2 Mbit/s"],
      ],
      table,
    );
  });

  test("each direction measures as modeled: 10 Mbit/s toward b, 2 Mbit/s toward a (± 15%); RTT 10 + 30 ms", async () => {
    await ok(["exec", "a", mz, "--", "busybox", "ping", "-c", "1", addr.b]); // ARP warm-up
    const up = rate("b");
    const down = rate("a");
    assert.ok(Math.abs(up - 10) <= 1.5, `a → b measured ${up.toFixed(2)} Mbit/s, modeled 10`);
    assert.ok(Math.abs(down - 2) <= 0.3, `b → a measured ${down.toFixed(2)} Mbit/s, modeled 2`);
    const t = rtt();
    assert.ok(Math.abs(t - 40) <= 4, `RTT ${t} ms, modeled 10 + 30`);
  });

  test("runtime: one direction changes alone (--toward b), then a change for all directions replaces theirs", async () => {
    await ok(["emu", "set", "wire", mz, "--toward", "b", "--latency", "50ms"]);
    assert.deepEqual((await shown())?.toward, [
      { node: "a", capacityBps: 2e6, latencyNs: 30e6 },
      { node: "b", latencyNs: 50e6 },
    ]);
    const t1 = rtt();
    assert.ok(Math.abs(t1 - 80) <= 5, `RTT ${t1} ms after toward b = 50 ms, expected 50 + 30`);

    await ok(["emu", "set", "wire", mz, "--latency", "20ms"]);
    // Latency now holds both ways; a's own capacity stays.
    assert.deepEqual(await shown(), { capacityBps: 10e6, latencyNs: 20e6, toward: [{ node: "a", capacityBps: 2e6 }] });
    const t2 = rtt();
    assert.ok(Math.abs(t2 - 40) <= 4, `RTT ${t2} ms after latency 20 ms for all, expected 40`);
    const down = rate("a");
    assert.ok(Math.abs(down - 2) <= 0.3, `b → a still ${down.toFixed(2)} Mbit/s, modeled 2`);
  });

  test("a direction that is not an endpoint is refused, naming the endpoints; nothing changes", async () => {
    const before = await shown();
    const r = await mrg(["emu", "set", "wire", mz, "--toward", "c", "--latency", "1ms"]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /toward 'c': not an endpoint of link wire \(endpoints: a, b\)/);
    assert.deepEqual(await shown(), before);
  });
});
