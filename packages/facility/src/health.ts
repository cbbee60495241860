/**
 * What a facility's operations view shows, read from its store (and its
 * certificate directory): the store itself, the rex workers alive (their
 * records sit on their leases), materializations with their age, phase,
 * infrapod and progress, every action in error with its message, the
 * harbor's nodes, and certificates with their expiry (a warning inside
 * CERT_WARN_DAYS). `cog health` prints it; the portal shows its own side.
 */
import { X509Certificate } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Store, StoreStatus } from "@merge/store";
import { type Action, impliedCount, keys, type MzInfo, parseKey, type Task, type WorkerRecord } from "./task.ts";

export const CERT_WARN_DAYS = 30;

export interface CertificateHealth {
  file: string;
  subject: string;
  expires: string;
  daysLeft: number;
  warn: boolean;
}

export interface FacilityHealth {
  store: StoreStatus;
  workers: WorkerRecord[];
  materializations: {
    mzid: string;
    phase: string;
    ageSeconds: number;
    nodes: number;
    infrapod?: string;
    actions: number;
    complete: number;
    failed: number;
  }[];
  failed: { mzid: string; task: string; action: string; error: string; updated: string; attempts: number }[];
  /** Testbed nodes the facility records (the harbor and materialized ones). */
  nodes: number;
  certificates: CertificateHealth[];
  /** Things an operator should look at, one line each. */
  warnings: string[];
}

/** Certificates (`*.pem` that parse as one) in `dir`, with their expiry. */
export function certificateHealth(dir: string, now = Date.now()): CertificateHealth[] {
  if (!existsSync(dir)) return [];
  const out: CertificateHealth[] = [];
  for (const f of readdirSync(dir)
    .filter((f) => f.endsWith(".pem") && !f.includes("key"))
    .sort()) {
    try {
      const c = new X509Certificate(readFileSync(join(dir, f)));
      const expires = Date.parse(c.validTo);
      const daysLeft = Math.floor((expires - now) / 86_400_000);
      out.push({
        file: join(dir, f),
        subject: c.subject.replace(/\n/g, ", "),
        expires: new Date(expires).toISOString(),
        daysLeft,
        warn: daysLeft < CERT_WARN_DAYS,
      });
    } catch {
      // not a certificate (a key, a CSR): not ours to judge
    }
  }
  return out;
}

export async function facilityHealth(
  store: Store,
  opts: { certs?: string; now?: number } = {},
): Promise<FacilityHealth> {
  const now = opts.now ?? Date.now();
  const workers = (await store.range(keys.workers)).map((kv) => JSON.parse(kv.value) as WorkerRecord);
  const infos = new Map<string, MzInfo>();
  const counts = new Map<string, { actions: number; complete: number; failed: number }>();
  const failed: FacilityHealth["failed"] = [];
  /** Tasks, and how many of each one's actions have a key (the rest are pending: impliedAction). */
  const tasks: { mzid: string; task: Task }[] = [];
  const keyed = new Map<string, number>();
  for (const kv of await store.range(keys.mzPrefix)) {
    const p = parseKey(kv.key);
    if (p.type === "info") infos.set(p.mzid, JSON.parse(kv.value) as MzInfo);
    else if (p.type === "task") tasks.push({ mzid: p.mzid, task: JSON.parse(kv.value) as Task });
    else if (p.type === "action") {
      const a = JSON.parse(kv.value) as Action;
      keyed.set(`${p.mzid}\0${p.task}`, (keyed.get(`${p.mzid}\0${p.task}`) ?? 0) + 1);
      const c = counts.get(p.mzid) ?? { actions: 0, complete: 0, failed: 0 };
      c.actions++;
      if (a.state === "complete" || a.masked) c.complete++;
      if (a.state === "error" && !a.masked) {
        c.failed++;
        failed.push({
          mzid: p.mzid,
          task: p.task,
          action: p.id,
          error: a.error ?? "",
          updated: a.updated,
          attempts: a.attempts,
        });
      }
      counts.set(p.mzid, c);
    }
  }
  for (const { mzid, task } of tasks) {
    const implied = impliedCount(task, keyed.get(`${mzid}\0${task.id}`) ?? 0);
    if (!implied) continue;
    const c = counts.get(mzid) ?? { actions: 0, complete: 0, failed: 0 };
    c.actions += implied;
    counts.set(mzid, c);
  }
  const materializations = [...infos.values()].map((i) => {
    const c = counts.get(i.mzid) ?? { actions: 0, complete: 0, failed: 0 };
    return {
      mzid: i.mzid,
      phase: i.phase,
      ageSeconds: Math.max(0, Math.round((now - Date.parse(i.created)) / 1000)),
      nodes: i.nodes.length,
      ...(i.infrapod ? { infrapod: i.infrapod.server } : {}),
      ...c,
    };
  });
  const certificates = opts.certs ? certificateHealth(opts.certs, now) : [];
  const warnings: string[] = [];
  if (workers.length === 0) warnings.push("no rex worker is running: nothing will be carried out");
  for (const c of certificates.filter((c) => c.warn))
    warnings.push(
      `${c.file} ${c.daysLeft < 0 ? "expired" : `expires in ${c.daysLeft} days`} (${c.expires.slice(0, 10)}); renew it: cog certs make --force`,
    );
  for (const f of failed) warnings.push(`${f.mzid}: action ${f.task}/${f.action} failed: ${f.error}`);
  const st = await store.status();
  for (const m of st.members ?? [])
    if (!m.reachable) warnings.push(`etcd member ${m.name || m.id} is not reachable: ${m.error ?? ""}`);
  if (st.backend === "etcd" && st.leader === undefined)
    warnings.push("etcd has no leader: writes stall until a quorum is back");
  return {
    store: st,
    workers,
    materializations,
    failed,
    nodes: (await store.range(keys.nodePrefix)).length,
    certificates,
    warnings,
  };
}
