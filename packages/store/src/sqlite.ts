/**
 * The sqlite backend, the embedded default: one SQLite file (WAL) in a data
 * directory. The current keys live in `kv`; every change is also appended to
 * `events` under the store's single revision counter, which is what watches read
 * (from any past revision still kept) and what lets several processes share one
 * file: each write is one IMMEDIATE transaction, so writers serialize on SQLite's
 * lock, and watchers poll `events` by revision to see other processes' writes.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
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
import { checkKey, checkPrefix, checkValue, prefixEnd } from "./key.ts";
import type {
  KeyValue,
  Op,
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

export interface SqliteOptions {
  /** Data directory; the database is `<dir>/store.db` (created, mode 0700). */
  dir: string;
  /**
   * "normal" (default): a committed write survives the process being killed; after an
   * OS crash or power loss the last few may be lost, never half-applied. "full": every
   * commit is fsynced, so it survives power loss too, at a cost per write.
   */
  sync?: "normal" | "full";
  /** How often watches look for other processes' writes, ms (default 50). */
  pollMs?: number;
  /** How often expired leases are swept, ms (default 250). */
  leaseSweepMs?: number;
  /** Revisions of change history kept for watches (default 10,000). */
  historyRevisions?: number;
  /** How long a write waits for another process's transaction, ms (default 10,000). */
  busyTimeoutMs?: number;
}

interface KvRow {
  key: Buffer;
  value: string | null;
  create_rev: number;
  mod_rev: number;
  version: number;
  lease: string | null;
}

interface EventRow extends KvRow {
  rev: number;
  type: number;
}

