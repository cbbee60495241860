/**
 * Leases through the real portal on sqlite: the policy's default and maximum
 * (per project and role), --duration, extension within the maximum and the
 * refusal beyond it, warnings once per threshold on the notice stream, and on
 * expiry the realization released with a record in its experiment's history
 * (a materialized one dematerialized first, then released).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { formatDuration, parseDuration, parseLease } from "../src/lease-policy.ts";
import { keys } from "../src/objects.ts";
import { DEFAULT_POLICY_FILE, PolicyError } from "../src/policy.ts";
import { apiError, chainXir, type Harness, startHarness } from "./harness.ts";

const LEASE = `
lease:
  default: 1h
  max: 2h
  warn: [30m, 5m]
  projects:
    big: {default: 4h, max: 10h}
  roles:
    Portal.Admin: {max: 100h}
`;
let h: Harness;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "merge-lease-test-"));
  const policyFile = join(dir, "policy.yml");
  writeFileSync(policyFile, readFileSync(DEFAULT_POLICY_FILE, "utf8") + LEASE);
  h = await startHarness({ policyFile });
});
after(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const H = 3600_000;
const near = (iso: string | null, ms: number) => {
  assert.ok(iso !== null);
  assert.ok(Math.abs(Date.parse(iso) - ms) < 60_000, `${iso} is not near ${new Date(ms).toISOString()}`);
};

test("durations and the lease section: parsed, and bad entries named with file and field", () => {
  assert.equal(parseDuration("48h"), 172_800);
  assert.equal(parseDuration("90m"), 5400);
  assert.equal(parseDuration("2w"), 1_209_600);
  assert.equal(parseDuration("soon"), undefined);
  assert.equal(formatDuration(5400), "1h30m");
  assert.equal(formatDuration(172_800), "2d");
  const t = parseLease(LEASE, "p.yml");
  assert.deepEqual([t.defaultSeconds, t.maxSeconds, t.warnSeconds], [3600, 7200, [1800, 300]]);
  assert.throws(
    () => parseLease("lease:\n  default: forever\n", "p.yml"),
    (e: Error) => {
      assert.ok(e instanceof PolicyError);
      assert.match(e.message, /^p\.yml: lease\.default: expected a duration like 90m, 48h/);
      return true;
    },
  );
  assert.throws(
    () => parseLease("lease:\n  default: 3d\n  max: 1d\n", "p.yml"),
    /p\.yml: lease: default \(3d\) is longer than max \(1d\)/,
  );
  assert.throws(
    () => parseLease("lease:\n  roles:\n    Boss: {max: 1d}\n", "p.yml"),
    /lease\.roles\.Boss: unknown role/,
  );
  assert.throws(
    () => parseLease("lease:\n  maximum: 1d\n", "p.yml"),
    /lease\.maximum: unknown field; known: default, max/,
  );
});

test("every accepted realization gets a lease: the default, --duration within the maximum, and extension", async () => {
  const ivy = await h.user("ivy");
  await ivy.createExperiment("ivy", { name: "e" });
  await ivy.push("ivy", "e", chainXir("e", 2), "xir");
  const t0 = Date.now();
  const d = await ivy.realize("ivy", "e", { name: "d", accept: true });
  near(d.expires, t0 + H);
  assert.ok(d.accepted);
  // Asked for at realize, started at accept.
  const p = await ivy.realize("ivy", "e", { name: "p", durationSeconds: 5400 });
  assert.equal(p.state, "pending");
  assert.equal(p.leaseSeconds, 5400);
  const pa = await ivy.accept("ivy", "e", "p");
  near(pa.expires, Date.now() + 1.5 * H);
  const long = await apiError(ivy.realize("ivy", "e", { name: "x", accept: true, durationSeconds: 3 * 3600 }));
  assert.equal(long.status, 422);
  assert.equal(long.field, "durationSeconds");
  assert.match(long.message, /a lease of 3h is longer than the 2h the portal's policy allows; ask for at most 2h/);
  assert.equal((await ivy.realizations("ivy", "e")).length, 2, "nothing realized by a refused request");
  const limits = await ivy.leaseLimits("ivy", "e");
  assert.deepEqual([limits.defaultSeconds, limits.maxSeconds], [3600, 7200]);

  // Extend within the maximum (2h from accept): +30m fine, then +1h is refused naming what is left.
  const x = await ivy.extendLease("ivy", "e", "d", 1800);
  near(x.expires, Date.parse(d.expires as string) + 0.5 * H);
  const over = await apiError(ivy.extendLease("ivy", "e", "d", 3600));
  assert.equal(over.status, 422);
  assert.match(
    over.message,
    /^extending d\.e\.ivy by 1h would hold it until .* UTC, 2h30m after it was accepted; the portal's policy allows at most 2h: extend by at most 30m/,
  );
  assert.equal((await ivy.realization("ivy", "e", "d")).expires, x.expires, "a refused extension changes nothing");
  await ivy.realize("ivy", "e", { name: "q" });
  assert.equal((await apiError(ivy.extendLease("ivy", "e", "q", 600))).status, 409);
  await ivy.reject("ivy", "e", "q");
  const history = await ivy.history("ivy", "e");
  assert.deepEqual(
    history.map((e) => [e.kind, e.realization, e.by]),
    [["lease-extended", "d.e.ivy", "ivy"]],
  );

  // A project's entry and a role's lift the maximum.
  await h.admin.createProject({ name: "big", description: "" });
  await h.admin.createExperiment("big", { name: "e" });
  await h.admin.push("big", "e", chainXir("e", 1), "xir");
  const big = await h.admin.realize("big", "e", { name: "r", accept: true });
  near(big.expires, Date.now() + 4 * H);
  const adm = await h.admin.realize("big", "e", { name: "s", accept: true, durationSeconds: 50 * 3600 });
  near(adm.expires, Date.now() + 50 * H);
  await h.admin.relinquish("big", "e", "r");
  await h.admin.relinquish("big", "e", "s");
  await ivy.relinquish("ivy", "e", "p");
  await ivy.relinquish("ivy", "e", "d");
});

test("warnings once per threshold, then expiry: released (materialized: dematerialized first), with history and notices", async () => {
  const { ctx } = h.started.portal;
  const joe = await h.user("joe");
  await joe.createExperiment("joe", { name: "e" });
  await joe.push("joe", "e", chainXir("e", 2), "xir");
  const a = await joe.realize("joe", "e", { name: "a", accept: true });
  await joe.realize("joe", "e", { name: "b", accept: true });
  const at = Date.parse(a.expires as string);
  assert.deepEqual(await joe.notifications(), []);

  // 20 minutes before: the 30-minute warning, once, however often the sweep runs.
  const w1 = await ctx.leases.sweep(at - 20 * 60_000);
  assert.equal(w1.warned, 2);
  assert.equal((await ctx.leases.sweep(at - 19 * 60_000)).warned, 0);
  const notes = await joe.notifications();
  assert.equal(notes.length, 2);
  // One sweep writes both notices; their order between realizations is not part of the contract.
  assert.match(
    notes.find((n) => n.message.startsWith("a.e.joe"))?.message ?? "",
    /^a\.e\.joe expires at .* \(in 20m\): it will be relinquished; extend it with: mrg realization extend a\.e\.joe <duration>/,
  );
  // Then the 5-minute one.
  assert.equal((await ctx.leases.sweep(at - 4 * 60_000)).warned, 2);
  const seen = (await joe.notifications()).at(-1)?.id;

  // b is materialized: the lease keeper asks the materialize room to dematerialize it, and waits for that.
  await h.started.store.put(keys.materialization("joe", "e", "b"), JSON.stringify({ state: "materializing" }));
  const asked: string[] = [];
  ctx.leases.onDematerialize(async (p, e, r) => {
    asked.push(`${r}.${e}.${p}`);
  });
  const out = await ctx.leases.sweep(at + 60_000);
  assert.deepEqual([out.released, out.dematerializing], [1, 1]);
  assert.deepEqual(asked, ["b.e.joe"]);
  const gone = await apiError(joe.realization("joe", "e", "a"));
  assert.equal(gone.status, 404);
  assert.match(
    gone.message,
    /^a\.e\.joe was relinquished by the portal when its lease ran out at .* UTC; its experiment's history says more \(mrg show history e\.joe\)/,
  );
  assert.equal((await joe.realization("joe", "e", "b")).state, "accepted", "held until dematerialized");
  // Swept again while the teardown runs: asked again (idempotent), one history entry.
  await ctx.leases.sweep(at + 61_000);
  // The teardown finished: the next sweep relinquishes it.
  await h.started.store.delete(keys.materialization("joe", "e", "b"));
  assert.equal((await ctx.leases.sweep(at + 62_000)).released, 1);
  assert.equal((await apiError(joe.realization("joe", "e", "b"))).status, 404);
  const holders = (await h.admin.resources({ allocated: true })).flatMap((r) => r.holders.map((x) => x.realization));
  assert.ok(!holders.some((x) => x.endsWith(".e.joe")), "resources freed");

  const kinds = (await joe.history("joe", "e")).map((e) => `${e.realization} ${e.kind}`);
  assert.deepEqual(
    kinds.filter((k) => k.startsWith("a.")),
    ["a.e.joe lease-warning", "a.e.joe lease-warning", "a.e.joe reclaimed"],
  );
  assert.deepEqual(
    kinds.filter((k) => k.startsWith("b.")),
    ["b.e.joe lease-warning", "b.e.joe lease-warning", "b.e.joe lease-expired", "b.e.joe reclaimed"],
  );
  const after = await joe.notifications(seen);
  assert.deepEqual(after.map((n) => `${n.realization} ${n.kind}`).sort(), [
    "a.e.joe reclaimed",
    "b.e.joe lease-expired",
    "b.e.joe reclaimed",
  ]);
  // Notices are the caller's own.
  assert.deepEqual(await (await h.user("kim")).notifications(), []);
  assert.equal((await h.started.store.range(keys.expiries())).length, 0);
});

test("the notify command (e-mail hook) gets each notice with the user's address on stdin", async () => {
  const { Notifier } = await import("../src/notifications.ts");
  const out = join(dir, "mail.jsonl");
  const n = new Notifier(h.started.store, `cat >> ${out}`);
  await n.notify("ivy", { kind: "lease-warning", realization: "r.e.ivy", message: "soon" });
  const mail = JSON.parse(readFileSync(out, "utf8").trim()) as {
    to: string;
    user: string;
    notice: { message: string };
  };
  assert.deepEqual([mail.to, mail.user, mail.notice.message], ["ivy@example.org", "ivy", "soon"]);
  const failing = new Notifier(h.started.store, "exit 3", (m) => logged.push(m));
  const logged: string[] = [];
  await failing.notify("ivy", { kind: "lease-warning", realization: "r.e.ivy", message: "again" });
  assert.match(logged[0] ?? "", /notify command exited 3/);
});
