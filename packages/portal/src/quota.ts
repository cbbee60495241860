/**
 * Per-user storage quota: what a user's pushes keep in the store (revision
 * records, sources and XIR, also of revisions that did not compile), counted
 * as stored (compressed bodies count compressed). The limits are the `quota`
 * section of the policy file; usage is a document per user, changed in the
 * same transaction as the revisions it counts, so concurrent pushes cannot
 * overrun it. Deleting an experiment gives its revisions' bytes back to
 * whoever pushed them.
 */
import type { Store } from "@merge/store";
import { parse } from "yaml";
import { type Batch, readDoc } from "./documents.ts";
import { PortalError } from "./errors.ts";
import { PolicyError } from "./policy.ts";

export interface StorageQuota {
  /** Bytes one user's revisions may take. */
  bytes: number;
  /** Revisions one user may keep. */
  revisions: number;
}

export interface StorageUsage {
  bytes: number;
  revisions: number;
}

/** What a revision charged, and to whom (kept beside the revision, deleted with it). */
interface Charge {
  user: string;
  bytes: number;
}

export const DEFAULT_QUOTA: StorageQuota = { bytes: 1024 ** 3, revisions: 10_000 };

const P = "portal/";
export const quotaKeys = {
  usage: (user: string) => `${P}storage-usage/${user}`,
  charge: (p: string, e: string, n: number) => `${P}storage-charges/${p}/${e}/${String(n).padStart(8, "0")}`,
  charges: (p: string, e: string) => `${P}storage-charges/${p}/${e}/`,
};

/** The `quota` section of a policy document; defaults where it says nothing. Errors name the file and field. */
export function parseQuota(text: string, file = "<policy>"): StorageQuota {
  const doc = parse(text) as { quota?: unknown } | null;
  const section = doc?.quota;
  if (section === undefined || section === null) return DEFAULT_QUOTA;
  const storage = (section as { storage?: unknown }).storage;
  if (typeof section !== "object" || typeof storage !== "object" || storage === null) {
    throw new PolicyError(`${file}: quota: expected 'storage: {bytes: N, revisions: N}'`);
  }
  const out = { ...DEFAULT_QUOTA };
  for (const [k, v] of Object.entries(storage)) {
    if (k !== "bytes" && k !== "revisions") {
      throw new PolicyError(`${file}: quota.storage.${k}: unknown field; known: bytes, revisions`);
    }
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      throw new PolicyError(`${file}: quota.storage.${k}: expected a whole number >= 0, got ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  return out;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Adds to `batch` the charge of a new revision (`bytes`) to `user`, with a
 * compare on their usage document; throws a 413 naming the quota and the
 * usage when it would go over.
 */
export async function chargeRevision(
  store: Store,
  batch: Batch,
  quota: StorageQuota,
  user: string,
  at: { project: string; experiment: string; n: number },
  bytes: number,
): Promise<void> {
  const key = quotaKeys.usage(user);
  const doc = await readDoc<StorageUsage>(store, key);
  const used = doc?.value ?? { bytes: 0, revisions: 0 };
  if (used.bytes + bytes > quota.bytes) {
    throw new PortalError(
      "too_large",
      `storage quota exceeded: your revisions take ${mib(used.bytes)} of your ${mib(quota.bytes)} quota and this one needs ${mib(bytes)} more; delete experiments you no longer need`,
      "source",
    );
  }
  if (used.revisions + 1 > quota.revisions) {
    throw new PortalError(
      "too_large",
      `revision quota exceeded: you keep ${used.revisions} revisions, the most the quota allows (${quota.revisions}); delete experiments you no longer need`,
    );
  }
  if (doc === undefined) batch.absent(key);
  else batch.unchanged(key, doc.modRevision);
  batch
    .put(key, { bytes: used.bytes + bytes, revisions: used.revisions + 1 } satisfies StorageUsage)
    .put(quotaKeys.charge(at.project, at.experiment, at.n), { user, bytes } satisfies Charge);
}

/** Adds to `batch` the refund of every revision of an experiment (with compares on the usage documents it changes). */
export async function refundExperiment(store: Store, batch: Batch, project: string, experiment: string): Promise<void> {
  const charges = await store.range(quotaKeys.charges(project, experiment));
  const byUser = new Map<string, StorageUsage>();
  for (const kv of charges) {
    const c = JSON.parse(kv.value) as Charge;
    const u = byUser.get(c.user) ?? { bytes: 0, revisions: 0 };
    byUser.set(c.user, { bytes: u.bytes + c.bytes, revisions: u.revisions + 1 });
  }
  for (const [user, refund] of byUser) {
    const key = quotaKeys.usage(user);
    const doc = await readDoc<StorageUsage>(store, key);
    if (doc === undefined) continue;
    batch.unchanged(key, doc.modRevision).put(key, {
      bytes: Math.max(0, doc.value.bytes - refund.bytes),
      revisions: Math.max(0, doc.value.revisions - refund.revisions),
    } satisfies StorageUsage);
  }
  batch.deletePrefix(quotaKeys.charges(project, experiment));
}

/** A user's storage usage (zero when they never pushed). */
export async function storageUsage(store: Store, user: string): Promise<StorageUsage> {
  return (await readDoc<StorageUsage>(store, quotaKeys.usage(user)))?.value ?? { bytes: 0, revisions: 0 };
}
