/**
 * Per-user storage quota from the policy file: pushes (also ones that do not
 * compile) count as stored; one over the quota gets a 413 naming the quota
 * and the usage; deleting an experiment gives the space back.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DEFAULT_POLICY_FILE } from "../src/policy.ts";
import { parseQuota, storageUsage } from "../src/quota.ts";
import { apiError, chainXir, type Harness, startHarness } from "./harness.ts";

const QUOTA = 100 * 1024;

describe("storage quota", () => {
  let h: Harness;
  const dir = mkdtempSync(join(tmpdir(), "merge-quota-test-"));
  const policyFile = join(dir, "policy.yml");
  before(async () => {
    const policy = readFileSync(DEFAULT_POLICY_FILE, "utf8").replace(/bytes: \d+/, `bytes: ${QUOTA}`);
    writeFileSync(policyFile, policy);
    h = await startHarness({ policyFile });
  });
  after(async () => {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the policy file sets it; a bad entry is named", () => {
    assert.equal(parseQuota(readFileSync(policyFile, "utf8")).bytes, QUOTA);
    assert.throws(() => parseQuota("quota:\n  storage:\n    bytes: -1\n", "p.yml"), /p\.yml: quota\.storage\.bytes/);
    assert.throws(() => parseQuota("quota:\n  storage:\n    size: 1\n", "p.yml"), /unknown field/);
  });

  test("pushes count, failed ones too; over the quota is a 413 naming quota and usage; deleting frees it", async () => {
    const sam = await h.user("sam");
    await sam.createExperiment("sam", { name: "one" });
    // About 35 KB of XIR; with its compiled XIR a body is compressed, without (a failed push) it is not.
    const xir = chainXir("one", 100);
    assert.ok(xir.length > 20_000 && xir.length < 45_000, `${xir.length}`);
    const first = await sam.push("sam", "one", xir, "xir");
    assert.equal(first.status, "compiled");
    // Not JSON: does not compile, and its stored source counts all the same.
    const broken = await sam.push("sam", "one", `${xir}}`, "xir");
    assert.equal(broken.status, "error");
    const used = await storageUsage(h.started.store, "sam");
    assert.equal(used.revisions, 2);
    assert.ok(used.bytes > xir.length, `${used.bytes}: the failed push's source counts`);
    let refused: Awaited<ReturnType<typeof apiError>> | undefined;
    for (let i = 0; i < 10 && refused === undefined; i++) {
      try {
        await sam.push("sam", "one", `${xir}}`, "xir");
      } catch (e) {
        refused = await apiError(Promise.reject(e));
      }
    }
    assert.ok(refused, "a push went over the quota");
    assert.equal(refused.status, 413);
    assert.match(refused.message, /storage quota exceeded: your revisions take [\d.]+ MiB of your 0\.1 MiB quota/);
    const before = (await sam.experiment("sam", "one")).revisions;
    assert.equal((await storageUsage(h.started.store, "sam")).revisions, before, "the refused push stored nothing");
    // Someone else is not affected by sam's usage.
    const tia = await h.user("tia");
    await tia.createExperiment("tia", { name: "mine" });
    assert.equal((await tia.push("tia", "mine", xir, "xir")).status, "compiled");

    await sam.deleteExperiment("sam", "one");
    assert.deepEqual(await storageUsage(h.started.store, "sam"), { bytes: 0, revisions: 0 });
    assert.deepEqual(await h.started.store.range("portal/storage-charges/sam/"), []);
    await sam.createExperiment("sam", { name: "two" });
    assert.equal((await sam.push("sam", "two", xir, "xir")).status, "compiled");
  });
});
