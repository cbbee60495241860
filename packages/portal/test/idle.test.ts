/**
 * Idle detection through the real portal (sqlite): exec and shell sessions are
 * a materialization's activity; past the policy's limit it is flagged once per
 * idle spell (history, notice, every view says why) and, with reclaim, its
 * lease is shortened to end after the grace period, so the lease path
 * dematerializes and relinquishes it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { facilityUse, type NodeSample } from "../src/idle.ts";
import { keys } from "../src/objects.ts";
import { DEFAULT_POLICY_FILE } from "../src/policy.ts";
import { apiError, chainXir, type Harness, startHarness } from "./harness.ts";

let h: Harness;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "merge-idle-test-"));
  const policyFile = join(dir, "policy.yml");
  writeFileSync(
    policyFile,
    `${readFileSync(DEFAULT_POLICY_FILE, "utf8")}\nlease:\n  default: 7d\n  idle:\n    after: 1h\n    reclaim: true\n    grace: 30m\n`,
  );
  h = await startHarness({ policyFile });
});
after(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const M = 60_000;

test("idle past the limit: flagged once with why, lease shortened to the grace; sessions reset it", async () => {
  const { ctx } = h.started.portal;
  const activity = ctx.leases.activity!;
  const ida = await h.user("ida");
  await ida.createExperiment("ida", { name: "e" });
  await ida.push("ida", "e", chainXir("e", 2), "xir");
  await ida.realize("ida", "e", { name: "r", accept: true });
  assert.equal((await apiError(ida.idleness("ida", "e", "r"))).status, 404, "not materialized: no idleness");
  const t0 = Date.now();
  await h.started.store.put(
    keys.materialization("ida", "e", "r"),
    JSON.stringify({
      id: "r.e.ida",
      project: "ida",
      experiment: "e",
      realization: "r",
      state: "materializing",
      creator: "ida",
      created: new Date(t0).toISOString(),
      facilities: [],
    }),
  );
  const terms = ctx.leases.terms.idle;
  const m = { project: "ida", experiment: "e", realization: "r", created: new Date(t0).toISOString() };
  const early = await activity.idleness(m, terms, t0 + 30 * M);
  assert.equal(early.flagged, false);
  assert.equal(
    early.why,
    "no exec or shell session since it was materialized 30m ago; the policy counts 1h without one as idle, reclaimed 30m after the notice",
  );
  const now = await ida.idleness("ida", "e", "r");
  assert.equal(now.flagged, false);

  // A session at 40 minutes: at 90 it has been idle 50 minutes, not yet flagged.
  await activity.touch("ida", "e", "r", "exec", t0 + 40 * M);
  assert.equal((await ctx.leases.sweep(t0 + 90 * M)).idle, 0);
  // At 110, 70 minutes: flagged, once.
  const s = await ctx.leases.sweep(t0 + 110 * M);
  assert.equal(s.idle, 1);
  assert.equal((await ctx.leases.sweep(t0 + 111 * M)).idle, 0);
  const r = await ida.realization("ida", "e", "r");
  assert.equal(Date.parse(r.expires as string), t0 + 140 * M, "the lease now ends 30 minutes after the notice");
  const [note] = (await ida.notifications()).filter((n) => n.kind === "idle");
  assert.match(
    note?.message ?? "",
    /^r\.e\.ida is idle: last exec session 1h10m ago \(1 session in all\); the policy counts 1h without one as idle, reclaimed 30m after the notice\. It will be dematerialized and relinquished at .* UTC unless used before then/,
  );
  // (The shortened lease is soon due: its warnings follow, from this sweep and the portal's own.)
  const kinds = async () => (await ida.history("ida", "e")).map((x) => x.kind).filter((k) => k !== "lease-warning");
  assert.deepEqual(await kinds(), ["idle-reclaimed"]);
  // Health flags it, with why.
  const health = await h.admin.healthDetail();
  const mz = health.materializations.find((x) => x.id === "r.e.ida");
  assert.ok(mz?.idle && mz.idle.idleSeconds >= 0);

  // The grace passes: the lease path dematerializes it (the materialize room's hook), then relinquishes it.
  const asked: string[] = [];
  ctx.leases.onDematerialize(async (p, e, rr) => {
    asked.push(`${rr}.${e}.${p}`);
    await h.started.store.delete(keys.materialization(p, e, rr));
  });
  await ctx.leases.sweep(t0 + 141 * M);
  assert.deepEqual(asked, ["r.e.ida"]);
  assert.equal((await ctx.leases.sweep(t0 + 142 * M)).released, 1);
  assert.deepEqual(await kinds(), ["idle-reclaimed", "lease-expired", "reclaimed"]);
});

test("facility samples: an open ssh login, traffic or CPU past the noise is use; a restarted node is a new baseline", () => {
  const n = (node: string, packets: number, cpu: number, ssh = 0): NodeSample => ({
    node,
    cpuSeconds: cpu,
    rxPackets: packets,
    txPackets: 0,
    sshSessions: ssh,
  });
  const prev = { at: new Date(0).toISOString(), nodes: { a: { cpu: 10, packets: 100 }, b: { cpu: 5, packets: 50 } } };
  assert.equal(facilityUse(undefined, [n("a", 100, 10)]), undefined, "a first sample is only a baseline");
  assert.deepEqual(facilityUse(undefined, [n("a", 0, 0, 1), n("b", 0, 0)]), {
    kind: "ssh",
    detail: "ssh login open on a",
  });
  assert.equal(facilityUse(prev, [n("a", 105, 10.5), n("b", 50, 5)]), undefined, "a few packets and ticks: noise");
  assert.deepEqual(facilityUse(prev, [n("a", 140, 10), n("b", 90, 5)]), {
    kind: "traffic",
    detail: "traffic on experiment interfaces: a +40, b +40 packets",
  });
  assert.deepEqual(facilityUse(prev, [n("a", 100, 12.5), n("b", 50, 5)]), { kind: "cpu", detail: "CPU use: a +2.5 s" });
  assert.equal(facilityUse(prev, [n("a", 3, 0.2), n("b", 50, 5)]), undefined, "counters went down: restarted");
});

test("a facility that measures nothing (sim) is named in why; an unanswered probe leaves the sample as it was", async () => {
  const { ctx } = h.started.portal;
  const activity = ctx.leases.activity!;
  const mz = { project: "ida", experiment: "e", realization: "sim" };
  const t0 = Date.now();
  const probe = activity.probe;
  try {
    activity.probe = async () => [
      {
        node: "a",
        cpuSeconds: 0,
        rxPackets: 0,
        txPackets: 0,
        sshSessions: 0,
        unmeasured: "the sim backend runs no real nodes to measure",
      },
    ];
    await activity.sample(mz, t0);
    const i = await activity.idleness(
      { ...mz, created: new Date(t0).toISOString() },
      { afterSeconds: 60, reclaim: false, graceSeconds: 0 },
      t0 + 120_000,
    );
    assert.equal(i.flagged, true);
    assert.equal(
      i.why,
      "no exec or shell session (the facility measures no node activity: the sim backend runs no real nodes to measure) since it was materialized 2m ago; the policy counts 1m without one as idle",
    );
    activity.probe = async () => undefined;
    await activity.sample(mz, t0 + 60 * M);
    const kept = await h.started.store.get(keys.facilityActivity("ida", "e", "sim"));
    assert.equal(JSON.parse(kept!.value).at, new Date(t0).toISOString(), "kept as it was");
  } finally {
    activity.probe = probe;
  }
});
