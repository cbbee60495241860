/**
 * JSON documents over the KV store: typed reads, and writes that always go
 * through one compare-and-swap transaction so a crash never leaves half an
 * object behind.
 */
import {
  type Compare,
  type Doc,
  getDoc,
  type KeyValue,
  LOST_RACE,
  type Op,
  retryConflicts,
  type Store,
  StoreError,
  type TxnResult,
} from "@merge/store";
import { notFound, PortalError } from "./errors.ts";

/** A document with its revisions (the store's one `Doc`), or undefined. */
export function readDoc<T>(store: Store, key: string): Promise<Doc<T> | undefined> {
  return getDoc<T>(store, key);
}

export async function read<T>(store: Store, key: string): Promise<T | undefined> {
  return (await readDoc<T>(store, key))?.value;
}

/** The document at `key`, or a 404 naming it (`kind` `name`). */
export async function readFound<T>(store: Store, key: string, kind: string, name: string): Promise<T> {
  const value = await read<T>(store, key);
  if (value === undefined) throw notFound(kind, name);
  return value;
}

export async function list<T>(store: Store, prefix: string, limit?: number): Promise<T[]> {
  const kvs: KeyValue[] = await store.range(prefix, limit === undefined ? undefined : { limit });
  return kvs.map((kv) => JSON.parse(kv.value) as T);
}

/** A write batch: compares that must hold, and the ops to apply atomically when they do. */
export class Batch {
  readonly compare: Compare[] = [];
  readonly ops: Op[] = [];
  absent(key: string): this {
    this.compare.push({ key, target: "absent" });
    return this;
  }
  unchanged(key: string, modRevision: number): this {
    this.compare.push({ key, target: "modRevision", op: "==", value: modRevision });
    return this;
  }
  put(key: string, value: unknown): this {
    this.ops.push({ op: "put", key, value: JSON.stringify(value) });
    return this;
  }
  delete(key: string): this {
    this.ops.push({ op: "delete", key });
    return this;
  }
  deletePrefix(prefix: string): this {
    this.ops.push({ op: "deletePrefix", prefix });
    return this;
  }
  /** Ops already built (a chunked object's puts or deletes). */
  add(ops: readonly Op[]): this {
    this.ops.push(...ops);
    return this;
  }
  /**
   * Applies the batch; a failed compare becomes a 409 with `conflictMessage`. With `what`, a batch
   * that grows with an experiment or facility: see `tryCommitSized`.
   */
  async commit(store: Store, conflictMessage: string, what?: string): Promise<number> {
    const r = await this.txn(store, what);
    if (!r.succeeded) throw new PortalError("conflict", conflictMessage);
    return r.revision;
  }
  /** Applies the batch; returns whether the compares held. */
  async tryCommit(store: Store): Promise<boolean> {
    return (await this.txn(store)).succeeded;
  }
  /**
   * `tryCommit` for batches that grow with an experiment or facility: a store that refuses one as
   * too big (etcd's --max-request-bytes, 1.5 MiB by default, bounds the whole transaction; every
   * store takes at most 128 ops) is a 422 naming `what` and the size, not a 500.
   */
  async tryCommitSized(store: Store, what: string): Promise<boolean> {
    return (await this.txn(store, what)).succeeded;
  }
  private async txn(store: Store, what?: string): Promise<TxnResult> {
    try {
      return await store.txn({ compare: this.compare, success: this.ops });
    } catch (e) {
      if (what === undefined || !(e instanceof StoreError) || e.code !== "invalid") throw e;
      const bytes = this.ops.reduce((n, op) => n + (op.op === "put" ? Buffer.byteLength(op.value) : 0), 0);
      throw new PortalError(
        "unprocessable",
        `${what}: the ${store.backend} store refused its ${(bytes / 2 ** 20).toFixed(1)} MiB transaction of ${this.ops.length} ops (${e.message}); on etcd raise --max-request-bytes, or make it smaller`,
      );
    }
  }
}

/**
 * Read-modify-write of one document as a PATCH does it: a 404 naming `what` when it is absent,
 * one compare-and-swap, and a 409 when another writer came first (the caller sees the newer
 * document and decides again; nothing is merged behind its back). Returns the document as it
 * was and as written.
 */
export async function patchDoc<T>(
  store: Store,
  key: string,
  what: { kind: string; name: string; noun?: string },
  change: (current: T) => T | Promise<T>,
): Promise<{ before: T; after: T }> {
  const doc = await readDoc<T>(store, key);
  if (doc === undefined) throw notFound(what.kind, what.name);
  const after = await change(doc.value);
  await new Batch()
    .unchanged(key, doc.modRevision)
    .put(key, after)
    .commit(store, `the ${what.noun ?? what.kind} changed meanwhile; try again`);
  return { before: doc.value, after };
}

/**
 * A batch whose compares span several documents, rebuilt and retried while it loses races to other
 * writers (the store's one retry loop, `retryConflicts`): `attempt` reads, builds and tries one batch
 * and returns LOST_RACE when its compares failed. Giving up is a 409 that says `conflictMessage`.
 */
export async function retryBatch<R>(
  conflictMessage: string,
  maxAttempts: number,
  attempt: () => Promise<R | typeof LOST_RACE>,
): Promise<R> {
  try {
    return await retryConflicts(conflictMessage, attempt, { maxAttempts });
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") throw new PortalError("conflict", conflictMessage);
    throw e;
  }
}

export { LOST_RACE };

/** Compare for an epoch key: unchanged since it was read (or still absent). */
export function epochCompare(key: string, kv: KeyValue | undefined): Compare {
  return kv === undefined ? { key, target: "absent" } : { key, target: "modRevision", op: "==", value: kv.modRevision };
}
