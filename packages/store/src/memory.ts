/**
 * The memory backend: the same semantics as sqlite and etcd, in one process's
 * memory, for unit tests. Nothing survives `close()`.
 */
import {
  applyTxn,
  checkAfter,
  checkCompactRevision,
  checkLease,
  checkLimit,
  checkTtl,
  checkTxn,
  type LocalState,
} from "./engine.ts";
import { StoreError } from "./errors.ts";
import { checkKey, checkPrefix, checkValue, compareKeys } from "./key.ts";
import type {
  KeyValue,
  RangeOptions,
  Store,
  StoreStatus,
  Txn,
  TxnResult,
  Watch,
  WatchEvent,
  WatchOptions,
} from "./kv.ts";
import { type History, WatchHub } from "./watch-hub.ts";

export interface MemoryOptions {
  /** Revisions of change history kept for watches (default 10,000). */
  historyRevisions?: number;
  /** How often expired leases are swept, ms (default 100). */
  leaseSweepMs?: number;
}

interface Lease {
  ttlMs: number;
  expiresAt: number;
}

export function openMemoryStore(opts: MemoryOptions = {}): Store {
  return new MemoryStore(opts);
}

class MemoryStore implements Store, History {
  readonly backend = "memory" as const;
  private readonly kvs = new Map<string, KeyValue>();
  /** Changes by revision, oldest first, from `compacted` on. */
  private log: { revision: number; events: WatchEvent[] }[] = [];
  private rev = 1;
  private compacted = 0;
  private nextLease = 1;
  private readonly leases = new Map<string, Lease>();
  private readonly hub = new WatchHub(this);
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  private readonly historyRevisions: number;

  constructor(opts: MemoryOptions) {
    this.historyRevisions = opts.historyRevisions ?? 10_000;
    this.sweeper = setInterval(() => this.sweep(), opts.leaseSweepMs ?? 100);
    this.sweeper.unref();
  }

  private readonly state: LocalState = {
    head: () => this.rev,
    read: (key) => this.kvs.get(key),
    keysWithPrefix: (prefix) => [...this.kvs.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys),
    leaseExists: (lease) => this.leases.has(lease),
    write: (kv) => void this.kvs.set(kv.key, kv),
    remove: (key) => void this.kvs.delete(key),
    commit: (revision, events) => {
      this.rev = revision;
      this.log.push({ revision, events });
      if (revision - this.compacted > this.historyRevisions * 1.1) this.compactSync(revision - this.historyRevisions);
      this.hub.schedule();
    },
  };

  // History, for the watch hub.
  head(): number {
    return this.rev;
  }
  compactedBefore(): number {
    return this.compacted;
  }
  events(prefix: string, from: number, to: number): WatchEvent[] {
    const out: WatchEvent[] = [];
    for (const entry of this.log) {
      if (entry.revision <= from) continue;
      if (entry.revision > to) break;
      for (const e of entry.events) if (e.kv.key.startsWith(prefix)) out.push(copyEvent(e));
    }
    return out;
  }

  private open(): void {
    if (this.closed) throw new StoreError("closed", "the memory store is closed");
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.open();
    const kv = this.kvs.get(checkKey(key));
    return kv && { ...kv };
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<KeyValue[]> {
    this.open();
    checkPrefix(prefix);
    const limit = checkLimit(opts.limit);
    const after = checkAfter(opts.after);
    let keys = this.state.keysWithPrefix(prefix);
    if (after !== undefined) keys = keys.filter((k) => compareKeys(k, after) > 0);
    if (limit) keys = keys.slice(0, limit);
    return keys.map((k) => ({ ...this.kvs.get(k)! }));
  }

  private run(t: Txn): TxnResult {
    this.open();
    checkTxn(t);
    return applyTxn(this.state, t);
  }

  async put(key: string, value: string, opts: { lease?: string } = {}): Promise<number> {
    checkKey(key);
    checkValue(value, key);
    const op =
      opts.lease === undefined
        ? { op: "put" as const, key, value }
        : { op: "put" as const, key, value, lease: opts.lease };
    return this.run({ compare: [], success: [op] }).revision;
  }

  async delete(key: string): Promise<boolean> {
    const before = this.rev;
    return this.run({ compare: [], success: [{ op: "delete", key }] }).revision !== before;
  }

  async deletePrefix(prefix: string): Promise<number> {
    this.open();
    const n = this.state.keysWithPrefix(checkPrefix(prefix)).length;
    this.run({ compare: [], success: [{ op: "deletePrefix", prefix }] });
    return n;
  }

  async txn(t: Txn): Promise<TxnResult> {
    const r = this.run(t);
    return { ...r, gets: r.gets.map((kv) => kv && { ...kv }) };
  }

  async watch(
    prefix: string,
    fromRevision: number,
    onEvent: (e: WatchEvent) => void,
    opts?: WatchOptions,
  ): Promise<Watch> {
    this.open();
    return this.hub.add(prefix, fromRevision, onEvent, opts);
  }

  async grant(ttlSeconds: number): Promise<string> {
    this.open();
    const ttlMs = checkTtl(ttlSeconds) * 1000;
    const id = String(this.nextLease++);
    this.leases.set(id, { ttlMs, expiresAt: Date.now() + ttlMs });
    return id;
  }

  async keepAlive(lease: string): Promise<void> {
    this.open();
    this.sweep();
    const l = this.leases.get(checkLease(lease));
    if (!l) throw new StoreError("lease-not-found", `lease ${lease} expired or does not exist`);
    l.expiresAt = Date.now() + l.ttlMs;
  }

  async revoke(lease: string): Promise<void> {
    this.open();
    if (!this.leases.has(checkLease(lease)))
      throw new StoreError("lease-not-found", `lease ${lease} expired or does not exist`);
    this.expire(lease);
  }

  private expire(lease: string): void {
    this.leases.delete(lease);
    const keys = [...this.kvs.values()]
      .filter((kv) => kv.lease === lease)
      .map((kv) => kv.key)
      .sort(compareKeys);
    applyTxn(this.state, { compare: [], success: keys.map((key) => ({ op: "delete", key })) });
  }

  private sweep(): void {
    if (this.closed) return;
    const now = Date.now();
    for (const [id, l] of this.leases) if (l.expiresAt <= now) this.expire(id);
  }

  async revision(): Promise<number> {
    this.open();
    return this.rev;
  }

  async status(): Promise<StoreStatus> {
    return { backend: "memory", revision: await this.revision() };
  }

  async compact(revision: number): Promise<void> {
    this.open();
    checkCompactRevision(revision, this.rev);
    this.compactSync(revision);
  }

  private compactSync(revision: number): void {
    if (revision <= this.compacted) return;
    this.compacted = revision;
    this.log = this.log.filter((e) => e.revision >= revision);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    this.hub.closeAll();
  }
}

function copyEvent(e: WatchEvent): WatchEvent {
  return { type: e.type, revision: e.revision, kv: { ...e.kv } };
}
