/**
 * A real portal serving the UI (web plugin + materializations plugin) and a real
 * facility (commander over mutual TLS, driver, rex) on a SimBackend, in this
 * process: the same wiring as the facility package's portal-stack fixture,
 * plus the UI, so the browser can drive a materialization end to end.
 */
import assert from "node:assert/strict";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { PortalClient } from "@merge/portal/client";
import { openMemoryStore, type Store } from "@merge/store";
import type { Facility } from "@merge/xir";
import type { Backend } from "../../facility/src/backend.ts";
import { makeCerts } from "../../facility/src/certs.ts";
import { type RunningFacility, startFacility } from "../../facility/src/facility.ts";
import { type Started, startPortal } from "../../portal/src/main.ts";
import { credentialsConnector, materializationPlugin } from "../../portal/src/materialize/index.ts";
import { webUiPlugin } from "../src/serve.ts";

export interface UiStack {
  portal: Started;
  admin: PortalClient;
  /** Stops the facility, the portal and the store (not the backend: the caller made it). */
  close(): Promise<void>;
}

export async function startUiStack(tmp: string, distDir: string, backend: Backend): Promise<UiStack> {
  const certs = join(tmp, "certs");
  makeCerts(certs);
  const portal = await startPortal({
    dataDir: join(tmp, "portal"),
    port: 0,
    plugins: [
      webUiPlugin({ distDir }),
      materializationPlugin({ connect: credentialsConnector(join(tmp, "creds")), backoffMs: 200 }),
    ],
  });
  let store: Store | undefined;
  let facility: RunningFacility | undefined;
  const close = async () => {
    try {
      await facility?.close();
    } finally {
      try {
        await portal.stop();
      } finally {
        await store?.close();
      }
    }
  };
  try {
    const password = portal.admin.password;
    assert.ok(password, "the portal made its administrator's password");
    const admin = new PortalClient(portal.url, (await new PortalClient(portal.url).login("admin", password)).token);
    const [fac] = await admin.facilities();
    assert.ok(fac, "the portal has its demo facility");
    for (const f of ["ca.pem", "portal.pem", "portal-key.pem"]) cpSync(join(certs, f), join(tmp, "creds", fac.name, f));
    store = openMemoryStore();
    facility = await startFacility({ store, backend, model: (await admin.facilityModel(fac.name)) as Facility, certs });
    await admin.updateFacility(fac.name, { endpoint: facility.url });
    return { portal, admin, close };
  } catch (e) {
    await close();
    throw e;
  }
}
