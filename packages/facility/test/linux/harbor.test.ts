// The harbor on the linux backend: every unallocated testbed node waits in a
// standby container on the harbor's infranet (leased by the harbor's nex,
// configured by its foundry); it leaves the harbor when a materialization sets
// a node up on it and comes back when the last node on it is recycled; two
// facilities on one host each have their own harbor; a restarted backend finds
// its harbor as it was. Needs root and network namespaces.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { ActionContext, HarborSpec, InfrapodSpec, NodeSpec } from "../../src/backend.ts";
import { harborMzid, LinuxBackend } from "../../src/linux/backend.ts";
import { nodePid } from "../../src/linux/container.ts";
import { namesOf, prefixOf } from "../../src/linux/names.ts";
import { listNetns } from "../../src/linux/processes.ts";
import { sweep } from "../../src/linux/sweep.ts";
import { type Harness, harness, isClean, leftovers, skip } from "./fixture.ts";

const run = randomBytes(3).toString("hex");
const spec: HarborSpec = {
  name: `main.harbor.h${run}`,
  infranet: { vni: 1, subnet: "172.30.0.0/16", gateway: "172.30.0.1" },
  server: "ifr0",
  resources: ["x0", "x1", "x2"].map((id, i) => ({ id, address: `172.30.0.${i + 2}`, mac: `02:4d:00:00:0${i}:01` })),
};

/** The IPv4 address on a namespace's eth0, if any. */
function eth0Address(netns: string): string | undefined {
  const r = spawnSync("ip", ["-n", netns, "-4", "-o", "addr", "show", "dev", "eth0"], { encoding: "utf8" });
  return /inet (\S+)\//.exec(r.stdout)?.[1];
}

