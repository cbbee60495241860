// Two facilities on one machine, each its own process in its own site, behind one portal:
// the fixture `npm start -- --facilities 2` uses, and an experiment embedded across them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { listNetns, processesIn } from "@merge/facility/linux";
import { skip } from "@merge/facility/testing/linux";
import { type MultiStack, startMulti } from "./multi-fixture.ts";

/** Four bare-metal nodes in a line: one facility (three metal-capable nodes) cannot hold them. */
export const LINE4 = `
import { addressing, image, metal, Network, routing } from "@merge/model";
const net = new Network("line4", addressing.ipv4, routing.static);
const n = ["a", "b", "c", "d"].map((x) => net.node(x, image("busybox"), metal()));
for (let i = 0; i + 1 < n.length; i++) net.connect([n[i]!, n[i + 1]!]);
export default net;
`;

function rtt(netns: string, to: string): number {
  const r = spawnSync("ip", ["netns", "exec", netns, "ping", "-c", "3", "-i", "0.2", "-W", "2", to], {
    encoding: "utf8",
  });
  const v = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)] ?? Number.NaN;
}

describe("two facilities on one machine", { skip }, () => {
  let stack: MultiStack;
  let names: string[] = [];
  before(async () => {
    stack = await startMulti({ backend: "linux" });
    names = [stack.sites.wan?.netns ?? "", ...stack.sites.facilities.map((f) => f.site?.netns ?? "")];
  });
  after(async () => {
    const pids = stack?.sites.facilities.map((f) => f.process.child.pid);
    await stack?.close();
    // Nothing left: the wide area, the sites, the facility processes.
    assert.deepEqual(
      listNetns().filter((n) => names.includes(n)),
      [],
    );
    assert.deepEqual(processesIn(names), []);
    for (const pid of pids ?? []) assert.ok(pid && !isAlive(pid), `facility process ${pid} is gone`);
  });

  test("each facility is its own process with its own commander, in its own site, 15 ms apart", async () => {
    const [a, b] = stack.sites.facilities;
    assert.ok(a && b);
    assert.deepEqual([a.name, b.name], ["phobos", "deimos"]);
    assert.notEqual(a.process.child.pid, b.process.child.pid);
    assert.notEqual(a.url, b.url);
    assert.notEqual(a.ca, b.ca, "each facility has its own CA");
    const listed = await stack.admin.facilities();
    assert.deepEqual(listed.map((f) => f.name).sort(), ["deimos", "phobos"]);
    assert.deepEqual(
      (await stack.admin.interconnects()).map((ic) => [ic.id, ic.a.facility, ic.b.facility, ic.latencyNs]),
      [["phobos-deimos", "phobos", "deimos", 15_000_000]],
    );
    assert.ok(a.site && b.site);
    const ms = rtt(a.site.netns, b.site.address);
    assert.ok(ms >= 30 && ms < 45, `RTT between the sites ${ms} ms (15 ms one way)`);
  });

  test("an experiment one facility cannot hold is realized across both, its crossing link external", async () => {
    await stack.accepted("multi", "line", LINE4);
    const rz = await stack.admin.realization("multi", "line", "r1");
    const detail = JSON.stringify(rz);
    assert.match(detail, /phobos/);
    assert.match(detail, /deimos/);
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
