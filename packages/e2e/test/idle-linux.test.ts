// Idle detection with what the facility sees, on the linux data plane: portal + commander (mTLS) +
// driver + rex + LinuxBackend in this process. The portal asks the facility for each node's activity
// (the Activity call): with no session and no traffic the materialization counts as idle and says
// so; traffic between its nodes (sent inside the nodes, not through the portal) is activity, and
// `mrg show realization` names it; quiet again past the limit, it is idle again, with the reason.
// Needs root and network namespaces; skipped with the reason otherwise.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { skip } from "@merge/facility/testing/linux";
import { keys } from "@merge/portal";
import { linuxPairSuite } from "./portal-stack.ts";

describe("idle detection counts what the facility sees the nodes do", { skip }, () => {
  const pair = linuxPairSuite("mrg-idle-linux-");
  const { proj, mz: MZ } = pair;

  test("no traffic: idle, saying what was looked at; traffic between nodes: active, naming it; quiet: idle again", {
    timeout: 240_000,
  }, async () => {
    const s = pair.stack;
    const up = await s.mrg(["materialize", MZ, "--timeout", "180"]);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    const activity = s.portal.portal.ctx.leases.activity!;
    activity.probeEveryMs = 0; // every sample asks the facility (the default is 30 s)
    const mz = { project: proj, experiment: "e1", realization: "r1" };
    const rec = await s.portal.portal.ctx.store.get(keys.materialization(proj, "e1", "r1"));
    assert.ok(rec, "the portal holds the materialization");
    const m = { ...mz, created: (JSON.parse(rec.value) as { created: string }).created };
    const terms = { afterSeconds: 3, reclaim: false, graceSeconds: 0 };

    // A node's first seconds chatter a little on its interfaces (IPv6 neighbour discovery): past them,
    // the first sample (counters to compare with), then nothing for longer than the limit.
    await new Promise((r) => setTimeout(r, 3000));
    await activity.sample(mz);
    await new Promise((r) => setTimeout(r, 4000));
    await activity.sample(mz);
    const quiet = await activity.idleness(m, terms);
    assert.equal(quiet.flagged, true, quiet.why);
    assert.match(
      quiet.why,
      /^no exec or shell session, traffic between nodes, CPU use or ssh login since it was materialized \S+ ago; the policy counts 3s without one as idle$/,
    );

    // Traffic a → b inside the nodes (not a portal session): 20 echo requests and replies.
    const ping = await s.backend.dataPlane.run(`r1.e1.${proj}`, "a", [
      "busybox",
      "ping",
      "-c",
      "20",
      "-i",
      "0.05",
      "b",
    ]);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    await activity.sample(mz);
    const used = await activity.idleness(m, terms);
    assert.equal(used.flagged, false, used.why);
    assert.match(
      used.why,
      /^last activity the facility saw \S+ ago: traffic on experiment interfaces: a \+\d+, b \+\d+ packets/,
    );
    // The experimenter sees it too.
    const shown = await s.mrg(["show", "realization", MZ]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /activity: last activity the facility saw \S+ ago: traffic on experiment interfaces/);

    // Quiet again past the limit: idle, and why (the last traffic, how long ago).
    await new Promise((r) => setTimeout(r, 4000));
    await activity.sample(mz);
    const again = await activity.idleness(m, terms);
    assert.equal(again.flagged, true, again.why);
    assert.match(again.why, /^last activity the facility saw [4-9]s ago: traffic on experiment interfaces/);

    await pair.dematerializeClean(180);
  });
});
