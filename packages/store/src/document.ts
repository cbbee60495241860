/**
 * JSON documents over the store: typed reads, and read-modify-write as a
 * compare-and-swap loop on the key's modRevision, so concurrent writers (other
 * requests, other processes, other portal replicas) never lose each other's updates.
 */
import { StoreError } from "./errors.ts";
import type { KeyValue, Store } from "./kv.ts";

/** Optional validation of what was read (e.g. a TypeBox or JSON Schema check); throws on bad input. */
export type Parse<T> = (raw: unknown, key: string) => T;

export interface Doc<T> {
  key: string;
  value: T;
  modRevision: number;
  createRevision: number;
  version: number;
}

function decode<T>(kv: KeyValue, parse?: Parse<T>): Doc<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(kv.value);
  } catch (err) {
    throw new StoreError("corrupt", `${kv.key}: stored value is not JSON (${(err as Error).message})`, { cause: err });
  }
  let value: T;
  try {
    value = parse ? parse(raw, kv.key) : (raw as T);
  } catch (err) {
    throw new StoreError("corrupt", `${kv.key}: stored document is invalid: ${(err as Error).message}`, { cause: err });
  }
  return { key: kv.key, value, modRevision: kv.modRevision, createRevision: kv.createRevision, version: kv.version };
}

function encode(key: string, value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new StoreError("invalid", `${key}: ${typeof value} is not a JSON document`);
  return text;
}

/** The document with its revisions, or undefined. */
export async function getDoc<T>(store: Store, key: string, parse?: Parse<T>): Promise<Doc<T> | undefined> {
  const kv = await store.get(key);
  return kv && decode(kv, parse);
}

export async function getJSON<T>(store: Store, key: string, parse?: Parse<T>): Promise<T | undefined> {
  return (await getDoc(store, key, parse))?.value;
}

/** Documents under a prefix, in key order (same paging options as `range`). */
export async function rangeJSON<T>(
  store: Store,
  prefix: string,
  opts: { limit?: number; after?: string; parse?: Parse<T> } = {},
): Promise<Doc<T>[]> {
  const { parse, ...page } = opts;
  return (await store.range(prefix, page)).map((kv) => decode(kv, parse));
}

/** Writes unconditionally; returns the revision. */
export async function putJSON(
  store: Store,
  key: string,
  value: unknown,
  opts: { lease?: string } = {},
): Promise<number> {
  return store.put(key, encode(key, value), opts);
}

/** Writes only if the key does not exist; returns the revision, or undefined if it existed. */
export async function createJSON(
  store: Store,
  key: string,
  value: unknown,
  opts: { lease?: string } = {},
): Promise<number | undefined> {
  const r = await store.txn({
    compare: [{ key, target: "absent" }],
    success: [{ op: "put", key, value: encode(key, value), ...(opts.lease ? { lease: opts.lease } : {}) }],
  });
  return r.succeeded ? r.revision : undefined;
}

export interface UpdateOptions<T> {
  parse?: Parse<T>;
  /** Give up (StoreError "conflict") after this many lost races (default 100). */
  maxAttempts?: number;
  /** What the document is, for the error (default: its key). */
  what?: string;
}

export interface UpdateResult<T> {
  /** The document as written, or as found when `fn` made no change. */
  value: T | undefined;
  /** The revision written, or the key's modRevision (0 if absent) when nothing was written. */
  revision: number;
  written: boolean;
}

/** Wait before try `attempt` (from 2): exponential from 1 ms, capped at 50 ms, full jitter so contenders spread out. */
const backoff = (attempt: number) => Math.random() * Math.min(50, 2 ** (attempt - 2));

/** What a try of `retryConflicts` returns when its compares failed because another writer came first. */
export const LOST_RACE: unique symbol = Symbol("lost race");

/**
 * The one retry loop for compare-and-swap writes, over one key (`updateJSON`) or several (a batch
 * whose compares span documents): `attempt` reads what it needs and tries one transaction; it
 * returns LOST_RACE when the compares failed, anything else ends the loop with that result. Lost
 * races are retried after a short jittered backoff, at most `maxAttempts` times; then a StoreError
 * "conflict" says that `what` kept changing (`revisions`, when given, tells from which to which).
 */
export async function retryConflicts<R>(
  what: string,
  attempt: (n: number) => Promise<R | typeof LOST_RACE>,
  opts: { maxAttempts?: number; revisions?: () => string } = {},
): Promise<R> {
  const maxAttempts = opts.maxAttempts ?? 100;
  for (let n = 1; n <= maxAttempts; n++) {
    if (n > 1) await new Promise((res) => setTimeout(res, backoff(n)));
    const r = await attempt(n);
    if (r !== LOST_RACE) return r;
  }
  const revisions = opts.revisions?.();
  throw new StoreError(
    "conflict",
    `${what}: gave up after ${maxAttempts} attempts: other writers kept changing it${revisions ? ` (${revisions})` : ""}`,
  );
}

/**
 * Read-modify-write of one JSON document: `fn` gets the current document
 * (undefined if absent) and returns the new one, or undefined to write nothing.
 * If another writer changed the key in between, `fn` runs again on the newer
 * document (see `retryConflicts`). `fn` may run several times, so it must not
 * have side effects beyond computing its result.
 */
export async function updateJSON<T>(
  store: Store,
  key: string,
  fn: (current: T | undefined) => T | undefined | Promise<T | undefined>,
  opts: UpdateOptions<T> = {},
): Promise<UpdateResult<T>> {
  let first: number | undefined;
  let last = 0;
  return retryConflicts<UpdateResult<T>>(
    opts.what ?? key,
    async () => {
      const doc = await getDoc(store, key, opts.parse);
      last = doc?.modRevision ?? 0;
      first ??= last;
      const next = await fn(doc?.value);
      if (next === undefined) return { value: doc?.value, revision: last, written: false };
      const r = await store.txn({
        compare: [doc ? { key, target: "modRevision", op: "==", value: doc.modRevision } : { key, target: "absent" }],
        success: [{ op: "put", key, value: encode(key, next) }],
      });
      return r.succeeded ? { value: next, revision: r.revision, written: true } : LOST_RACE;
    },
    { maxAttempts: opts.maxAttempts, revisions: () => `revision ${first} to ${last} while updating` },
  );
}
