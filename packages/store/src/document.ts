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

/**
 * Read-modify-write, the one compare-and-swap loop for JSON documents: `fn`
 * gets the current document (undefined if absent) and returns the new one, or
 * undefined to write nothing. If another writer changed the key in between,
 * `fn` runs again on the newer document after a short jittered backoff. `fn`
 * may run several times, so it must not have side effects beyond computing
 * its result. Bounded: after `maxAttempts` lost races it throws a StoreError
 * "conflict" naming the document and the revisions that kept changing it.
 */
export async function updateJSON<T>(
  store: Store,
  key: string,
  fn: (current: T | undefined) => T | undefined | Promise<T | undefined>,
  opts: UpdateOptions<T> = {},
): Promise<UpdateResult<T>> {
  const maxAttempts = opts.maxAttempts ?? 100;
  let first: number | undefined;
  let last = 0;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (attempt > 1) await new Promise((res) => setTimeout(res, backoff(attempt)));
    const doc = await getDoc(store, key, opts.parse);
    last = doc?.modRevision ?? 0;
    first ??= last;
    const next = await fn(doc?.value);
    if (next === undefined) return { value: doc?.value, revision: last, written: false };
    const r = await store.txn({
      compare: [doc ? { key, target: "modRevision", op: "==", value: doc.modRevision } : { key, target: "absent" }],
      success: [{ op: "put", key, value: encode(key, next) }],
    });
    if (r.succeeded) return { value: next, revision: r.revision, written: true };
  }
  throw new StoreError(
    "conflict",
    `${opts.what ?? key}: gave up after ${maxAttempts} attempts: other writers kept changing it (revision ${first} to ${last} while updating)`,
  );
}