// Few B-trees per write: kv and meta are WITHOUT ROWID (keyed by their primary key
// alone), and an event's id is its revision and position in one integer.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 1), ('compacted', 0);
CREATE TABLE IF NOT EXISTS kv (
  key BLOB PRIMARY KEY, value TEXT NOT NULL,
  create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_lease ON kv (lease) WHERE lease IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY, type INTEGER NOT NULL, key BLOB NOT NULL, value TEXT,
  create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease TEXT
);
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY AUTOINCREMENT, ttl_ms INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS leases_expiry ON leases (expires_at);
`;

/** Event id = revision × 2^20 + position in the revision's changes. */
const SEQ = 2 ** 20;

const PUT = 0;
const DELETE = 1;

function toKv(row: KvRow): KeyValue {
  const kv: KeyValue = {
    key: row.key.toString("utf8"),
    value: row.value ?? "",
    createRevision: row.create_rev,
    modRevision: row.mod_rev,
    version: row.version,
  };
  if (row.lease !== null) kv.lease = row.lease;
  return kv;
}

const utf8 = (s: string) => Buffer.from(s, "utf8");

export function openSqliteStore(opts: SqliteOptions): Store {
  if (typeof opts?.dir !== "string" || opts.dir === "") {
    throw new StoreError("invalid", "sqlite store: `dir` must name a data directory");
  }
  return new SqliteStore(opts);
}

class SqliteStore implements Store, History {
  readonly backend = "sqlite" as const;
  private readonly db: Database.Database;
  private readonly hub = new WatchHub(this);
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  private readonly historyRevisions: number;
  private readonly q;
  /** One transaction wrapper for all writes (better-sqlite3 builds one per `transaction()` call). */
  private readonly inTransaction;

  constructor(opts: SqliteOptions) {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    const file = join(opts.dir, "store.db");
    try {
      this.db = new Database(file, { timeout: opts.busyTimeoutMs ?? 10_000 });
      // Pages freed by deletes go back to the file system (sweep runs incremental_vacuum). Only
      // takes effect on a new database file: an existing one keeps its mode.
      this.db.pragma("auto_vacuum = INCREMENTAL");
      this.db.pragma("journal_mode = WAL");
      this.db.pragma(`synchronous = ${opts.sync === "full" ? "FULL" : "NORMAL"}`);
      this.db.transaction(() => this.db.exec(SCHEMA)).immediate();
    } catch (err) {
      throw new StoreError("unavailable", `sqlite store: cannot open ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.historyRevisions = opts.historyRevisions ?? 10_000;
    this.inTransaction = this.db.transaction((fn: () => unknown) => fn());
    const db = this.db;
    const cols = "key, value, create_rev, mod_rev, version, lease";
    this.q = {
      meta: db.prepare<[string], { value: number }>("SELECT value FROM meta WHERE name = ?"),
      setMeta: db.prepare<[number, string]>("UPDATE meta SET value = ? WHERE name = ?"),
      get: db.prepare<[Buffer], KvRow>(`SELECT ${cols} FROM kv WHERE key = ?`),
      rangeFrom: db.prepare<[Buffer, number], KvRow>(`SELECT ${cols} FROM kv WHERE key >= ? ORDER BY key LIMIT ?`),
      rangeFromTo: db.prepare<[Buffer, Buffer, number], KvRow>(
        `SELECT ${cols} FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?`,
      ),
      keysFrom: db.prepare<[Buffer], { key: Buffer }>("SELECT key FROM kv WHERE key >= ? ORDER BY key"),
      keysFromTo: db.prepare<[Buffer, Buffer], { key: Buffer }>(
        "SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key",
      ),
      upsert: db.prepare<[Buffer, string, number, number, number, string | null]>(
        `INSERT OR REPLACE INTO kv (${cols}) VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      remove: db.prepare<[Buffer]>("DELETE FROM kv WHERE key = ?"),
      event: db.prepare<[number, number, Buffer, string | null, number, number, number, string | null]>(
        `INSERT INTO events (id, type, ${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      eventsFrom: db.prepare<[number, number, Buffer], EventRow>(
        `SELECT mod_rev AS rev, type, ${cols} FROM events WHERE id >= ? AND id < ? AND key >= ? ORDER BY id`,
      ),
      eventsFromTo: db.prepare<[number, number, Buffer, Buffer], EventRow>(
        `SELECT mod_rev AS rev, type, ${cols} FROM events WHERE id >= ? AND id < ? AND key >= ? AND key < ? ORDER BY id`,
      ),
      compactEvents: db.prepare<[number]>("DELETE FROM events WHERE id < ?"),
      lease: db.prepare<[bigint], { ttl_ms: number; expires_at: number }>(
        "SELECT ttl_ms, expires_at FROM leases WHERE id = ?",
      ),
      grant: db.prepare<[number, number]>("INSERT INTO leases (ttl_ms, expires_at) VALUES (?, ?)"),
      renew: db.prepare<[number, bigint]>("UPDATE leases SET expires_at = ? WHERE id = ?"),
      dropLease: db.prepare<[bigint]>("DELETE FROM leases WHERE id = ?"),
      expired: db.prepare<[number], { id: number }>("SELECT id FROM leases WHERE expires_at <= ? ORDER BY id"),
      leaseKeys: db.prepare<[string], { key: Buffer }>("SELECT key FROM kv WHERE lease = ? ORDER BY key"),
    };
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(() => {
        try {
          fn();
        } catch (err) {
          // Another process holding the lock past the busy timeout: try again next tick.
          if (!this.closed) process.emitWarning(`sqlite store: ${(err as Error).message}`);
        }
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(opts.pollMs ?? 50, () => this.hub.pump());
    every(opts.leaseSweepMs ?? 250, () => this.sweep());
  }

  private readonly state: LocalState = {
    head: () => this.head(),
    read: (key) => {
      const row = this.q.get.get(utf8(key));
      return row && toKv(row);
    },
    keysWithPrefix: (prefix) => {
      const start = utf8(prefix);
      const end = prefixEnd(start);
      const rows = end ? this.q.keysFromTo.all(start, end) : this.q.keysFrom.all(start);
      return rows.map((r) => r.key.toString("utf8"));
    },
    leaseExists: (lease) => this.q.lease.get(BigInt(lease)) !== undefined,
    write: (kv) => {
      this.q.upsert.run(utf8(kv.key), kv.value, kv.createRevision, kv.modRevision, kv.version, kv.lease ?? null);
    },
    remove: (key) => {
      this.q.remove.run(utf8(key));
    },
    commit: (revision, events) => {
      this.q.setMeta.run(revision, "revision");
      if (events.length >= SEQ) throw new StoreError("invalid", `one change may touch at most ${SEQ - 1} keys`);
      events.forEach((e, seq) => {
        const { kv } = e;
        const put = e.type === "put";
        this.q.event.run(
          revision * SEQ + seq,
          put ? PUT : DELETE,
          utf8(kv.key),
          put ? kv.value : null,
          kv.createRevision,
          kv.modRevision,
          kv.version,
          kv.lease ?? null,
        );
      });
      this.hub.schedule();
    },
  };

  // History, for the watch hub.
  head(): number {
    return this.q.meta.get("revision")!.value;
  }
  compactedBefore(): number {
    return this.q.meta.get("compacted")!.value;
  }
  events(prefix: string, from: number, to: number): WatchEvent[] {
    const start = utf8(prefix);
    const end = prefixEnd(start);
    const [lo, hi] = [(from + 1) * SEQ, (to + 1) * SEQ];
    const rows = end ? this.q.eventsFromTo.all(lo, hi, start, end) : this.q.eventsFrom.all(lo, hi, start);
    return rows.map((row) => ({ type: row.type === PUT ? "put" : "delete", revision: row.rev, kv: toKv(row) }));
  }

  private open(): void {
    if (this.closed) throw new StoreError("closed", "the sqlite store is closed");
  }

  /** Runs `fn` in one IMMEDIATE transaction: it holds the write lock from the start. */
  private write<R>(fn: () => R): R {
    this.open();
    try {
      return this.inTransaction.immediate(fn) as R;
    } catch (err) {
      if (err instanceof StoreError) throw err;
      const code = (err as { code?: string }).code;
      if (code === "SQLITE_BUSY")
        throw new StoreError("unavailable", `sqlite store is locked by another process: ${(err as Error).message}`, {
          cause: err,
        });
      throw err;
    }
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.open();
    return this.state.read(checkKey(key));
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<KeyValue[]> {
    this.open();
    const start = utf8(checkPrefix(prefix));
    const end = prefixEnd(start);
    const limit = checkLimit(opts.limit) ?? -1;
    const after = checkAfter(opts.after);
    let from = start;
    if (after !== undefined) {
      const next = Buffer.concat([utf8(after), Buffer.from([0])]);
      if (Buffer.compare(next, from) > 0) from = next;
    }
    const rows = end ? this.q.rangeFromTo.all(from, end, limit) : this.q.rangeFrom.all(from, limit);
    return rows.map(toKv);
  }

  private run(t: Txn): TxnResult {
    checkTxn(t);
    return this.write(() => applyTxn(this.state, t));
  }

  async put(key: string, value: string, opts: { lease?: string } = {}): Promise<number> {
    checkKey(key);
    checkValue(value, key);
    const op: Op = opts.lease === undefined ? { op: "put", key, value } : { op: "put", key, value, lease: opts.lease };
    return this.run({ compare: [], success: [op] }).revision;
  }

  async delete(key: string): Promise<boolean> {
    const t: Txn = { compare: [], success: [{ op: "delete", key }] };
    checkTxn(t);
    return this.write(() => {
      const before = this.head();
      return applyTxn(this.state, t).revision !== before;
    });
  }

  async deletePrefix(prefix: string): Promise<number> {
    const t: Txn = { compare: [], success: [{ op: "deletePrefix", prefix }] };
    checkTxn(t);
    return this.write(() => {
      const n = this.state.keysWithPrefix(prefix).length;
      applyTxn(this.state, t);
      return n;
    });
  }

  async txn(t: Txn): Promise<TxnResult> {
    return this.run(t);
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
    const ttlMs = checkTtl(ttlSeconds) * 1000;
    return this.write(() => String(this.q.grant.run(ttlMs, Date.now() + ttlMs).lastInsertRowid));
  }

  async keepAlive(lease: string): Promise<void> {
    const id = BigInt(checkLease(lease));
    const alive = this.write(() => {
      const l = this.q.lease.get(id);
      if (l && l.expires_at > Date.now()) {
        this.q.renew.run(Date.now() + l.ttl_ms, id);
        return true;
      }
      if (l) this.expire(lease);
      return false;
    });
    if (!alive) throw new StoreError("lease-not-found", `lease ${lease} expired or does not exist`);
  }

  async revoke(lease: string): Promise<void> {
    const id = BigInt(checkLease(lease));
    this.write(() => {
      if (!this.q.lease.get(id)) throw new StoreError("lease-not-found", `lease ${lease} expired or does not exist`);
      this.expire(lease);
    });
  }

  /** Deletes the lease and its keys, all at one revision. Inside a write transaction. */
  private expire(lease: string): void {
    const keys = this.q.leaseKeys.all(lease).map((r) => r.key.toString("utf8"));
    applyTxn(this.state, { compare: [], success: keys.map((key) => ({ op: "delete", key })) });
    this.q.dropLease.run(BigInt(lease));
  }

  private sweep(): void {
    if (this.closed) return;
    // A read first, so idle processes sharing the file do not take the write lock.
    if (this.q.expired.all(Date.now()).length > 0) {
      this.write(() => {
        for (const { id } of this.q.expired.all(Date.now())) this.expire(String(id));
      });
    }
    const head = this.head();
    if (head - this.compactedBefore() > this.historyRevisions * 1.1) {
      this.write(() => this.compactTo(head - this.historyRevisions));
    }
    this.reclaim();
  }

  /** Returns free pages (deleted experiments, compacted history) to the file system, a bounded number per sweep. */
  private reclaim(): void {
    const free = this.db.pragma("freelist_count", { simple: true }) as number;
    if (free > 256) this.db.pragma("incremental_vacuum(4096)");
  }

  async revision(): Promise<number> {
    this.open();
    return this.head();
  }

  async status(): Promise<StoreStatus> {
    const file = this.db.name;
    const size = (f: string) => (existsSync(f) ? statSync(f).size : 0);
    return { backend: "sqlite", revision: await this.revision(), file, bytes: size(file) + size(`${file}-wal`) };
  }

  async compact(revision: number): Promise<void> {
    this.open();
    checkCompactRevision(revision, this.head());
    this.write(() => this.compactTo(revision));
  }

  private compactTo(revision: number): void {
    if (revision <= this.compactedBefore()) return;
    this.q.compactEvents.run(revision * SEQ);
    this.q.setMeta.run(revision, "compacted");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.hub.closeAll();
    this.db.close();
  }
}
