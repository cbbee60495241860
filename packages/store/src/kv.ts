/**
 * The one key-value interface every stateful part of Merge is written against,
 * with etcd's guarantees: a single global revision counter that increases with
 * every write; compare-and-swap transactions that apply atomically; watches that
 * deliver every change after a given revision, in order; leases whose keys vanish
 * when they expire. Backends: memory (tests), sqlite (embedded default), etcd.
 * The precise contract is in this package's README.md.
 */
export interface KeyValue {
  key: string;
  value: string;
  /** Revision of the write that created the key (since its last deletion). */
  createRevision: number;
  /** Revision of the last write to the key. */
  modRevision: number;
  /** Number of writes since creation, 1 on create. */
  version: number;
  /** Lease the key is attached to, if any. */
  lease?: string;
}

export type Compare =
  | { key: string; target: "value"; op: "==" | "!="; value: string }
  | { key: string; target: "modRevision" | "createRevision" | "version"; op: "==" | "!=" | "<" | ">"; value: number }
  /** The key does not exist (shorthand for createRevision == 0). */
  | { key: string; target: "absent" }
  | { key: string; target: "present" };

export type Op =
  | { op: "put"; key: string; value: string; lease?: string }
  | { op: "delete"; key: string }
  | { op: "deletePrefix"; prefix: string }
  | { op: "get"; key: string };

export interface Txn {
  compare: Compare[];
  success: Op[];
  failure?: Op[];
}

export interface TxnResult {
  succeeded: boolean;
  /** Store revision after the transaction. */
  revision: number;
  /** Results of `get` ops in the branch that ran, in order (undefined when absent). */
  gets: (KeyValue | undefined)[];
}

export interface RangeOptions {
  /** At most this many keys, in key order. */
  limit?: number;
  /** Start after this key (for paging). */
  after?: string;
}

export interface WatchEvent {
  type: "put" | "delete";
  /**
   * The key after the change. For a delete: `value` "", `createRevision` 0,
   * `version` 0 and `modRevision` the revision of the delete (as etcd reports it).
   */
  kv: KeyValue;
  /** Revision of the change. */
  revision: number;
}

export interface Watch {
  cancel(): Promise<void>;
}

export interface WatchOptions {
  /**
   * Called if the watch ends by itself: its history was compacted before it could be
   * delivered (a `StoreError` with code "compacted"), the backend failed, or `onEvent`
   * threw. No events follow an error; the caller re-reads and watches again.
   */
  onError?: (err: Error) => void;
}

export interface Store {
  readonly backend: "memory" | "sqlite" | "etcd";
  get(key: string): Promise<KeyValue | undefined>;
  /** Keys with this prefix, in key order (UTF-8 byte order). */
  range(prefix: string, opts?: RangeOptions): Promise<KeyValue[]>;
  /** Returns the revision of the write. */
  put(key: string, value: string, opts?: { lease?: string }): Promise<number>;
  /** Returns whether the key existed. */
  delete(key: string): Promise<boolean>;
  /** Returns the number of keys deleted. */
  deletePrefix(prefix: string): Promise<number>;
  txn(t: Txn): Promise<TxnResult>;
  /**
   * Calls `onEvent` for every change under `prefix` after `fromRevision` (exclusive;
   * 0 = from now), in revision order, until cancelled. Rejects with a `StoreError`
   * "compacted" when that history is no longer kept.
   */
  watch(prefix: string, fromRevision: number, onEvent: (e: WatchEvent) => void, opts?: WatchOptions): Promise<Watch>;
  /** A lease that expires `ttlSeconds` after its last keep-alive. */
  grant(ttlSeconds: number): Promise<string>;
  /** Rejects with a `StoreError` "lease-not-found" when the lease expired or was revoked. */
  keepAlive(lease: string): Promise<void>;
  /** Revoking deletes every key attached to the lease. */
  revoke(lease: string): Promise<void>;
  /** Current store revision. */
  revision(): Promise<number>;
  /** What the operations view shows of the store: its size, and for etcd its members and leader. */
  status(): Promise<StoreStatus>;
  /**
   * Discards the change history before `revision` (watches can then start no earlier
   * than `revision - 1`). Current keys are untouched.
   */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}

/** The store as the health view shows it. */
export interface StoreStatus {
  backend: "memory" | "sqlite" | "etcd";
  revision: number;
  /** sqlite: the database file, and its size with the write-ahead log. */
  file?: string;
  bytes?: number;
  /** etcd: every member, whether it answered, and its database size. */
  members?: EtcdMemberStatus[];
  /** etcd: the leader's member name (or id), as the members report it; undefined without a quorum. */
  leader?: string;
}

export interface EtcdMemberStatus {
  id: string;
  name: string;
  clientUrls: string[];
  leader: boolean;
  reachable: boolean;
  dbBytes?: number;
  version?: string;
  error?: string;
}
