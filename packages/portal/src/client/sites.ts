/**
 * Tell a portal of facilities and the interconnects between them (`npm start
 * -- --facilities N`, the multi-facility tests): each facility registered, or
 * pointed at its commander and CA when the portal knows it already, then each
 * interconnect put (idempotent). As an administrator.
 */
import { ApiError, type PortalClient } from "./index.ts";

export interface SiteRecord {
  name: string;
  endpoint: string;
  /** PEM of the facility's CA. */
  certificate: string;
  model: unknown;
  description?: string;
}

export interface SiteInterconnect {
  id: string;
  a: { facility: string; resource: string; port: string };
  b: { facility: string; resource: string; port: string };
  /** bits/s */
  capacity: number;
  /** one-way, ns */
  latency: number;
  shared: boolean;
}

export async function registerSites(
  admin: PortalClient,
  facilities: readonly SiteRecord[],
  interconnects: readonly SiteInterconnect[],
): Promise<void> {
  for (const f of facilities) {
    try {
      await admin.facility(f.name);
      await admin.updateFacility(f.name, { endpoint: f.endpoint, certificate: f.certificate });
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404) throw e;
      await admin.registerFacility({
        name: f.name,
        endpoint: f.endpoint,
        certificate: f.certificate,
        model: f.model,
        description: f.description ?? "",
      });
    }
  }
  for (const ic of interconnects) {
    await admin.putInterconnect(ic.id, {
      a: ic.a,
      b: ic.b,
      capacityBps: ic.capacity,
      latencyNs: ic.latency,
      shared: ic.shared,
    });
  }
}
