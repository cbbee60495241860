/**
 * Transaction semantics shared by the local backends (memory, sqlite), written once
 * so they cannot drift apart: etcd's rules for compares on missing keys, one new
 * revision per transaction that changes something, ops applied in order (a `get`
 * sees the branch's earlier writes), and no key written twice in one branch.
 */
import { StoreError } from "./errors.ts";
import { checkKey, checkPrefix, checkValue } from "./key.ts";
import type { Compare, KeyValue, Op, Txn, TxnResult, WatchEvent } from "./kv.ts";

/** The synchronous view of a backend's state inside one of its transactions. */
export interface LocalState {
  head(): number;
  read(key: string): KeyValue | undefined;
  /** Keys starting with `prefix`, in key order. */
  keysWithPrefix(prefix: string): string[];
  leaseExists(lease: string): boolean;
  write(kv: KeyValue): void;
  remove(key: string): void;
  /** Records the new head revision and the events of the change. */
  commit(revision: number, events: WatchEvent[]): void;
}

export function checkLease(lease: unknown): string {
  if (typeof lease !== "string" || !/^[1-9][0-9]{0,18}$/.test(lease)) {
    throw new StoreError("invalid", `lease must be a lease id returned by grant(), got ${JSON.stringify(lease)}`);
  }
  return lease;
}

export function checkTtl(ttlSeconds: unknown): number {
  if (typeof ttlSeconds !== "number" || !Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 9e9) {
    throw new StoreError("invalid", `lease TTL must be a whole number of seconds >= 1, got ${String(ttlSeconds)}`);
  }
  return ttlSeconds;
}

export function checkAfter(after: unknown): string | undefined {
  if (after === undefined) return undefined;
  if (typeof after !== "string") throw new StoreError("invalid", `range after must be a key, got ${typeof after}`);
  return after;
}

export function checkLimit(limit: unknown): number | undefined {
  if (limit === undefined) return undefined;
  if (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 0) {
    throw new StoreError("invalid", `range limit must be an integer >= 0 (0 = no limit), got ${String(limit)}`);
  }
  return limit === 0 ? undefined : limit;
}

export function checkCompactRevision(revision: unknown, head: number): number {
  if (typeof revision !== "number" || !Number.isSafeInteger(revision) || revision < 1 || revision > head) {
    throw new StoreError(
      "invalid",
      `compact revision must be an integer between 1 and the current revision ${head}, got ${String(revision)}`,
    );
  }
  return revision;
}

/** etcd's default `--max-txn-ops`, enforced by every backend so code tested on one runs on all. */
export const MAX_TXN_OPS = 128;

const numberOps = new Set(["==", "!=", "<", ">"]);

function checkCompare(c: Compare): void {
  if (typeof c !== "object" || c === null) throw new StoreError("invalid", "compare must be an object");
  checkKey(c.key, "compare key");
  switch (c.target) {
    case "value":
      if (c.op !== "==" && c.op !== "!=")
        throw new StoreError("invalid", `value compare op must be == or !=, got ${String(c.op)}`);
      checkValue(c.value, c.key);
      return;
    case "modRevision":
    case "createRevision":
    case "version":
      if (!numberOps.has(c.op))
        throw new StoreError("invalid", `${c.target} compare op must be one of == != < >, got ${String(c.op)}`);
      if (!Number.isSafeInteger(c.value))
        throw new StoreError("invalid", `${c.target} compare value must be an integer, got ${String(c.value)}`);
      return;
    case "absent":
    case "present":
      return;
    default:
      throw new StoreError(
        "invalid",
        `compare target must be value, modRevision, createRevision, version, absent or present, got ${String((c as { target: unknown }).target)}`,
      );
  }
}

/** An op's key checked; the op is named (`txn branch[i]`) only in the error. */
function opKey(key: unknown, branch: string, i: number): void {
  try {
    checkKey(key);
  } catch {
    checkKey(key, `${where(branch, i)}.key`);
  }
}

const where = (branch: string, i: number) => `txn ${branch}[${i}]`;

/**
 * Checks one branch as etcd does: every op well-formed, no key put twice, and no put
 * to a key the same branch deletes (etcd: "duplicate key given in txn request").
 */
