/**
 * Shares a Throttle's failure counts through the portal's store, so every
 * replica on one store enforces one budget.
 *
 * - A failure is counted in the local map at once (throttle.ts), then merged
 *   into the store key `portal/throttle/failures/<kind>/<scope>/<digest>` by a
 *   compare-and-swap loop (the same rule applied to the stored entry), so
 *   concurrent failures on two replicas both count. Keys carry a lease whose
 *   TTL covers the key's window, so they vanish by themselves.
 * - Every replica watches that prefix and copies each stored entry into its
 *   map: a lock set on one replica holds on the others a few milliseconds
 *   later. A success deletes the account's key (the watch clears it elsewhere).
 * - Writes of one key run one after another, in the order they happened.
 * - The store being unreachable locks nobody out and fails no request: the
 *   failure stays counted locally, one warning is logged (no subjects: keys
 *   are digests), and one more when writes go through again. A watch that
 *   ends (compaction, backend error) is restarted by reading the prefix again.
 *
 * The salt of the subject digests is kept in the store (`portal/throttle/salt`),
 * created by whichever replica starts first.
 */
import { randomBytes } from "node:crypto";
import {
  type Compare,
  type KeyValue,
  LOST_RACE,
  retryConflicts,
  type Store,
  StoreError,
  type Watch,
  type WatchEvent,
} from "@merge/store";
import type { Entry, Reserved, Throttle, ThrottleMirror } from "./throttle.ts";

export const THROTTLE_PREFIX = "portal/throttle/failures/";
const SALT_KEY = "portal/throttle/salt";
/** Compare-and-swap attempts per failure before it stays local (others keep writing the same key). */
const ATTEMPTS = 16;
/** A store write taking longer than this counts as failed (the store may hang while etcd is down). */
const WRITE_TIMEOUT_MS = 5_000;

export interface ShareOptions {
  /** Where the outage warnings go (one line each, no secrets). */
  warn?: (message: string) => void;
  /** First delay before restarting an ended watch, ms (doubles up to 5 s; default 100). */
  retryMs?: number;
}

/** Shares `throttle` through `store` (see the module comment); stop with `close()` before closing the store. */
export async function shareThrottle(store: Store, throttle: Throttle, o: ShareOptions = {}): Promise<SharedThrottle> {
  const shared = new SharedThrottle(store, throttle, o);
  throttle.share(shared, await loadSalt(store));
  await shared.resync();
  return shared;
}

async function loadSalt(store: Store): Promise<string> {
  const fresh = randomBytes(32).toString("base64url");
  // Created once; replicas starting together agree on whichever got in first.
  const r = await store.txn({
    compare: [{ key: SALT_KEY, target: "absent" }],
    success: [{ op: "put", key: SALT_KEY, value: fresh }],
    failure: [{ op: "get", key: SALT_KEY }],
  });
  const salt = r.succeeded ? fresh : r.gets[0]?.value;
  if (salt === undefined || !/^[A-Za-z0-9_-]{43}$/.test(salt))
    throw new StoreError("corrupt", `${SALT_KEY}: not a throttle salt (43 base64url characters); delete the key`);
  return salt;
}

/** A stored entry, or undefined when the value is not one (ignored: the key expires with its lease). */
function parseEntry(value: string): Entry | undefined {
  try {
    const e = JSON.parse(value) as Partial<Entry>;
    const ok = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n) && n >= 0;
    if (ok(e.failures) && ok(e.last) && ok(e.lockedUntil))
      return { failures: e.failures, last: e.last, lockedUntil: e.lockedUntil };
  } catch {
    // not JSON
  }
  return undefined;
}

interface Seen {
  rev: number;
  entry: Entry;
}

/** The compare for writing over what was seen of a key: unchanged since, or still absent. */
function compareSeen(key: string, seen: Seen | undefined): Compare {
  return seen === undefined ? { key, target: "absent" } : { key, target: "modRevision", op: "==", value: seen.rev };
}

/** A key as a failed compare-and-swap read it; a value that is not an entry is overwritten as if absent. */
function storedOf(kv: KeyValue | undefined): Seen | undefined {
  if (kv === undefined) return undefined;
  return { rev: kv.modRevision, entry: parseEntry(kv.value) ?? { failures: 0, last: 0, lockedUntil: 0 } };
}

