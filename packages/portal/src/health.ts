/**
 * The portal's side of the operations view: every portal replica alive (each
 * keeps a record on a store lease, REPLICA_TTL_SECONDS), the store (sqlite
 * size; etcd members, leader, sizes), facilities with their certificate
 * expiry (a warning inside CERT_WARN_DAYS) and delivery errors, active
 * materializations with their age, delivery state and idleness, leases
 * running out, and usage per project and user. `GET /health/detail`
 * (administrators), `mergectl health`, the admin page of the web UI.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Store, StoreStatus } from "@merge/store";
import { listFacilities } from "./facility-record.ts";
import { keys } from "./objects.ts";
import { listRealizations } from "./realization-record.ts";
import { certificateExpiry } from "./routes/facilities.ts";

export const CERT_WARN_DAYS = 30;
export const REPLICA_TTL_SECONDS = 15;

export interface ReplicaRecord {
  id: string;
  url: string;
  host: string;
  pid: number;
  started: string;
}

/** This replica's record, kept alive on a lease while it runs. */
export class ReplicaPresence {
  readonly record: ReplicaRecord;
  private lease: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    url: string,
  ) {
    this.record = {
      id: `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`,
      url,
      host: hostname(),
      pid: process.pid,
      started: new Date().toISOString(),
    };
  }

  async start(): Promise<void> {
    await this.announce();
    this.timer = setInterval(
      () => {
        const alive = this.lease ? this.store.keepAlive(this.lease) : Promise.reject(new Error("no lease"));
        // A lost lease (store unreachable for a while): announce again on a new one.
        alive.catch(() => this.announce().catch(() => undefined));
      },
      (REPLICA_TTL_SECONDS * 1000) / 3,
    );
    this.timer.unref();
  }

  private async announce(): Promise<void> {
    this.lease = await this.store.grant(REPLICA_TTL_SECONDS);
    await this.store.put(keys.replica(this.record.id), JSON.stringify(this.record), { lease: this.lease });
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.lease) await this.store.revoke(this.lease).catch(() => undefined);
  }
}

export interface MaterializationHealth {
  id: string;
  state: string;
  creator: string;
  ageSeconds: number;
  /** Facilities not yet confirmed, with the last delivery error. */
  undelivered: { facility: string; attempts: number; lastError?: string }[];
  /** Idleness as the facilities report it (idle.ts), when known. */
  idle?: { idleSeconds: number; flagged: boolean; why: string; since: string };
}

/** What a facility says of itself (FacilityService.Health), or why it could not be asked. */
export type FacilityHealthReport =
  | {
      /** Actions in error (not masked), with their errors. */
      failed: { mzid: string; task: string; action: string; error: string; updated: string; attempts: number }[];
      /** Rex workers alive. */
      workers: number;
      /** The facility's own list of things to look at (`cog health`). */
      warnings: string[];
    }
  | { unreachable: string };

export interface PortalHealth {
  replicas: (ReplicaRecord & { self: boolean })[];
  store: StoreStatus;
  facilities: {
    name: string;
    state: string;
    endpoint: string;
    certificateExpires: string | null;
    daysLeft: number | null;
    /** What the facility reports (active facilities, when the portal can reach them: see facilityHealthProbe). */
    health?: FacilityHealthReport;
  }[];
  realizations: Record<string, number>;
  /** Accepted realizations whose lease ends within a day. */
  expiringSoon: { id: string; expires: string }[];
  materializations: MaterializationHealth[];
  usage: { byProject: Record<string, Usage>; byUser: Record<string, Usage> };
  warnings: string[];
}

interface Usage {
  realizations: number;
  resources: number;
  materializations: number;
}

interface StoredMz {
  id: string;
  project: string;
  experiment: string;
  realization: string;
  state: string;
  creator: string;
  created: string;
  facilities: { facility: string; delivered: boolean; attempts: number; lastError?: string }[];
}

