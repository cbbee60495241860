import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ActionContext, InfrapodSpec, NodeSpec } from "../../src/backend.ts";
import { LinuxBackend } from "../../src/linux/backend.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { avgRtt, type Harness, harness, isClean, leftovers, pairOnBackend, rtPing, skip } from "./fixture.ts";

const MS = 1e6;

describe("linux backend: the rex-facing interface", { skip }, () => {
  let h: Harness;
  let b: LinuxBackend;
  const logs: string[] = [];
  const ctx: ActionContext = { signal: new AbortController().signal, log: (m) => logs.push(m) };
  before(async () => {
    h = await harness();
    b = LinuxBackend.over(h.dp);
  });
  after(async () => {
    await b?.close();
    await h?.close();
  });

  test("infrapod, nodes, links and emulation as rex drives them; idempotent; teardown leaves nothing", async () => {
    const mzid = h.mzid("rex");
    const infranet = { vni: 7, subnet: "172.30.0.0/16", gateway: "172.30.0.1" };
    const pod: InfrapodSpec = { mzid, vindex: 0, server: "ifr0", infranet, emulation: mzid };
    const status = await b.infrapodEnclave(pod, ctx);
    assert.match(status.serviceAddress, /^100\.\d+\.\d+\.\d+$/);
    assert.deepEqual(await b.infrapodEnclave(pod, ctx), status, "again: same state, no error");
    const s1 = await b.infrapodServices(pod, ctx);
    assert.equal(s1.services.nex, "up");
    assert.equal(s1.services.foundry, "up");
    assert.deepEqual(await b.infrapodServices(pod, ctx), s1);
    const nodeSpec = (node: string, resource: string, address: string, addr: string): NodeSpec => ({
      mzid,
      resource,
      node,
      mode: "virtual",
      alloc: { cores: 1, memory: 256 * 1024 * 1024, disk: 0 },
      infranet: { ...infranet, address, port: "eth0" },
      interfaces: [{ socket: 0, port: "eth1", addrs: [addr], virtual: true }],
      routes: [],
    });
    const na = nodeSpec("a", "r-a", "172.30.0.2", "10.0.0.1/24");
    const nb = nodeSpec("b", "r-b", "172.30.0.3", "10.0.0.2/24");
    // The network and node tasks run in parallel after the infrapod, as the driver orders them.
    const { link, emu, endpoints } = await pairOnBackend(b, ctx, pod, [na, nb], 5 * MS);
    const byName = await h.dp.run(mzid, "a", ["ping", "-c", "1", "-W", "2", "b"]);
    assert.equal(byName.code, 0, `b resolves and answers: ${byName.stdout}${byName.stderr}`);
    let r = rtPing(h.dp.netnsPath(mzid, "a"), "10.0.0.2", 5);
    assert.equal(r.status, 0, r.stdout);
    assert.ok(Math.abs(avgRtt(r.stdout) - 10) <= 3, r.stdout);
    // Limits of a virtual node are in its cgroups when the host has them.
    if (h.dp.capabilities.cgroup.version === 1 && h.dp.capabilities.cgroup.memory) {
      const { readFileSync } = await import("node:fs");
      const lim = readFileSync(`${h.dp.capabilities.cgroup.memory}/${prefixOf(mzid)}-a/memory.limit_in_bytes`, "utf8");
      assert.equal(Number(lim), 256 * 1024 * 1024);
      const procs = readFileSync(`${h.dp.capabilities.cgroup.memory}/${prefixOf(mzid)}-a/cgroup.procs`, "utf8");
      assert.match(procs, /^\d+$/m, "the node's processes are in its cgroup");
      if (h.dp.capabilities.cgroup.cpu) {
        const quota = readFileSync(`${h.dp.capabilities.cgroup.cpu}/${prefixOf(mzid)}-a/cpu.cfs_quota_us`, "utf8");
        assert.equal(Number(quota), 100000, "1 core = one period's worth of CPU time");
      }
    }
    // Again: nothing changes, nothing fails.
    await b.nodeSetup(na, ctx);
    await b.linkCreate(link, ctx);
    await b.emulationSetup(emu, ctx);
    await b.emulationUpdate({ ...emu, links: [{ link: "ab", endpoints, params: { latency: 20 * MS } }] }, ctx);
    r = rtPing(h.dp.netnsPath(mzid, "a"), "10.0.0.2", 5);
    assert.ok(Math.abs(avgRtt(r.stdout) - 40) <= 4, r.stdout);
    await b.nodePower("r-b", "cycle", ctx);
    assert.equal((await h.dp.run(mzid, "a", ["ping", "-c", "1", "-W", "2", "10.0.0.2"])).code, 0);
    await assert.rejects(b.nodePower("r-zz", "on", ctx), /carries no node/);
    // Teardown in the driver's order.
    await b.nodeRecycle(na, ctx);
    await b.nodeRecycle(nb, ctx);
    await b.emulationDestroy(emu, ctx);
    await b.linkDestroy(link, ctx);
    await b.linkDestroy(link, ctx);
    await b.infrapodDestroy(pod, ctx);
    await b.infrapodDestroy(pod, ctx);
    // A setup (or reimage) arriving after the sweep brings nothing back.
    await assert.rejects(b.nodeSetup(na, ctx), /has no infrapod on this host/);
    await assert.rejects(b.nodeReset(nb, ctx), /has no infrapod on this host/);
    const left = await leftovers(prefixOf(mzid), h.dataDir);
    assert.ok(isClean(left), JSON.stringify(left));
    assert.ok(logs.some((l) => /node a on r-a configured/.test(l)));
  });
});