describe("linux backend: the harbor", { skip }, () => {
  let h: Harness;
  let other: Harness;
  let b: LinuxBackend;
  const logs: string[] = [];
  const ctx: ActionContext = { signal: new AbortController().signal, log: (m) => logs.push(m) };
  const harborPrefix = () => prefixOf(harborMzid(spec.name, h.dataDir));
  before(async () => {
    h = await harness();
    other = await harness();
    b = LinuxBackend.over(h.dp);
  });
  after(async () => {
    for (const x of [h, other]) if (x) await sweep(prefixOf(harborMzid(spec.name, x.dataDir)), x.dataDir);
    await h?.close();
    await other?.close();
  });

  test("unallocated nodes wait in standby on the harbor infranet, leased and configured", async () => {
    await b.harborEnsure(spec, ctx);
    const n = namesOf(harborPrefix());
    assert.deepEqual(
      b.harborRoster().map((p) => (p.place === "harbor" ? `${p.resource}:${p.standby}` : p.resource)),
      ["x0:ready", "x1:ready", "x2:ready"],
    );
    for (const r of spec.resources) {
      assert.ok(listNetns().includes(n.node(r.id)), `${r.id} has its standby container`);
      assert.equal(eth0Address(n.node(r.id)), r.address, `${r.id} holds its harbor lease`);
    }
    const hostname = await h.dp.run(harborMzid(spec.name, h.dataDir), "x1", ["hostname"]);
    assert.equal(hostname.stdout.trim(), "x1", "foundry's standby configuration applied");
    const ping = await h.dp.run(harborMzid(spec.name, h.dataDir), "x0", ["ping", "-c", "1", "-W", "2", "x2"]);
    assert.equal(ping.code, 0, `harbor names resolve and answer: ${ping.stdout}${ping.stderr}`);
  });

  test("a second facility on the same host has its own harbor", async () => {
    const b2 = LinuxBackend.over(other.dp);
    await b2.harborEnsure(spec, ctx);
    const p2 = prefixOf(harborMzid(spec.name, other.dataDir));
    assert.notEqual(p2, harborPrefix());
    assert.deepEqual(
      b2.harborRoster().map((p) => p.place),
      ["harbor", "harbor", "harbor"],
    );
    assert.equal(eth0Address(namesOf(harborPrefix()).node("x0")), "172.30.0.2", "the first harbor is untouched");
    const left = await sweep(p2, other.dataDir);
    assert.ok(isClean(left), JSON.stringify(left));
  });

  test("nodes leave the harbor when set up and come back when the last node on them is recycled", async () => {
    const mzid = h.mzid("hb");
    const infranet = { vni: 9, subnet: "172.30.0.0/16", gateway: "172.30.0.1" };
    const pod: InfrapodSpec = { mzid, vindex: 0, server: "ifr0", infranet };
    await b.infrapodEnclave(pod, ctx);
    await b.infrapodServices(pod, ctx);
    const node = (name: string, resource: string, host: number, mode: NodeSpec["mode"]): NodeSpec => ({
      mzid,
      resource,
      node: name,
      mode,
      alloc: { cores: 0, memory: 0, disk: 0 },
      infranet: { ...infranet, address: `172.30.0.${host}`, port: "eth0" },
      interfaces: [],
      routes: [],
    });
    // a: the whole of x1; b and c: two virtual nodes on hypervisor x0.
    const a = node("a", "x1", 2, "physical");
    const vb = node("b", "x0", 3, "virtual");
    const vc = node("c", "x0", 4, "virtual");
    await b.infrapodEntries(
      pod,
      [a, vb, vc].map((s) => ({ name: s.node, mac: "02:4d:00:00:10:01", address: s.infranet.address })),
      ctx,
    );
    await Promise.all([b.nodeSetup(a, ctx), b.nodeSetup(vb, ctx), b.nodeSetup(vc, ctx)]);
    const hn = namesOf(harborPrefix());
    const roster = () =>
      b
        .harborRoster()
        .map((p) =>
          p.place === "harbor" ? `${p.resource}:${p.standby}` : `${p.resource}:${p.nodes.map((x) => x.node).join("+")}`,
        );
    assert.deepEqual(roster(), ["x0:b+c", "x1:a", "x2:ready"]);
    assert.ok(!listNetns().includes(hn.node("x0")) && !listNetns().includes(hn.node("x1")), "standby containers gone");

    // Power control names the node when a hypervisor carries several.
    await assert.rejects(b.nodePower("x0", "cycle", ctx), /carries 2 nodes \(b, c\)/);
    await b.nodePower("x0", "cycle", ctx, { mzid, node: "c" });
    assert.equal((await h.dp.run(mzid, "c", ["hostname"])).stdout.trim(), "c");

    await b.nodeRecycle(vb, ctx);
    assert.deepEqual(roster(), ["x0:c", "x1:a", "x2:ready"], "x0 still carries c");
    await Promise.all([b.nodeRecycle(vc, ctx), b.nodeRecycle(a, ctx)]);
    assert.deepEqual(roster(), ["x0:ready", "x1:ready", "x2:ready"]);
    assert.equal(eth0Address(hn.node("x1")), "172.30.0.3", "x1 took its harbor lease again");
    assert.ok(logs.some((m) => /x1 back in the harbor/.test(m)));
    await b.infrapodDestroy(pod, ctx);
    assert.ok(isClean(await leftovers(prefixOf(mzid), h.dataDir)));
  });

  test("a restarted backend keeps its harbor: reconcile leaves it, harborEnsure starts nothing anew", async () => {
    const prefix = harborPrefix();
    const pids = spec.resources.map((r) => nodePid(h.dp.env, prefix, r.id));
    assert.ok(pids.every((p) => p !== undefined));
    const again = await LinuxBackend.open({ dataDir: h.dataDir, defaultImage: "busybox", log: () => {} });
    assert.deepEqual(await again.reconcile([]), [], "the harbor is not an orphan");
    assert.deepEqual(
      again.harborRoster().map((p) => p.place),
      ["harbor", "harbor", "harbor"],
      "taken back from its state",
    );
    await again.harborEnsure(spec, ctx);
    assert.deepEqual(
      spec.resources.map((r) => nodePid(h.dp.env, prefix, r.id)),
      pids,
      "same standby containers",
    );
    // A standby node can be powered off and on like any node.
    await again.nodePower("x2", "off", ctx);
    assert.equal(again.harborRoster().find((p) => p.resource === "x2")?.place, "harbor");
    assert.deepEqual(
      again.harborRoster().map((p) => (p.place === "harbor" ? p.standby : "")),
      ["ready", "ready", "off"],
    );
    await again.nodePower("x2", "on", ctx);
  });
});
