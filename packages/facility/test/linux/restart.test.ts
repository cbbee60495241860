// Restart survival: a 2-node experiment materialized through rex on the linux
// backend keeps running when the facility and its backend stop; a new facility
// and backend on the same data directory and store take it back and can exec
// into its nodes, power-cycle them, change its emulation and dematerialize it
// to nothing. Needs root and network namespaces; skipped with the reason otherwise.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openStore, type Store } from "@merge/store";
import { makeCerts } from "../../src/certs.ts";
import { Driver } from "../../src/driver.ts";
import { type RunningFacility, startFacility } from "../../src/facility.ts";
import { LinuxBackend } from "../../src/linux/backend.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { sweep } from "../../src/linux/sweep.ts";
import { NodeOps } from "../../src/node-ops.ts";
import { statusIs } from "../fixture.ts";
import { isClean, leftovers, medianRtt, skip } from "./fixture.ts";

const MS = 1e6;

/** n0 ↔ n1 over one emulated link (10 ms each way), 10.255.0.0/31; no LANs, the facility default image. */
function pair(mzid: string) {
  const s = synthetic(2, { mzid, lanSize: 1 });
  s.experiment.links = s.experiment.links.filter((l) => l.name === "wan0");
  s.realization.links = s.realization.links.filter((l) => l.link === "wan0");
  for (const n of s.experiment.nodes) {
    delete n.image;
    n.sockets = n.sockets.filter((x) => x.index !== 0);
  }
  for (const n of s.realization.nodes) n.interfaces = n.interfaces.filter((i) => i.socket !== 0);
  const n1 = s.experiment.nodes.find((n) => n.name === "n1")!;
  n1.sockets.find((x) => x.index === 2)!.addrs = ["10.255.0.1/31"];
  return s;
}

/** Run a command in a node through the facility's node operations; output and exit code. */
async function exec(ops: NodeOps, mzid: string, node: string, argv: string[]) {
  let out = "";
  let code = -1;
  const dec = new TextDecoder();
  for await (const c of await ops.exec(mzid, node, argv, new AbortController().signal, 30_000)) {
    if ("stdout" in c) out += dec.decode(c.stdout);
    else if ("stderr" in c) out += dec.decode(c.stderr);
    else code = c.exit;
  }
  return { code, out };
}

describe("the linux backend survives a facility restart", { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-restart-"));
  const dataDir = join(tmp, "linux");
  const storeUrl = `sqlite://${join(tmp, "store")}`;
  const certs = join(tmp, "certs");
  const mzid = `r1.e1.p${randomBytes(4).toString("hex")}`;
  const s = pair(mzid);
  let store: Store | undefined;
  let backend: LinuxBackend | undefined;
  let facility: RunningFacility | undefined;

  async function start(): Promise<NodeOps> {
    store = openStore(storeUrl);
    backend = await LinuxBackend.open({ dataDir, defaultImage: "busybox" });
    facility = await startFacility({ store, backend, model: s.facility, certs, rex: { leaseTtl: 5 } });
    return new NodeOps(store, backend);
  }
  async function stop(): Promise<void> {
    await facility?.close();
    await backend?.close();
    await store?.close();
    facility = undefined;
    backend = undefined;
    store = undefined;
  }

  after(async () => {
    await stop();
    const left = await sweep(prefixOf(mzid), dataDir);
    rmSync(tmp, { recursive: true, force: true });
    assert.ok(isClean(left), `left behind: ${JSON.stringify(left)}`);
  });

  test("exec, power-cycle, emulation change and dematerialize after a restart", { timeout: 180_000 }, async () => {
    makeCerts(certs);
    let ops = await start();
    await new Driver(store!).materialize(mzid, fragmentsFor(s.realization, s.experiment, s.facility));
    await statusIs(new Driver(store!), mzid, "active", 90_000);
    const before = await exec(ops, mzid, "n0", ["busybox", "ping", "-c", "5", "-i", "0.2", "10.255.0.1"]);
    assert.equal(before.code, 0, before.out);

    // The facility goes away without dematerializing; its nodes keep running.
    await stop();
    assert.ok(!isClean(await leftovers(prefixOf(mzid), dataDir)), "the materialization outlives the facility");

    ops = await start();
    const driver = new Driver(store!);
    assert.equal((await driver.status(mzid)).summary.status, "active", "start-up reconciliation kept it");

    // Exec across the emulated link: 10 ms each way.
    const ping = await exec(ops, mzid, "n0", ["busybox", "ping", "-c", "10", "-i", "0.2", "10.255.0.1"]);
    assert.equal(ping.code, 0, ping.out);
    const base = medianRtt(ping.out);
    assert.ok(base > 17 && base < 26, `RTT ${base} ms over the 10 ms link, expected ≈ 20`);

    // Emulation change at runtime: 30 ms each way.
    assert.deepEqual(await ops.emulation(mzid, "wan0", { latency: 30 * MS }), { latency: 30 * MS, capacity: 1e8 });
    const slow = await exec(ops, mzid, "n0", ["busybox", "ping", "-c", "10", "-i", "0.2", "10.255.0.1"]);
    assert.equal(slow.code, 0, slow.out);
    const rtt = medianRtt(slow.out);
    assert.ok(Math.abs(rtt - 60) <= 6, `RTT ${rtt} ms after setting 30 ms, expected 60 ± 6`);

    // Power: n1 (found by its resource) cycles to a new init and answers again.
    const initStart = async () => {
      const r = await exec(ops, mzid, "n1", ["busybox", "cat", "/proc/1/stat"]);
      assert.equal(r.code, 0, r.out);
      return Number(r.out.slice(r.out.lastIndexOf(")") + 2).split(" ")[19]);
    };
    const booted = await initStart();
    assert.equal((await ops.power(mzid, "n1", "cycle")).state, "on");
    assert.ok((await initStart()) > booted, "n1's init is new after the cycle");
    const alive = await exec(ops, mzid, "n0", ["busybox", "ping", "-c", "3", "-W", "2", "10.255.0.1"]);
    assert.equal(alive.code, 0, alive.out);

    await driver.dematerialize(mzid);
    await statusIs(driver, mzid, "dematerialized", 60_000);
    const left = await leftovers(prefixOf(mzid), dataDir);
    assert.ok(isClean(left), `left behind: ${JSON.stringify(left)}`);
  });
});
