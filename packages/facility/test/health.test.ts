// The facility's health (health.ts, shown by `cog health`): a failed action is listed with its
// materialization, task, error and attempts, counted against its materialization, and warned of;
// a certificate about to expire is warned of (the e2e health test covers the CLI around it).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openMemoryStore } from "@merge/store";
import { Driver } from "../src/driver.ts";
import { CERT_WARN_DAYS, facilityHealth } from "../src/health.ts";
import { startRex, statusIs } from "./fixture.ts";

test("failed tasks with their error, per materialization and as warnings; a certificate near expiry", async () => {
  const store = openMemoryStore();
  const dir = mkdtempSync(join(tmpdir(), "mz-health-"));
  try {
    const mzid = "hf.exp.proj";
    const s = synthetic(6, { mzid, lanSize: 3 });
    const driver = new Driver(store);
    const { rex } = await startRex(store, {
      durations: { imaging: 0, power: 0, network: 0, infrapod: 0 },
      failures: [{ method: "nodeSetup", target: "m4", message: "m4: BMC does not answer" }],
    });
    await driver.materialize(mzid, fragmentsFor(s.realization, s.experiment, s.facility));
    await statusIs(driver, mzid, "error");
    await rex.idle();
    // A certificate that ends in 10 days (openssl: no fixture needed to make one).
    execFileSync("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "10",
      "-subj",
      "/CN=soon",
      "-keyout",
      join(dir, "soon-key.pem"),
      "-out",
      join(dir, "soon.pem"),
    ]);
    const h = await facilityHealth(store, { certs: dir });
    await rex.stop();
    assert.deepEqual(
      h.failed.map((f) => [f.mzid, f.task, f.action, f.error, f.attempts]),
      [[mzid, "nodes", "setup-m4", "m4: BMC does not answer", 1]],
    );
    const m = h.materializations.find((x) => x.mzid === mzid);
    assert.ok(m && m.failed === 1 && m.nodes === 6 && m.complete < m.actions, JSON.stringify(m));
    assert.ok(h.warnings.some((w) => w.includes(`${mzid}: action nodes/setup-m4 failed: m4: BMC does not answer`)));
    assert.deepEqual(
      h.certificates.map((c) => [c.subject, c.daysLeft < CERT_WARN_DAYS, c.warn]),
      [["CN=soon", true, true]],
      "the key file is not taken for a certificate",
    );
    assert.deepEqual(
      h.workers.map((w) => w.id),
      [rex.id],
      "the live rex worker",
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
