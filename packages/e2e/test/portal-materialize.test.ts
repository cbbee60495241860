// The portal's materializations (packages/portal/src/materialize) against a real
// commander → driver → rex → sim facility, including an unreachable facility.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Rex } from "@merge/facility";
import {
  type Commander,
  certFiles,
  Driver,
  type DriverServer,
  keys,
  loadTls,
  makeCerts,
  startCommander,
  startDriverServer,
} from "@merge/facility";
import { startRex, until } from "@merge/facility/testing";
import { synthetic } from "@merge/materialize";
import { PortalError } from "@merge/portal";
import { credentialsConnector, Materializer, mzKeys, planKeys, readPlan } from "@merge/portal/materialize";
import { openMemoryStore, type Store } from "@merge/store";
import { seedAcceptedRealization } from "./portal-seed.ts";

const tmp = mkdtempSync(join(tmpdir(), "mrg-pmz-"));
const certs = join(tmp, "certs");
const portalCreds = join(tmp, "portal-creds");
let facilityStore: Store;
let portalStore: Store;
let commander: Commander;
let driverServer: DriverServer;
let rex: Rex;
const s = synthetic(20, { mzid: "r1.exp.proj", lanSize: 5, facility: "simfac" });

async function startFacility(port = 0) {
  commander = await startCommander({ tls: loadTls(certFiles(certs, "commander")), port });
  driverServer = await startDriverServer({
    driver: new Driver(facilityStore),
    tls: loadTls(certFiles(certs, "driver")),
    name: "driver-0",
    resources: s.facility.resources.map((r) => r.id),
    registry: commander.registry.url,
  });
}

const seedPortal = (store: Store, realization: string, endpoint: string) =>
  seedAcceptedRealization(store, s, { project: "proj", experiment: "exp", realization, endpoint });

before(async () => {
  makeCerts(certs, { facility: "simfac" });
  // What the operator hands to the portal: the CA certificate and the portal's pair.
  for (const f of ["ca.pem", "portal.pem", "portal-key.pem"]) cpSync(join(certs, f), join(portalCreds, "simfac", f));
  facilityStore = openMemoryStore();
  portalStore = openMemoryStore();
  await startFacility();
  ({ rex } = await startRex(facilityStore, { durations: { imaging: 100, power: 5, network: 2, infrapod: 5 } }));
});

after(async () => {
  await rex?.stop();
  await driverServer?.close();
  await commander?.close();
  await facilityStore?.close();
  await portalStore?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** The portal's materializer, reaching the facility with the portal's credentials, with these `timing` options. */
const materializer = (timing: Omit<ConstructorParameters<typeof Materializer>[0], "store" | "connect">) =>
  new Materializer({ store: portalStore, connect: credentialsConnector(portalCreds), ...timing });

/** The facility goes away: its commander and driver stop. */
async function facilityDown() {
  await driverServer.close();
  await commander.close();
}

test("materialize an accepted realization, at most once; status has per-node and per-link detail; dematerialize", async () => {
  await seedPortal(portalStore, "r1", commander.facility.url);
  const m = materializer({ backoffMs: 50 });
  try {
    const rec = await m.create("proj", "exp", "r1", "alice");
    assert.equal(rec.id, "r1.exp.proj");
    assert.equal(rec.facilities[0]?.fragments, 20 + 1 + s.realization.links.length + 1);
    const plan = await readPlan(portalStore, "proj", "exp", "r1");
    assert.equal(plan?.mzid, "r1.exp.proj", "the plan is stored with the materialization");
    assert.equal(plan?.facilities[0]?.fragments.length, rec.facilities[0]?.fragments);
    await assert.rejects(
      () => m.create("proj", "exp", "r1", "alice"),
      (e: Error) => e instanceof PortalError && e.code === "conflict" && e.status === 409,
    );
    const st = await until("active", async () => {
      const x = await m.status("proj", "exp", "r1");
      return x.status === "active" ? x : undefined;
    });
    assert.equal(st.nodes.length, 20);
    assert.ok(st.nodes.every((n) => n.current === "ready" && n.action === "complete"));
    assert.equal(st.links.length, s.realization.links.length);
    assert.equal(st.facilities[0]?.infrapod, "172.31.0.1");
    assert.equal(st.complete, st.actions);

    await m.dematerialize("proj", "exp", "r1");
    await until("portal record gone", async () => ((await m.get("proj", "exp", "r1")) ? undefined : true));
    assert.equal((await facilityStore.range(keys.mz("r1.exp.proj"))).length, 0, "the facility holds nothing");
    await assert.rejects(() => m.status("proj", "exp", "r1"), /not materialized/);
    assert.equal(await portalStore.get(planKeys.plan("proj", "exp", "r1")), undefined, "the plan goes with it");
    assert.equal((await portalStore.range(planKeys.chunks("proj", "exp", "r1"))).length, 0);
  } finally {
    m.close();
  }
});

test("an unreachable facility shows in status, is retried with backoff, and catches up when back", async () => {
  const port = commander.facility.port;
  await seedPortal(portalStore, "r2", commander.facility.url);
  await facilityDown();
  const m = materializer({ backoffMs: 100, maxBackoffMs: 400 });
  try {
    const t0 = Date.now();
    await m.create("proj", "exp", "r2", "alice");
    assert.ok(Date.now() - t0 < 1000, "create does not wait for the facility");
    const down = await until("retries recorded", async () => {
      const x = await m.status("proj", "exp", "r2");
      return (x.facilities[0]?.attempts ?? 0) >= 2 ? x : undefined;
    });
    assert.equal(down.status, "error");
    assert.equal(down.facilities[0]?.reachable, false);
    assert.match(down.facilities[0]?.error ?? "", /unreachable/);
    assert.ok(down.facilities[0]?.nextAttempt, "the next attempt is scheduled");

    await startFacility(port);
    const up = await until(
      "active after the facility is back",
      async () => {
        const x = await m.status("proj", "exp", "r2");
        return x.status === "active" ? x : undefined;
      },
      20_000,
    );
    assert.equal(up.nodes.length, 20);

    // Dematerialize while the facility is down again: it keeps trying, then gives up and leaves a note.
    await facilityDown();
    const g = materializer({ backoffMs: 50, teardownGiveUpMs: 300 });
    m.close();
    await g.dematerialize("proj", "exp", "r2");
    await until("portal forgets it", async () => ((await g.get("proj", "exp", "r2")) ? undefined : true));
    g.close();
    assert.ok(await portalStore.get(mzKeys.orphan("r2.exp.proj")), "an orphan note is left for operators");
    await startFacility(port);
  } finally {
    m.close();
  }
});
