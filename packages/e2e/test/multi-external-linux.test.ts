// An experiment materialized across two facilities, for real: its external link is a
// VXLAN segment over a WireGuard tunnel between the facilities' gateways, through the
// emulated wide area (15 ms one way). Each facility makes its key pair where it lives and
// the portal hands over only public keys.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SECOND_FACILITY } from "@merge/facility";
import { everyArgvAndEnv, skip } from "@merge/facility/testing/linux";
import { phobos } from "@merge/facility-model";
import type { Facility } from "@merge/xir";
import {
  assertAddedLatency,
  crossingAnswers,
  dematerializeClean,
  facilityPrefix,
  fastest,
  LINE4,
  LINE4_25MS,
  type MultiStack,
  materializedAcross,
  pings,
  startMulti,
} from "./multi-fixture.ts";

const noWg = spawnSync("wg", ["--version"]).status !== 0 ? "wireguard-tools is not installed" : false;

/** The gateway's limit in the facility model: its wide-area ports' line rate. */
const GATEWAY_BPS = 20_000_000;

/** phobos's shape with the gateway's wide-area ports at GATEWAY_BPS. */
function model(name?: string): Facility {
  const f = name ? phobos({ name }) : phobos();
  for (const r of f.resources) for (const p of r.ports) if (p.role === "gateway") p.capacity = GATEWAY_BPS;
  return f;
}

const PROJECT = `xnet${randomBytes(2).toString("hex")}`;

/** Every file under `dir` (recursively), as bytes in latin1, for a search. */
function everyFile(dir: string): string {
  let out = "";
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    try {
      if (e.isDirectory()) out += everyFile(p);
      else if (e.isFile() && statSync(p).size < 64 * 2 ** 20) out += readFileSync(p, "latin1");
    } catch {}
  }
  return out;
}

describe("an external link between two facilities, carried over their gateways", { skip: skip || noWg }, () => {
  let stack: MultiStack;
  before(async () => {
    stack = await startMulti({ backend: "linux", models: [model(), model(SECOND_FACILITY)] });
  });
  after(async () => {
    await stack?.close();
  });

  /** The realized external link and its endpoints' experiment addresses, node namespaces, facilities. */
  async function across(experiment: string, source: string) {
    const { mz, st, ends } = await materializedAcross(stack, `${PROJECT}${experiment}`, experiment, source, 240);
    const [a, b] = ends.map((e) => ({ ...e, netns: `${facilityPrefix(mz, e.facility)}-n-${e.node}` }));
    assert.ok(a && b && a.facility !== b.facility, "the external link's endpoints are at two facilities");
    crossingAnswers(a, b);
    return { mz, a, b, st };
  }

  test("ping across shows the wide area's latency, iperf3 is held to the gateway's rate, no private key travels", async () => {
    const { mz, a, b } = await across("line", LINE4);
    try {
      await lineChecks(mz, a, b);
    } finally {
      await dematerializeClean(stack, mz);
      // Its nodes go back to the pool for the next experiment.
      await stack.admin.relinquish(`${PROJECT}line`, "line", "r1");
    }
  });

  async function lineChecks(
    mz: string,
    a: { node: string; facility: string; netns: string },
    b: { node: string; facility: string; netns: string; address: string },
  ) {
    const rtt = fastest(pings(a.netns, b.address, 10));
    assert.ok(rtt >= 30 && rtt < 45, `RTT ${rtt} ms from ${a.node}@${a.facility} to ${b.node}@${b.facility}`);
    // By name: the other facility's node resolves here (its entry pushed to this infrapod's DNS).
    const named = await stack.mrg(["exec", a.node, mz, "--", "busybox", "ping", "-c", "2", "-W", "3", b.node]);
    assert.equal(named.code, 0, `${a.node} pings ${b.node} by name: ${named.stdout}${named.stderr}`);
    assert.match(named.stdout, new RegExp(`PING ${b.node} \\(${b.address.replaceAll(".", "\\.")}\\)`));
    const shown = await stack.mrg(["show", "materialization", mz]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /EXTERNAL: to (phobos|deimos)/);
    assert.match(shown.stdout, /crosses shared wide-area links/);

    const server = spawn("ip", ["netns", "exec", b.netns, "iperf3", "-s", "-1", "-B", b.address], {
      stdio: "ignore",
    });
    try {
      await new Promise((r) => setTimeout(r, 700));
      const c = spawnSync("ip", ["netns", "exec", a.netns, "iperf3", "-c", b.address, "-t", "3", "-J"], {
        encoding: "utf8",
        timeout: 40_000,
      });
      const bps = (JSON.parse(c.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received
        .bits_per_second;
      assert.ok(bps < GATEWAY_BPS * 1.1 && bps > GATEWAY_BPS / 5, `iperf3 across: ${(bps / 1e6).toFixed(1)} Mbit/s`);
    } finally {
      server.kill();
    }

    // Each facility's private key is in its own directory only: in no portal record,
    // in no file of the other facility, in no process's argv or environment.
    const keys = stack.sites.facilities.map((f) => {
      const dir = join(stack.tmp, "facilities", f.name, "backend", "mz", facilityPrefix(mz, f.name), "gateway");
      const files = readdirSync(dir).filter((x) => x.endsWith(".key"));
      assert.equal(files.length, 1, `${f.name} has one gateway key`);
      assert.equal(statSync(join(dir, files[0]!)).mode & 0o777, 0o600);
      return { facility: f.name, key: readFileSync(join(dir, files[0]!), "utf8").trim() };
    });
    // The portal's records (its store files) and the requests it sent (GatewayPeers carries the peers' ends
    // as the facilities reported them: public key, endpoint, address; external-plan.test.ts).
    const portal = everyFile(join(stack.tmp, "portal"));
    const argv = everyArgvAndEnv();
    for (const k of keys) {
      assert.ok(k.key.length >= 44);
      assert.ok(!portal.includes(k.key), `${k.facility}'s private key is in the portal's store or log`);
      assert.ok(!argv.includes(k.key), `${k.facility}'s private key is in a process's argv or environment`);
      for (const other of stack.sites.facilities.filter((f) => f.name !== k.facility)) {
        const theirs = everyFile(join(stack.tmp, "facilities", other.name));
        assert.ok(!theirs.includes(k.key), `${k.facility}'s private key is at ${other.name}`);
        assert.ok(
          !readFileSync(join(stack.tmp, "facilities", k.facility, "facility.log"), "utf8").includes(k.key),
          "its own log holds no private key",
        );
      }
    }
  }

  test("a latency the model asks for beyond the wide area's is added at the emulator", async () => {
    const { mz, a, b } = await across("slow", LINE4_25MS);
    try {
      assertAddedLatency(a, b);
    } finally {
      await dematerializeClean(stack, mz);
    }
  });
});