export class SharedThrottle implements ThrottleMirror {
  /** What the store holds per key (as last seen), for the next compare-and-swap. */
  private readonly stored = new Map<string, Seen>();
  /** The last pending write per key: the next one waits for it. */
  private readonly queues = new Map<string, Promise<void>>();
  private watch: Watch | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private lease: Promise<{ id: string; granted: number }> | undefined;
  private degraded = false;
  /** When a write last failed: while degraded, writes are tried at most once a second, so an outage queues none. */
  private failedAt = 0;
  private closed = false;
  private readonly warn: (message: string) => void;

  constructor(
    private readonly store: Store,
    private readonly throttle: Throttle,
    private readonly o: ShareOptions,
  ) {
    this.retryMs = o.retryMs ?? 100;
    this.warn = o.warn ?? ((m) => process.stderr.write(`portal: ${m}\n`));
  }

  failed(key: string, limit: number, now: number): void {
    this.enqueue(key, () => this.writeFailure(key, limit, now));
  }

  cleared(key: string): void {
    this.enqueue(key, async () => {
      await this.store.delete(THROTTLE_PREFIX + key);
    });
  }

  released(key: string, reservedAt: number): void {
    this.enqueue(key, () => this.writeRelease(key, reservedAt));
  }

  /**
   * One compare-and-swap over all the keys: refused without a write when one of them is locked in the
   * store, else every key counts one more failure.
   */
  async reserve(reserved: readonly Reserved[], now: number): Promise<Reserved | undefined> {
    let refused: Reserved | undefined;
    await this.guarded(() =>
      this.merge(
        reserved.map((r) => r.key),
        (entries) => {
          const locked = entries.findIndex((e) => (e?.lockedUntil ?? 0) > now);
          refused = locked < 0 ? undefined : { ...(reserved[locked] as Reserved), until: entries[locked]?.lockedUntil };
          return refused ? undefined : reserved.map((r, i) => this.throttle.afterFailure(entries[i], r.limit, now));
        },
      ),
    );
    return refused;
  }

  /** Resolves when every write issued so far has been tried (tests; shutdown). */
  async settled(): Promise<void> {
    while (this.queues.size > 0) await Promise.allSettled([...this.queues.values()]);
  }

  /** Whether the last store write failed (failures are then counted locally only). */
  get isDegraded(): boolean {
    return this.degraded;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.watch?.cancel();
    this.watch = undefined;
  }

  /** Reads the whole prefix into the map, then watches it from the revision read at. */
  async resync(): Promise<void> {
    if (this.closed) return;
    await this.watch?.cancel();
    this.watch = undefined;
    // Revision first: the range sees at least that much, and replaying later events over it is harmless.
    const rev = await this.store.revision();
    const seen = new Set<string>();
    let after: string | undefined;
    for (;;) {
      const page: KeyValue[] = await this.store.range(THROTTLE_PREFIX, { limit: 1000, after });
      for (const kv of page) {
        seen.add(kv.key);
        this.put(kv);
      }
      if (page.length < 1000) break;
      after = page[page.length - 1]?.key;
    }
    // Keys the store lost while we were not watching (cleared by a success, expired) are cleared here too.
    for (const key of [...this.stored.keys()]) {
      if (!seen.has(THROTTLE_PREFIX + key)) this.remove(key);
    }
    if (this.closed) return;
    const watch = await this.store.watch(THROTTLE_PREFIX, rev, (e) => this.apply(e), {
      onError: (err) => this.restart(err),
    });
    if (this.closed) {
      await watch.cancel();
      return;
    }
    this.watch = watch;
    this.retryMs = this.o.retryMs ?? 100;
  }

