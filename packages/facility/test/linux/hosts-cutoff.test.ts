// A host cut off from the fabric while its agent keeps running (its link down: no reset
// reaches the facility, its connections just go silent), with a dematerialize's calls to
// it in flight: the facility's shutdown (close()) still ends in bounded time, and the
// fixture then removes everything (hosts-fixture.ts).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import { fragmentToPb } from "@merge/materialize";
import * as pb from "@merge/proto";
import type { Facility } from "@merge/xir";
import { fabricVeth } from "../../src/linux/fabric.ts";
import { until } from "../fixture.ts";
import { skip } from "./fixture.ts";
import {
  busyboxSynthetic,
  fixtureLeftovers,
  type HostsFixture,
  materializePlan,
  planOf,
  portalOf,
  startHosts,
} from "./hosts-fixture.ts";

const HOSTS = ["h1", "h2"];
/** One LAN of four busybox nodes: n0 n2 on h1 (with the infrapod), n1 n3 on h2. */
const shaped = (mzid: string) => busyboxSynthetic(4, mzid, HOSTS, 4);
const model: Facility = shaped("model.x.y").facility;
let fx: HostsFixture;
let pids: (number | undefined)[] = [];

before(async () => {
  if (skip) return;
  fx = await startHosts(model, HOSTS, { leaseTtl: 3 });
  pids = fx.hosts.map((h) => h.agent?.pid);
});

after(async () => {
  if (skip || !fx) return;
  await fx.close();
  assert.deepEqual(fixtureLeftovers(fx.run, pids), [], "no namespace, interface or agent of the run is left");
});

test("a host cut off while its agent runs: the facility's close() ends in bounded time, calls to it in flight", {
  skip,
}, async () => {
  const mzid = `cut.${fx.run}.test`;
  const p = planOf(shaped(mzid));
  const st = await materializePlan(fx, p);
  assert.equal(st.status, pb.MzStatus.ACTIVE, JSON.stringify(st.failed));
  // h2's link to the fabric goes down: its agent runs on, unreachable; nothing tells the facility.
  const veth = fabricVeth(fx.fabric, "h2");
  const r = spawnSync("ip", ["link", "set", veth, "down"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(fx.hosts[1]?.agent?.exitCode === null, "h2's agent still runs");
  // A teardown in flight: its calls to h2 wait on a silent connection.
  const part = p.facilities[0]!;
  const portal = portalOf(fx);
  const d = await portal.dematerialize({ mzid, fragments: part.fragments.map(fragmentToPb) });
  assert.deepEqual(d.errors, []);
  await until(
    "the teardown under way",
    async () => ((await portal.status({ mzid, resources: part.resources })).complete < st.complete ? true : undefined),
    30_000,
  ).catch(() => {});
  const t0 = Date.now();
  await fx.closeFacility();
  const ms = Date.now() - t0;
  // Rex's grace (5 s) and the longest call abort (the host's lease running out) bound it.
  assert.ok(ms < 20_000, `close() took ${ms} ms with h2 cut off`);
});
