// `npm start -- --facilities 2`: the demo facility and deimos, each its own process, known to the
// portal with the interconnect between their gateways; an experiment phobos alone cannot hold is
// realized across both. Stopping the stack stops both facilities. (The sim backend: the sites and
// the wide area are the linux backend's, e2e multi-linux.test.ts.)
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { PortalClient } from "@merge/portal/client";
import type { Realization } from "@merge/xir";
import { alive, type Stack, startStack, stopStack } from "./fixtures/start-stack.ts";

const LINE4 = `
import { addressing, image, metal, Network, routing } from "@merge/model";
const net = new Network("line4", addressing.ipv4, routing.static);
const n = ["a", "b", "c", "d"].map((x) => net.node(x, image("busybox"), metal()));
for (let i = 0; i + 1 < n.length; i++) net.connect([n[i]!, n[i + 1]!]);
export default net;
`;

test("npm start -- --facilities 2: two facility processes, one interconnect, an experiment across both", {
  timeout: 300_000,
}, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-start-multi-"));
  let stack: Stack | undefined;
  const pids: number[] = [];
  try {
    stack = await startStack(join(tmp, "data"), "sim", 0, join(tmp, "cfg"), ["--facilities", "2"]);
    const more = stack.started.more as { name: string; pid: number }[];
    assert.deepEqual(
      more.map((m) => m.name),
      ["deimos"],
    );
    pids.push(stack.facility, ...more.map((m) => m.pid));
    assert.ok(pids.every(alive) && new Set(pids).size === 2, "each facility runs as its own process");
    const token = (await new PortalClient(stack.url).login("admin", stack.password as string)).token;
    const admin = new PortalClient(stack.url, token);
    assert.deepEqual((await admin.facilities()).map((f) => f.name).sort(), ["deimos", "phobos"]);
    const [ic] = await admin.interconnects();
    assert.deepEqual(
      [ic?.a.facility, ic?.b.facility, ic?.latencyNs, ic?.capacityBps],
      ["phobos", "deimos", 15_000_000, 100_000_000],
    );
    await admin.createProject({ name: "multi" });
    await admin.createExperiment("multi", { name: "line" });
    const rev = await admin.push("multi", "line", LINE4, "ts");
    assert.equal(rev.status, "compiled", JSON.stringify(rev.errors));
    const r = await admin.realize("multi", "line", { name: "r1", accept: true });
    assert.equal(r.state, "accepted", JSON.stringify(r.diagnostics));
    const rz = r.realization as Realization;
    assert.deepEqual([...new Set(rz.nodes.map((n) => n.facility))].sort(), ["deimos", "phobos"]);
    assert.equal(rz.links.filter((l) => l.external).length, 1);

    assert.equal(await stopStack(stack), 0);
    for (const pid of pids) {
      for (let i = 0; i < 100 && alive(pid); i++) await new Promise((res) => setTimeout(res, 100));
      assert.equal(alive(pid), false, `facility process ${pid} stops with the stack`);
    }
  } finally {
    if (stack && stack.child.exitCode === null) await stopStack(stack);
    for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(tmp, { recursive: true, force: true });
  }
});