  private restart(err: Error): void {
    this.watch = undefined;
    if (this.closed) return;
    this.warn(`throttle: watch on the shared failure counts ended (${err.message}); reading them again`);
    this.retryTimer = setTimeout(() => {
      this.resync().catch((e: unknown) => {
        this.retryMs = Math.min(5_000, this.retryMs * 2);
        this.restart(e instanceof Error ? e : new Error(String(e)));
      });
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private apply(e: WatchEvent): void {
    if (e.type === "put") this.put(e.kv);
    else this.remove(e.kv.key.slice(THROTTLE_PREFIX.length));
  }

  private put(kv: KeyValue): void {
    const key = kv.key.slice(THROTTLE_PREFIX.length);
    const entry = parseEntry(kv.value);
    if (entry === undefined) return;
    this.stored.set(key, { rev: kv.modRevision, entry });
    this.throttle.adopt(key, entry);
  }

  private remove(key: string): void {
    this.stored.delete(key);
    this.throttle.adopt(key, undefined);
  }

  private enqueue(key: string, write: () => Promise<void>): void {
    if (this.closed) return;
    const next = (this.queues.get(key) ?? Promise.resolve()).then(() => this.guarded(write));
    this.queues.set(key, next);
    void next.then(() => {
      if (this.queues.get(key) === next) this.queues.delete(key);
    });
  }

  /**
   * Runs one store write with a time limit; a failure marks the sharing degraded (one warning) instead of
   * throwing, and while degraded, writes are tried at most once a second.
   */
  private async guarded(write: () => Promise<void>): Promise<void> {
    if (this.closed || (this.degraded && Date.now() - this.failedAt < 1_000)) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        write(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new StoreError("unavailable", `no answer in ${WRITE_TIMEOUT_MS} ms`)),
            WRITE_TIMEOUT_MS,
          );
        }),
      ]);
      if (this.degraded && !this.closed) this.warn("throttle: the store takes failure counts again; shared again");
      this.degraded = false;
    } catch (err) {
      if (this.closed) return;
      if (!this.degraded) {
        const code = err instanceof StoreError ? err.code : "error";
        this.warn(
          `throttle: cannot share failure counts through the store (${code}: ${(err as Error).message}); ` +
            "counting on this replica only until it answers again",
        );
      }
      this.degraded = true;
      this.failedAt = Date.now();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Takes one reserved attempt back from the stored entry. */
  private writeRelease(key: string, reservedAt: number): Promise<void> {
    return this.merge([key], ([e]) => (e === undefined ? undefined : [this.throttle.afterRelease(e, reservedAt)]));
  }

  /** Merges one failure into the stored entry. */
  private writeFailure(key: string, limit: number, now: number): Promise<void> {
    return this.merge([key], ([e]) => [this.throttle.afterFailure(e, limit, now)]);
  }

  /**
   * One compare-and-swap over `keys`, on their entries as last seen, retried on the newer ones: `next` gives
   * each key's new entry from its stored one (undefined: absent), or undefined to write nothing.
   */
  private async merge(
    keys: readonly string[],
    next: (stored: (Entry | undefined)[]) => Entry[] | undefined,
  ): Promise<void> {
    const seen = keys.map((k) => this.stored.get(k));
    await retryConflicts(
      `throttle entries ${keys.join(", ")}`,
      async () => {
        const entries = next(seen.map((s) => s?.entry));
        if (entries === undefined) return;
        const lease = await this.leaseId();
        let r: Awaited<ReturnType<Store["txn"]>>;
        try {
          r = await this.store.txn({
            compare: keys.map((k, i) => compareSeen(THROTTLE_PREFIX + k, seen[i])),
            success: keys.map((k, i) => ({
              op: "put" as const,
              key: THROTTLE_PREFIX + k,
              value: JSON.stringify(entries[i]),
              lease,
            })),
            failure: keys.map((k) => ({ op: "get" as const, key: THROTTLE_PREFIX + k })),
          });
        } catch (err) {
          // The lease ran out (or the store lost it): take a new one and try again.
          if (err instanceof StoreError && err.code === "lease-not-found") {
            this.lease = undefined;
            return LOST_RACE;
          }
          throw err;
        }
        if (!r.succeeded) {
          // The failure branch read the newer entries: the next try compares against those.
          for (let i = 0; i < keys.length; i++) seen[i] = storedOf(r.gets[i]);
          return LOST_RACE;
        }
        keys.forEach((k, i) => {
          const cur = this.stored.get(k);
          if (cur === undefined || cur.rev < r.revision)
            this.stored.set(k, { rev: r.revision, entry: entries[i] as Entry });
        });
      },
      { maxAttempts: ATTEMPTS },
    );
  }

  /**
   * Keys share leases: one per period of a quarter of the key lifetime (1 s to 1 min), with a TTL of the
   * lifetime plus that period, so every key outlives its window and one lease is granted per period, not per
   * failure.
   */
  private async leaseId(): Promise<string> {
    const lifetime = this.throttle.keyLifetimeMs;
    const period = Math.min(60_000, Math.max(1_000, lifetime / 4));
    const current = this.lease;
    if (current !== undefined) {
      try {
        const l = await current;
        if (Date.now() - l.granted < period) return l.id;
      } catch {
        // the grant failed: grant again below
      }
      if (this.lease !== current) return this.leaseId();
    }
    const granting = this.store
      .grant(Math.ceil((lifetime + period) / 1000))
      .then((id) => ({ id, granted: Date.now() }));
    this.lease = granting;
    return (await granting).id;
  }
}
