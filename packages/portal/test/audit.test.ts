/**
 * The audit log through the real portal (sqlite) and the real mergectl:
 * sign-ins and failed sign-ins (with why, for administrators only), account
 * activation and freeze, membership and visibility changes, realizations, and
 * refusals; queried by actor, action, time and failure; closed to others.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { PortalClient } from "../src/client/index.ts";
import { apiError, chainXir, type Harness, startHarness } from "./harness.ts";

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.stop();
});

const root = fileURLToPath(new URL("../../..", import.meta.url));
function mergectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      join(root, "packages/cli/bin/mergectl"),
      args,
      {
        env: {
          ...process.env,
          MERGE_PORTAL: h.url,
          MERGE_TOKEN: h.admin.token,
          MERGE_CONFIG_DIR: join(h.dataDir, "cfg"),
        },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

test("sign-ins, account and access changes, realizations and refusals are recorded; administrators query them", async () => {
  const t0 = new Date().toISOString();
  const ann = await h.user("ann"); // registers, is activated by the admin, signs in
  assert.equal((await apiError(h.anon.login("ann", "not-her-password"))).status, 401);
  assert.equal((await apiError(h.anon.login("nobody", "whatever-pw"))).status, 401);
  await h.admin.setUserState("ann", "frozen");
  assert.equal((await apiError(h.anon.login("ann", "pw-ann-secret"))).status, 401);
  await h.admin.setUserState("ann", "active");
  const ann2 = new PortalClient(h.url, (await h.anon.login("ann", "pw-ann-secret")).token);
  await h.user("bo");
  await ann2.addMember("ann", "bo", "member");
  await ann2.createExperiment("ann", { name: "e" });
  await ann2.updateExperiment("ann", "e", { visibility: "public" });
  await ann2.push("ann", "e", chainXir("e", 2), "xir");
  await ann2.realize("ann", "e", { name: "r1", accept: true });
  await ann2.relinquish("ann", "e", "r1");
  // Refused by the policy: recorded as a failure.
  assert.equal((await apiError(ann2.setUserState("bo", "frozen"))).status, 403);
  void ann;

  // Only administrators read it.
  assert.equal((await apiError(ann2.audit())).status, 403);
  assert.equal((await apiError(h.anon.audit())).status, 401);

  const mine = await h.admin.audit({ actor: "ann", since: t0 });
  const lines = mine.map((e) => `${e.action} ${e.target} ${e.ok}${e.detail ? ` ${e.detail}` : ""}`);
  assert.deepEqual(lines, [
    "user.register ann true",
    "login ann true",
    "login.failed ann false wrong password",
    "login.failed ann false account frozen",
    "login ann true",
    "member.add ann/bo true member",
    "experiment.update e.ann true public",
    "realize e.ann true r1",
    "relinquish r1.e.ann true",
    "user.state bo false frozen",
  ]);
  assert.ok(mine.every((e) => e.address === "127.0.0.1"));
  const states = await h.admin.audit({ action: "user.state", since: t0 });
  assert.deepEqual(
    states.filter((e) => e.target === "ann").map((e) => `${e.actor} ${e.action} ${e.detail}`),
    ["admin user.state active", "admin user.state frozen", "admin user.state active"],
  );
  const failed = await h.admin.audit({ action: "login", failed: true, since: t0 });
  assert.deepEqual(
    failed.map((e) => `${e.actor}: ${e.detail}`),
    ["ann: wrong password", "nobody: no such user", "ann: account frozen"],
  );
  assert.deepEqual(await h.admin.audit({ since: new Date(Date.now() + 60_000).toISOString() }), []);
  assert.equal((await apiError(h.admin.audit({ since: "yesterday" }))).status, 400);

  // mergectl: a table, JSON, durations for --since, and usage errors.
  const table = await mergectl(["audit", "--since", "1h", "--action", "login", "--failed"]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /nobody .*login\.failed .*no such user/);
  const json = await mergectl(["audit", "--actor", "ann", "--action", "realize", "--json"]);
  assert.deepEqual(
    (JSON.parse(json.stdout) as { target: string }[]).map((e) => e.target),
    ["e.ann"],
  );
  const bad = await mergectl(["audit", "--since", "last week"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--since: 'last week' is neither a duration \(90m, 24h, 7d: that long ago\) nor a time/);
});
