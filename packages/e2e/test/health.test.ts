// The operations view over a real stack (portal on sqlite, facility on the sim
// backend): `mergectl health` (a subprocess) shows the replica, the store, the
// facility, the materialization with its age and usage; the facility's health
// shows its rex worker, the materialization's progress and the certificates.
// A facility's failed actions reach the portal's view (mergectl health) with their errors.
// `cog health` against a sqlite facility store: workers, certificates, and a
// certificate that expires soon is a warning (exit 1).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { facilityHealth, makeCerts, Rex, SimBackend } from "@merge/facility";
import { closeThenRemove } from "@merge/facility/testing";
import type { PortalHealth } from "@merge/portal/client";
import { openStore } from "@merge/store";
import { type PortalStack, startPortalStack } from "./portal-stack.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "merge-health-"));
let stack: PortalStack;

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(join(root, "packages/cli/bin", cmd), args, { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const backend = new SimBackend({ durations: { imaging: 5, power: 2, network: 1, infrapod: 2 } });
before(async () => {
  stack = await startPortalStack(tmp, backend);
});
after(() => closeThenRemove(tmp, stack));

test("mergectl health and the facility's health after a materialization", async () => {
  await stack.accepted("hp", "demo", readFileSync(join(root, "examples/demo.ts"), "utf8"), "ts");
  const up = await stack.mrg(["materialize", "r1.demo.hp", "--timeout", "60"]);
  assert.equal(up.code, 0, up.stderr);

  const env: Record<string, string> = {
    MERGE_PORTAL: stack.portal.url,
    MERGE_TOKEN: stack.admin.token ?? "",
    MERGE_CONFIG_DIR: join(tmp, "cfg"),
  };
  const json = await run("mergectl", ["health", "--json"], env);
  const h = JSON.parse(json.stdout) as PortalHealth;
  assert.equal(json.code, h.warnings.length ? 1 : 0, json.stderr);
  assert.deepEqual(
    h.replicas.map((r) => [r.self, r.url]),
    [[true, stack.portal.url]],
  );
  assert.equal(h.store.backend, "sqlite");
  assert.ok((h.store.bytes ?? 0) > 0 && h.store.file?.endsWith("store.db"));
  assert.deepEqual(
    h.facilities.map((f) => [f.name, f.state]),
    [["phobos", "active"]],
  );
  // The facility's own side, over the portal↔facility channel: its rex worker, nothing failed.
  assert.deepEqual(h.facilities[0]?.health, { failed: [], workers: 1, warnings: [] });
  assert.equal(h.realizations.accepted, 1);
  const mz = h.materializations.find((m) => m.id.startsWith("r1.demo.hp"));
  assert.ok(
    mz && mz.state === "materializing" && mz.creator === "admin" && mz.ageSeconds >= 0,
    JSON.stringify(h.materializations),
  );
  assert.deepEqual(mz.undelivered, []);
  assert.equal(h.usage.byProject.hp?.materializations, 1);
  assert.ok((h.usage.byUser.admin?.resources ?? 0) > 0);
  const text = await run("mergectl", ["health"], env);
  assert.match(text.stdout, /store: sqlite, revision \d+, [\d.]+ MiB/);
  assert.match(text.stdout, /r1\.demo\.hp/);
  // Not for everyone.
  const plain = await run("mergectl", ["health"], {
    ...env,
    MERGE_TOKEN: "mrg_000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
  });
  assert.equal(plain.code, 1);

  const f = await facilityHealth(stack.store, { certs: join(tmp, "certs") });
  assert.equal(f.workers.length, 1);
  assert.equal(f.workers[0]?.pid, process.pid);
  const m = f.materializations[0];
  assert.ok(
    m && m.nodes === 4 && m.actions > 0 && m.complete === m.actions && m.failed === 0,
    JSON.stringify(f.materializations),
  );
  assert.deepEqual(f.failed, []);
  assert.ok(f.certificates.length >= 3 && f.certificates.every((c) => c.daysLeft > 800 && !c.warn));
  assert.deepEqual(f.warnings, []);
});

test("cog health on a sqlite facility store: workers, certificates, and a certificate about to expire", async () => {
  const dir = join(tmp, "cog");
  const store = openStore({ backend: "sqlite", dir: join(dir, "store") });
  const rex = new Rex({ store, backend: new SimBackend(), id: "rex-health-test" });
  await rex.start();
  try {
    makeCerts(join(dir, "certs"), { days: 10 });
    const r = await run("cog", ["health", "--store", `sqlite://${join(dir, "store")}`, "--certs", join(dir, "certs")]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /rex-health-test/);
    assert.match(r.stdout, /materializations: none/);
    assert.match(r.stdout, /commander\.pem .*\d{4}-\d\d-\d\d .*(9|10) \(renew\)/);
    assert.match(
      r.stdout,
      /look at:\n(.*\n)*? {2}.*commander\.pem expires in (9|10) days \(\d{4}-\d\d-\d\d\); renew it: cog certs make --force/,
    );
  } finally {
    await rex.stop();
    await store.close();
  }
  // The worker's record goes with it.
  const again = openStore({ backend: "sqlite", dir: join(dir, "store") });
  try {
    assert.deepEqual((await facilityHealth(again)).workers, []);
  } finally {
    await again.close();
  }
});

test("mergectl health lists a facility's failed actions with their errors", async () => {
  backend.inject({ method: "nodeSetup", message: "sim: the disk is on fire" });
  await stack.accepted("hf", "demo", readFileSync(join(root, "examples/demo.ts"), "utf8"), "ts");
  const up = await stack.mrg(["materialize", "r1.demo.hf", "--timeout", "60"]);
  assert.notEqual(up.code, 0, "the materialization fails");
  const env: Record<string, string> = {
    MERGE_PORTAL: stack.portal.url,
    MERGE_TOKEN: stack.admin.token ?? "",
    MERGE_CONFIG_DIR: join(tmp, "cfg"),
  };
  const json = await run("mergectl", ["health", "--json"], env);
  assert.equal(json.code, 1, json.stderr);
  const h = JSON.parse(json.stdout) as PortalHealth;
  const report = h.facilities.find((f) => f.name === "phobos")?.health;
  assert.ok(report && "failed" in report, JSON.stringify(h.facilities));
  const failed = report.failed.filter((a) => a.mzid.startsWith("r1.demo.hf"));
  assert.ok(failed.length > 0, JSON.stringify(report.failed));
  for (const a of failed) {
    assert.equal(a.error, "sim: the disk is on fire");
    assert.ok(a.task && a.action && a.attempts >= 1 && !Number.isNaN(Date.parse(a.updated)), JSON.stringify(a));
  }
  // Nothing of the healthy materialization.
  assert.deepEqual(
    report.failed.filter((a) => a.mzid.startsWith("r1.demo.hp")),
    [],
  );
  assert.ok(
    h.warnings.some((w) => /^facility phobos: r1\.demo\.hf.*failed: sim: the disk is on fire$/.test(w)),
    h.warnings.join("\n"),
  );
  const text = await run("mergectl", ["health"], env);
  assert.equal(text.code, 1);
  assert.match(text.stdout, /phobos .*r1\.demo\.hf.*sim: the disk is on fire/);
});
