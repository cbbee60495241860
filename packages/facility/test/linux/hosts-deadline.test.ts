// An agent that stops answering while its host stays "up" (its process stopped with SIGSTOP:
// its lease, long here, does not run out): every call to it ends at the facility's deadline
// for agent calls, so the nodes on that host fail naming the host and the operation, and the
// rest of the materialization completes. Killed and restarted, the agent reconciles its host
// and the failed actions run again; the teardown then leaves nothing on any host.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fragmentToPb } from "@merge/materialize";
import * as pb from "@merge/proto";
import type { Facility } from "@merge/xir";
import { readHost } from "../../src/host/records.ts";
import { until } from "../fixture.ts";
import { skip } from "./fixture.ts";
import { busyboxSynthetic, dematerializeClean, planOf, portalOf, suiteHosts } from "./hosts-fixture.ts";

const HOSTS = ["h1", "h2"];
/** Two LANs of three busybox nodes over both hosts: n0 n2 n4 on h1 (with the infrapod), n1 n3 n5 on h2. */
const shaped = (mzid: string) => busyboxSynthetic(6, mzid, HOSTS, 3);
const model: Facility = shaped("model.x.y").facility;
const DEADLINE_MS = 30_000;
// Long enough for a node on the live h1 on a loaded machine. The lease outlives the test's wait: what ends the calls to the stopped agent is their deadline.
const fx = suiteHosts(model, HOSTS, { leaseTtl: 300, agentCallTimeoutMs: DEADLINE_MS }, skip);

test("an agent that stops answering: its nodes fail at the call deadline naming the host and the operation, the rest completes", {
  skip,
}, async () => {
  const mzid = `hang.${fx.run}.test`;
  const p = planOf(shaped(mzid));
  const part = p.facilities[0]!;
  const portal = portalOf(fx);
  const h2 = fx.hosts.find((h) => h.name === "h2")!;
  const pid = h2.agent?.pid;
  assert.ok(pid, "h2's agent runs");
  process.kill(pid, "SIGSTOP");
  try {
    await portal.notifyIncoming({ mzid, resources: part.resources });
    await portal.materialize({ mzid, fragments: part.fragments.map(fragmentToPb) });
    const settled = await until(
      "every node settled",
      async () => {
        const st = await portal.status({ mzid, resources: part.resources });
        const done = st.nodes.filter((n) => n.action === pb.ActionState.COMPLETE || n.action === pb.ActionState.ERROR);
        return done.length === 6 && st.status === pb.MzStatus.ERROR ? st : undefined;
      },
      120_000,
    );
    for (const n of settled.nodes) {
      if (["n1", "n3", "n5"].includes(n.node)) {
        assert.equal(n.action, pb.ActionState.ERROR, `${n.node} is on the stopped h2`);
        assert.match(
          n.error,
          new RegExp(`host h2 did not finish setting up node ${n.node} of ${mzid} within 30 s`),
          `${n.node}: ${n.error}`,
        );
      } else assert.equal(n.action, pb.ActionState.COMPLETE, `${n.node} (on h1) completes: ${n.error}`);
    }
    assert.equal((await readHost(fx.store, "h2"))?.alive, true, "h2's lease still runs: the deadline ended the calls");
  } finally {
    // A stopped process takes SIGKILL; restarted, the agent reconciles h2 and the failed actions run again.
    await h2.kill("SIGKILL");
  }
  await h2.start();
  const active = await until(
    "the materialization active after h2's agent came back",
    async () => {
      const st = await portal.status({ mzid, resources: part.resources });
      return st.status === pb.MzStatus.ACTIVE ? st : undefined;
    },
    120_000,
  );
  assert.equal(active.nodes.length, 6);
  await dematerializeClean(fx, p, HOSTS);
});