export async function portalHealth(
  store: Store,
  self: ReplicaRecord | undefined,
  idleOf?: (mz: { project: string; experiment: string; realization: string }) => Promise<MaterializationHealth["idle"]>,
  now = Date.now(),
  facilityOf?: (f: { name: string; endpoint: string }) => Promise<FacilityHealthReport>,
): Promise<PortalHealth> {
  const warnings: string[] = [];
  const replicas = (await store.range(keys.replicas())).map((kv) => {
    const r = JSON.parse(kv.value) as ReplicaRecord;
    return { ...r, self: r.id === self?.id };
  });
  const st = await store.status();
  for (const m of st.members ?? [])
    if (!m.reachable) warnings.push(`etcd member ${m.name || m.id} is not reachable: ${m.error ?? ""}`);
  if (st.backend === "etcd" && st.leader === undefined)
    warnings.push("etcd has no leader: writes stall until a quorum is back");

  const records = await listFacilities(store);
  // Every active facility asked at once (each bounded by its probe's deadline).
  const reports = await Promise.all(
    records.map((f) => (facilityOf && f.state === "active" ? facilityOf(f) : Promise.resolve(undefined))),
  );
  const facilities = records.map((f, i) => {
    const exp = f.certificate === "" ? null : certificateExpiry(f.certificate);
    const daysLeft = exp === null ? null : Math.floor((Date.parse(exp) - now) / 86_400_000);
    if (daysLeft !== null && daysLeft < CERT_WARN_DAYS)
      warnings.push(
        `facility ${f.name}: its certificate ${daysLeft < 0 ? "expired" : `expires in ${daysLeft} days`} (${exp?.slice(0, 10)}); renew it (cog certs make) and update the facility`,
      );
    const health = reports[i];
    if (health && "unreachable" in health) warnings.push(`facility ${f.name}: health unknown: ${health.unreachable}`);
    // The facility's own list names each failed action with its error.
    else if (health) for (const w of health.warnings) warnings.push(`facility ${f.name}: ${w}`);
    return {
      name: f.name,
      state: f.state,
      endpoint: f.endpoint,
      certificateExpires: exp,
      daysLeft,
      ...(health ? { health } : {}),
    };
  });

  const rlzs = await listRealizations(store, keys.allRealizations());
  const realizations: Record<string, number> = { pending: 0, accepted: 0, failed: 0 };
  const usage: PortalHealth["usage"] = { byProject: {}, byUser: {} };
  const tally = (m: Record<string, Usage>, k: string) =>
    (m[k] ??= { realizations: 0, resources: 0, materializations: 0 });
  const expiringSoon: PortalHealth["expiringSoon"] = [];
  for (const r of rlzs) {
    realizations[r.state] = (realizations[r.state] ?? 0) + 1;
    if (r.state === "failed") continue;
    for (const t of [tally(usage.byProject, r.project), tally(usage.byUser, r.creator)]) {
      t.realizations++;
      t.resources += r.resources.length;
    }
    if (r.state === "accepted" && r.expires !== null && Date.parse(r.expires) - now < 86_400_000)
      expiringSoon.push({ id: `${r.name}.${r.experiment}.${r.project}`, expires: r.expires });
  }

  const materializations: MaterializationHealth[] = [];
  for (const kv of await store.range(keys.allMaterializations())) {
    const m = JSON.parse(kv.value) as StoredMz;
    tally(usage.byProject, m.project).materializations++;
    tally(usage.byUser, m.creator).materializations++;
    const undelivered = m.facilities
      .filter((f) => !f.delivered)
      .map((f) => ({ facility: f.facility, attempts: f.attempts, ...(f.lastError ? { lastError: f.lastError } : {}) }));
    for (const u of undelivered.filter((u) => u.lastError && u.attempts >= 3))
      warnings.push(
        `${m.id}: ${m.state === "dematerializing" ? "teardown" : "delivery"} to ${u.facility} failed ${u.attempts} times: ${u.lastError}`,
      );
    const idle = idleOf ? await idleOf(m) : undefined;
    if (idle?.flagged) warnings.push(`${m.id} is idle: ${idle.why}`);
    materializations.push({
      id: m.id,
      state: m.state,
      creator: m.creator,
      ageSeconds: Math.max(0, Math.round((now - Date.parse(m.created)) / 1000)),
      undelivered,
      ...(idle ? { idle } : {}),
    });
  }
  return { replicas, store: st, facilities, realizations, expiringSoon, materializations, usage, warnings };
}