function checkBranch(ops: Op[], branch: string): void {
  if (!Array.isArray(ops)) throw new StoreError("invalid", `txn ${branch} must be an array of ops`);
  if (ops.length > MAX_TXN_OPS) {
    throw new StoreError(
      "invalid",
      `txn ${branch} has ${ops.length} ops; at most ${MAX_TXN_OPS} per branch (etcd's default --max-txn-ops): split it`,
    );
  }
  const puts = new Set<string>();
  const deletes: string[] = [];
  const prefixes: string[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    // Named only when something is wrong (a transaction of a hundred ops is checked on every call), and
    // with no closure made per op: each is a property definition under tsx, a tenth of this check's time.
    if (typeof op !== "object" || op === null)
      throw new StoreError("invalid", `${where(branch, i)} must be an op object`);
    switch (op.op) {
      case "put":
        opKey(op.key, branch, i);
        checkValue(op.value, op.key);
        if (op.lease !== undefined) checkLease(op.lease);
        if (puts.has(op.key))
          throw new StoreError(
            "invalid",
            `${where(branch, i)}: key ${JSON.stringify(op.key)} is put twice in one transaction`,
          );
        puts.add(op.key);
        break;
      case "delete":
        opKey(op.key, branch, i);
        deletes.push(op.key);
        break;
      case "deletePrefix":
        checkPrefix(op.prefix);
        prefixes.push(op.prefix);
        break;
      case "get":
        opKey(op.key, branch, i);
        break;
      default:
        throw new StoreError(
          "invalid",
          `${where(branch, i)}.op must be put, delete, deletePrefix or get, got ${String((op as { op: unknown }).op)}`,
        );
    }
  }
  for (const key of puts) {
    if (deletes.includes(key) || prefixes.some((p) => key.startsWith(p))) {
      throw new StoreError(
        "invalid",
        `txn ${branch}: key ${JSON.stringify(key)} is both put and deleted in one transaction`,
      );
    }
  }
}

export function checkTxn(t: Txn): void {
  if (typeof t !== "object" || t === null) throw new StoreError("invalid", "txn must be an object");
  if (!Array.isArray(t.compare)) throw new StoreError("invalid", "txn.compare must be an array");
  for (const c of t.compare) checkCompare(c);
  checkBranch(t.success, "success");
  if (t.failure !== undefined) checkBranch(t.failure, "failure");
}

function holds(c: Compare, kv: KeyValue | undefined): boolean {
  switch (c.target) {
    case "absent":
      return kv === undefined;
    case "present":
      return kv !== undefined;
    case "value":
      // As in etcd: a value compare on a missing key is false whatever the op.
      if (kv === undefined) return false;
      return c.op === "==" ? kv.value === c.value : kv.value !== c.value;
    default: {
      const actual = kv === undefined ? 0 : kv[c.target];
      switch (c.op) {
        case "==":
          return actual === c.value;
        case "!=":
          return actual !== c.value;
        case "<":
          return actual < c.value;
        case ">":
          return actual > c.value;
      }
    }
  }
}

/** Runs a checked transaction against the state; the caller provides atomicity. */
export function applyTxn(state: LocalState, t: Txn): TxnResult {
  const succeeded = t.compare.every((c) => holds(c, state.read(c.key)));
  const ops = succeeded ? t.success : (t.failure ?? []);
  for (const op of ops) {
    if (op.op === "put" && op.lease !== undefined && !state.leaseExists(op.lease)) {
      throw new StoreError(
        "lease-not-found",
        `lease ${op.lease} (for key ${JSON.stringify(op.key)}) expired or does not exist`,
      );
    }
  }
  const head = state.head();
  const rev = head + 1;
  const events: WatchEvent[] = [];
  const gets: (KeyValue | undefined)[] = [];
  const remove = (key: string) => {
    state.remove(key);
    events.push({
      type: "delete",
      revision: rev,
      kv: { key, value: "", createRevision: 0, modRevision: rev, version: 0 },
    });
  };
  for (const op of ops) {
    switch (op.op) {
      case "put": {
        const prev = state.read(op.key);
        const kv: KeyValue = {
          key: op.key,
          value: op.value,
          createRevision: prev ? prev.createRevision : rev,
          modRevision: rev,
          version: prev ? prev.version + 1 : 1,
        };
        if (op.lease !== undefined) kv.lease = op.lease;
        state.write(kv);
        events.push({ type: "put", revision: rev, kv });
        break;
      }
      case "delete":
        if (state.read(op.key)) remove(op.key);
        break;
      case "deletePrefix":
        for (const key of state.keysWithPrefix(op.prefix)) remove(key);
        break;
      case "get":
        gets.push(state.read(op.key));
        break;
    }
  }
  if (events.length > 0) state.commit(rev, events);
  return { succeeded, revision: events.length > 0 ? rev : head, gets };
}
