// Two facilities on one machine, each its own process in its own site, behind one portal:
// the fixture `npm start -- --facilities 2` uses, and an experiment embedded across them.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isClean, leftovers, listNetns, processesIn } from "@merge/facility/linux";
import { fastest, pings, skip } from "@merge/facility/testing/linux";
import type { MaterializationStatus } from "@merge/portal/client";
import type { Realization } from "@merge/xir";
import { compiledHere, facilityPrefix, LINE4, type MultiStack, startMulti } from "./multi-fixture.ts";

// A project unique to the run: kernel object prefixes derive from the materialization's id.
const PROJECT = `multi${randomBytes(2).toString("hex")}`;
const MZ = `r1.line.${PROJECT}`;

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
    // The fastest of five: the path's delay, without what a loaded machine's scheduling adds to the others.
    const ms = fastest(pings(a.site.netns, b.site.address, 5));
    assert.ok(ms >= 30 && ms < 45, `RTT between the sites ${ms} ms (15 ms one way)`);
  });

  test("an experiment one facility cannot hold is realized across both, its crossing link external", async () => {
    await stack.accepted(PROJECT, "line", JSON.stringify(await compiledHere(LINE4)), "xir");
    const rz = (await stack.admin.realization(PROJECT, "line", "r1")).realization as Realization;
    assert.deepEqual([...new Set(rz.nodes.map((n) => n.facility))].sort(), ["deimos", "phobos"]);
    const ext = rz.links.filter((l) => l.external);
    assert.equal(ext.length, 1, "one link of the line crosses the wide area");
    assert.deepEqual(rz.infranets.map((i) => i.facility).sort(), ["deimos", "phobos"]);
    const shown = await stack.mrg(["show", "realization", MZ]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /EXTERNAL/);
    assert.match(shown.stdout, /crosses shared wide-area links/);
    // Each facility materializes its part (joining them across the wide area is not built yet).
    const up = await stack.mrg(["materialize", MZ, "--timeout", "180"]);
    assert.equal(up.code, 0, up.stderr);
    const st = JSON.parse((await stack.mrg(["show", "materialization", MZ, "--json"])).stdout) as MaterializationStatus;
    assert.equal(st.status, "active");
    assert.deepEqual(st.facilities.map((f) => [f.facility, f.status]).sort(), [
      ["deimos", "active"],
      ["phobos", "active"],
    ]);
    assert.deepEqual(
      st.nodes.map((n) => [n.node, n.facility, n.current]),
      rz.nodes.map((n) => [n.node, n.facility, "ready"]),
    );
    // One infranet per facility, distinct subnets: the first 172.30/16, the other 172.16/16.
    const subnets = new Map<string, Set<string>>();
    for (const n of st.nodes) {
      const s16 = (n.infranet ?? "").split(".").slice(0, 2).join(".");
      subnets.set(n.facility, (subnets.get(n.facility) ?? new Set()).add(s16));
    }
    assert.deepEqual([...subnets.values()].flatMap((v) => [...v]).sort(), ["172.16", "172.30"]);
    const down = await stack.mrg(["dematerialize", MZ, "--timeout", "120"]);
    assert.equal(down.code, 0, down.stderr);
    // Nothing of it left at either facility.
    for (const f of stack.sites.facilities) {
      const left = await leftovers(facilityPrefix(MZ, f.name), join(stack.tmp, "facilities", f.name, "backend"));
      assert.ok(isClean(left), `${f.name} left ${JSON.stringify(left)}`);
    }
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
