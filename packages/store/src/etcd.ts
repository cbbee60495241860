/**
 * The etcd backend: our KV contract mapped one to one onto etcd v3 (the store
 * MergeTB itself runs on), through `etcd3`'s raw gRPC clients so that revisions,
 * compares, transactions and lease ids are etcd's own. Values are UTF-8 strings.
 */
import {
  type CallContext,
  CompareResult,
  CompareTarget,
  Etcd3,
  type ICompare,
  type IRequestOp,
  type IWatchResponse,
} from "etcd3";
import { checkAfter, checkCompactRevision, checkLease, checkLimit, checkTtl, checkTxn } from "./engine.ts";
import { StoreError } from "./errors.ts";
import { type LeanWatchResponse, leanTransformer, storeKv } from "./etcd-wire.ts";
import { checkKey, checkPrefix, checkValue, prefixEnd } from "./key.ts";
import type {
  Compare,
  EtcdMemberStatus,
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
import { checkFromRevision, compactedError } from "./watch-hub.ts";

export interface EtcdOptions {
  /** Client URLs, e.g. ["http://127.0.0.1:2379"]; a missing scheme means http. */
  endpoints: string[];
  /** How long to wait for a connection, ms (default 5,000). */
  dialTimeoutMs?: number;
  /**
   * The server's --max-request-bytes (default etcd's 1.5 MiB). Bigger requests
   * are refused here as `invalid`: etcd would refuse them too, and above 2 MiB
   * its gRPC layer does so in a way the client takes for a failed connection
   * (its circuit breaker then refuses every call for a while).
   */
  maxRequestBytes?: number;
  /**
   * Longest a single call may take before it fails as `unavailable`, ms (default
   * 30,000). Without a deadline a call to a member that stopped answering (killed
   * mid-call, stalled, cut off) could wait forever; streams (watches, lease
   * keep-alives) are bounded on their own.
   */
  callTimeoutMs?: number;
  /**
   * Deadline of a write (put, delete, transaction) of a few kilobytes per try,
   * ms; bigger writes get 20 ms more per kilobyte, up to `callTimeoutMs` (the
   * default: no shorter deadline). A write sent to a follower while the leader
   * dies waits for etcd's own request timeout (5 s plus two election timeouts)
   * before it fails; cut short, the client asks again of another member (three
   * tries in all), so a leader's death stalls writers about an election. Only
   * for callers that tell a write retried after it committed (rex: its
   * compares, then a read-back): a compare-and-swap loop that applies its
   * change again after losing to itself (updateJSON) would apply it twice, and
   * a short deadline makes such retries likelier on a loaded machine.
   * `etcd://…?write_timeout_ms=2500` in a store URL.
   */
  writeTimeoutMs?: number;
}

const ETCD_MAX_REQUEST_BYTES = 1.5 * 2 ** 20;
/** Extra deadline per byte of a write (see EtcdOptions.writeTimeoutMs), ms. */
const WRITE_MS_PER_BYTE = 0.02;
/** Of a range or get, the deadline at most (a read during an election waits for a leader too). */
const READ_TIMEOUT_MS = 10_000;
/** How long one lease keep-alive may wait for its answer before it is asked of another member, ms. */
const KEEPALIVE_TRY_MS = 2_000;
/** Per-operation framing in a request (field tags, lengths, lease), generously. */
const OP_OVERHEAD = 32;

const utf8 = (s: string) => Buffer.from(s, "utf8");
const ZERO = Buffer.from([0]);

/** etcd's [key, range_end) for a prefix; the empty prefix is every key ("\0" onwards). */
function prefixRange(prefix: string): { key: Buffer; range_end: Buffer } {
  const key = utf8(prefix);
  if (key.length === 0) return { key: ZERO, range_end: ZERO };
  return { key, range_end: prefixEnd(key) ?? ZERO };
}

const resultOf = {
  "==": CompareResult.Equal,
  "!=": CompareResult.NotEqual,
  "<": CompareResult.Less,
  ">": CompareResult.Greater,
} as const;

function toCompare(c: Compare): ICompare {
  const key = utf8(c.key);
  switch (c.target) {
    case "absent":
      return { key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 };
    case "present":
      return { key, target: CompareTarget.Create, result: CompareResult.Greater, create_revision: 0 };
    case "value":
      return { key, target: CompareTarget.Value, result: resultOf[c.op], value: utf8(c.value) };
    case "version":
      return { key, target: CompareTarget.Version, result: resultOf[c.op], version: c.value };
    case "createRevision":
      return { key, target: CompareTarget.Create, result: resultOf[c.op], create_revision: c.value };
    case "modRevision":
      return { key, target: CompareTarget.Mod, result: resultOf[c.op], mod_revision: c.value };
  }
}

function toRequest(op: Op): IRequestOp {
  switch (op.op) {
    case "put":
      return { request_put: { key: utf8(op.key), value: utf8(op.value), lease: op.lease ?? 0 } };
    case "delete":
      return { request_delete_range: { key: utf8(op.key) } };
    case "deletePrefix":
      return { request_delete_range: prefixRange(op.prefix) };
    case "get":
      return { request_range: { key: utf8(op.key) } };
  }
}

/** etcd's errors as ours, so callers branch on one set of codes whatever the backend. */
function storeError(err: unknown, context: string): Error {
  if (err instanceof StoreError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const is = (s: string) => message.includes(s);
  if (is("requested lease not found"))
    return new StoreError("lease-not-found", `${context}: lease expired or does not exist`, { cause: err });
  if (is("required revision has been compacted"))
    return new StoreError("compacted", `${context}: ${message}`, { cause: err });
  if (is("duplicate key given in txn request"))
    return new StoreError("invalid", `${context}: a key is written twice in one transaction`, { cause: err });
  // etcd refuses above --max-request-bytes; its gRPC server already above 2 MiB (RESOURCE_EXHAUSTED).
  if (is("request is too large") || is("too many operations") || is("received message larger than max"))
    return new StoreError("invalid", `${context}: ${message}`, { cause: err });
  if (err instanceof Error && /GRPC|Unavailable|ECONNREFUSED|connect|deadline/i.test(`${err.name} ${message}`)) {
    return new StoreError("unavailable", `${context}: etcd unavailable: ${message}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(message);
}

export function openEtcdStore(opts: EtcdOptions): Store {
  if (
    !Array.isArray(opts?.endpoints) ||
    opts.endpoints.length === 0 ||
    opts.endpoints.some((e) => typeof e !== "string" || e === "")
  ) {
    throw new StoreError(
      "invalid",
      "etcd store: `endpoints` must list at least one client URL, e.g. http://127.0.0.1:2379",
    );
  }
  return new EtcdStore(opts);
}

class EtcdStore implements Store {
  readonly backend = "etcd" as const;
  private readonly client: Etcd3;
  private readonly watches = new Set<Watch>();
  private closed = false;
  private readonly maxRequestBytes: number;
  private readonly hosts: number;
  /** The most one call may take, its retries included. */
  private readonly boundMs: number;

  constructor(opts: EtcdOptions) {
    this.maxRequestBytes = opts.maxRequestBytes ?? ETCD_MAX_REQUEST_BYTES;
    const callTimeout = opts.callTimeoutMs ?? 30_000;
    const writeTimeout = Math.min(opts.writeTimeoutMs ?? callTimeout, callTimeout);
    this.boundMs = callTimeout + 5_000;
    // Per try (the client tries a failed call again on another member): see EtcdOptions.writeTimeoutMs.
    // (A write's size lengthens its deadline only when a shorter one is asked for.)
    const deadline = (ctx: CallContext): number => {
      if (ctx.service !== "KV") return callTimeout;
      const bytes = (kv: { key?: Buffer; value?: Buffer } | undefined) =>
        (kv?.key?.length ?? 0) + (kv?.value?.length ?? 0);
      let size = 0;
      switch (ctx.method) {
        case "range":
          return Math.min(callTimeout, READ_TIMEOUT_MS);
        case "put":
        case "deleteRange":
          size = bytes(ctx.params);
          break;
        case "txn":
          for (const op of [...(ctx.params.success ?? []), ...(ctx.params.failure ?? [])])
            size += bytes(op.request_put ?? op.request_delete_range ?? op.request_range);
          for (const c of ctx.params.compare ?? []) size += bytes(c);
          break;
        default:
          return callTimeout;
      }
      return Math.min(callTimeout, writeTimeout + size * WRITE_MS_PER_BYTE);
    };
    const hosts = opts.endpoints.map((e) => (/^[a-z]+:\/\//.test(e) ? e : `http://${e}`));
    this.client = new Etcd3({
      hosts,
      dialTimeout: opts.dialTimeoutMs ?? 5_000,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + deadline(ctx) }),
      // A range of large documents easily exceeds gRPC's default 4 MB per message.
      // Watches, transactions and ranges coded lean (etcd-wire.ts): most of what a busy client does.
      grpcOptions: { "grpc.max_receive_message_length": -1, callInvocationTransformer: leanTransformer },
    });
    this.hosts = hosts.length;
  }

  private async call<R>(context: string, fn: () => Promise<R>): Promise<R> {
    if (this.closed) throw new StoreError("closed", "the etcd store is closed");
    // gRPC's deadline is per attempt: across a member's death the client's own retries can leave a call
    // unsettled for good (seen after a leader kill). This bound is the caller's guarantee.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreError("unavailable", `${context}: etcd gave no answer in ${this.boundMs} ms`)),
        this.boundMs,
      );
    });
    try {
      return await Promise.race([fn(), bound]);
    } catch (err) {
      throw err instanceof StoreError ? err : storeError(err, context);
    } finally {
      clearTimeout(timer);
    }
  }

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key);
    const res = await this.call(`get ${key}`, () => this.client.kv.range({ key: utf8(key) }));
    const kv = res.kvs[0];
    return kv && storeKv(kv);
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<KeyValue[]> {
    checkPrefix(prefix);
    const limit = checkLimit(opts.limit) ?? 0;
    const after = checkAfter(opts.after);
    const r = prefixRange(prefix);
    if (after !== undefined) {
      const next = Buffer.concat([utf8(after), ZERO]);
      if (Buffer.compare(next, r.key) > 0) r.key = next;
      // Past the end of the prefix: etcd reads a range whose end precedes its start as empty,
      // except that range_end "\0" means "to the end", which is what we want anyway.
    }
    const res = await this.call(`range ${prefix}`, () => this.client.kv.range({ ...r, limit }));
    return res.kvs.map(storeKv);
  }

  /** Refuse a request etcd would: see EtcdOptions.maxRequestBytes. */
  private checkSize(context: string, bytes: number): void {
    if (bytes <= this.maxRequestBytes) return;
    throw new StoreError(
      "invalid",
      `${context}: request is too large: ${(bytes / 2 ** 20).toFixed(2)} MiB, etcd takes at most ${(this.maxRequestBytes / 2 ** 20).toFixed(2)} MiB (--max-request-bytes)`,
    );
  }

  async put(key: string, value: string, opts: { lease?: string } = {}): Promise<number> {
    checkKey(key);
    checkValue(value, key);
    this.checkSize(`put ${key}`, Buffer.byteLength(key) + Buffer.byteLength(value) + OP_OVERHEAD);
    const lease = opts.lease === undefined ? 0 : checkLease(opts.lease);
    const res = await this.call(`put ${key}`, () => this.client.kv.put({ key: utf8(key), value: utf8(value), lease }));
    return Number(res.header.revision);
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    const res = await this.call(`delete ${key}`, () => this.client.kv.deleteRange({ key: utf8(key) }));
    return Number(res.deleted) > 0;
  }

  async deletePrefix(prefix: string): Promise<number> {
    checkPrefix(prefix);
    const res = await this.call(`deletePrefix ${prefix}`, () => this.client.kv.deleteRange(prefixRange(prefix)));
    return Number(res.deleted);
  }

  async txn(t: Txn): Promise<TxnResult> {
    checkTxn(t);
    let bytes = 0;
    for (const c of t.compare)
      bytes += Buffer.byteLength(c.key) + (c.target === "value" ? Buffer.byteLength(c.value) : 0) + OP_OVERHEAD;
    for (const op of [...t.success, ...(t.failure ?? [])]) {
      const key = op.op === "deletePrefix" ? op.prefix : op.key;
      bytes += 2 * Buffer.byteLength(key) + (op.op === "put" ? Buffer.byteLength(op.value) : 0) + OP_OVERHEAD;
    }
    this.checkSize("txn", bytes);
    const res = await this.call("txn", () =>
      this.client.kv.txn({
        compare: t.compare.map(toCompare),
        success: t.success.map(toRequest),
        failure: (t.failure ?? []).map(toRequest),
      }),
    );
    const gets: (KeyValue | undefined)[] = [];
    for (const r of res.responses) {
      if (r.response_range) {
        const kv = r.response_range.kvs[0];
        gets.push(kv && storeKv(kv));
      }
    }
    return { succeeded: res.succeeded, revision: Number(res.header.revision), gets };
  }

  async watch(
    prefix: string,
    fromRevision: number,
    onEvent: (e: WatchEvent) => void,
    opts: WatchOptions = {},
  ): Promise<Watch> {
    checkPrefix(prefix);
    checkFromRevision(fromRevision);
    const head = await this.revision();
    const from = fromRevision === 0 ? head : fromRevision;
    if (from < head) {
      // etcd reports a compacted start only on the stream; ask up front so watch() can reject.
      try {
        await this.client.kv.range({ key: ZERO, revision: from + 1 });
      } catch (err) {
        const e = storeError(err, "watch");
        if (e instanceof StoreError && e.code === "compacted") throw compactedError(fromRevision);
        throw e;
      }
    }
    const r = prefixRange(prefix);
    const builder = this.client.watch().startRevision(String(from + 1));
    const watcher = await this.call("watch", () => builder.inRange({ start: r.key, end: r.range_end }).create());
    let live = true;
    const stop = async () => {
      if (!live) return;
      live = false;
      this.watches.delete(handle);
      await watcher.cancel().catch(() => undefined);
    };
    const handle: Watch = { cancel: stop };
    this.watches.add(handle);
    const fail = (err: Error) => {
      if (!live) return;
      void stop();
      if (opts.onError) opts.onError(err);
      else process.emitWarning(`store watch on ${JSON.stringify(prefix)} ended: ${err.message}`);
    };
    // The stream's messages are decoded by decodeWatchResponse (see the client's callInvocationTransformer).
    watcher.on("data", (res: IWatchResponse) => {
      for (const ev of (res as unknown as LeanWatchResponse).events) {
        if (!live) return;
        const kv = ev.kv;
        const e: WatchEvent =
          ev.type === "Delete"
            ? {
                type: "delete",
                revision: kv.modRevision,
                kv: { key: kv.key, value: "", createRevision: 0, modRevision: kv.modRevision, version: 0 },
              }
            : { type: "put", revision: kv.modRevision, kv };
        try {
          onEvent(e);
        } catch (err) {
          fail(err instanceof Error ? err : new Error(String(err)));
        }
      }
    });
    watcher.on("error", (err: Error) => fail(storeError(err, `watch ${prefix}`)));
    return handle;
  }

  async grant(ttlSeconds: number): Promise<string> {
    const TTL = checkTtl(ttlSeconds);
    const res = await this.call("grant", () => this.client.leaseClient.leaseGrant({ TTL }));
    return String(res.ID);
  }

  /**
   * One keep-alive, asked of a member at a time: a member that is down or does
   * not answer within KEEPALIVE_TRY_MS is passed over for another (each try opens
   * its stream on a member picked afresh), so one killed member does not make a
   * live lease look lost. Only etcd saying the lease is gone is `lease-not-found`.
   */
  async keepAlive(lease: string): Promise<void> {
    checkLease(lease);
    let last: unknown;
    for (let tried = 0; tried <= this.hosts; tried++) {
      try {
        const res = await this.call(`keepAlive ${lease}`, () => this.keepAliveOnce(lease));
        if (Number(res.TTL) <= 0)
          throw new StoreError("lease-not-found", `keepAlive ${lease}: lease expired or does not exist`);
        return;
      } catch (err) {
        if (err instanceof StoreError && (err.code === "lease-not-found" || err.code === "closed")) throw err;
        last = err;
      }
    }
    throw storeError(last, `keepAlive ${lease}`);
  }

  private async keepAliveOnce(lease: string): Promise<{ TTL: string }> {
    const stream = await this.client.leaseClient.leaseKeepAlive();
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<{ TTL: string }>((resolve, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`deadline exceeded: no keep-alive answer in ${KEEPALIVE_TRY_MS} ms`));
          stream.cancel();
        }, KEEPALIVE_TRY_MS);
        stream.on("data", resolve);
        stream.on("error", reject);
        stream.write({ ID: lease });
      });
    } finally {
      clearTimeout(timer);
      stream.end();
    }
  }

  async revoke(lease: string): Promise<void> {
    checkLease(lease);
    await this.call(`revoke ${lease}`, () => this.client.leaseClient.leaseRevoke({ ID: lease }));
  }

  async revision(): Promise<number> {
    const res = await this.call("revision", () => this.client.kv.range({ key: ZERO, limit: 1 }));
    return Number(res.header.revision);
  }

  /**
   * Every member from the member list, each asked for its status by a client of its own (the
   * shared client talks to one member at a time): reachable, database size, and who it thinks leads.
   */
  async status(): Promise<StoreStatus> {
    const revision = await this.revision();
    const list = await this.call("member list", () => this.client.cluster.memberList({}));
    let leaderId: string | undefined;
    const members: EtcdMemberStatus[] = await Promise.all(
      list.members.map(async (m): Promise<EtcdMemberStatus> => {
        const base = { id: m.ID, name: m.name, clientUrls: m.clientURLs, leader: false };
        if (m.clientURLs.length === 0) return { ...base, reachable: false, error: "not started" };
        const one = new Etcd3({ hosts: m.clientURLs, dialTimeout: 1500 });
        try {
          const s = await Promise.race([
            one.maintenance.status({}),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no answer in 2 s")), 2000).unref()),
          ]);
          leaderId ??= s.leader;
          return { ...base, reachable: true, dbBytes: Number(s.dbSize), version: s.version };
        } catch (e) {
          return { ...base, reachable: false, error: (e as Error).message };
        } finally {
          one.close();
        }
      }),
    );
    for (const m of members) m.leader = m.id === leaderId;
    const leader = members.find((m) => m.leader);
    return { backend: "etcd", revision, members, leader: leader ? leader.name || leader.id : undefined };
  }

  async compact(revision: number): Promise<void> {
    checkCompactRevision(revision, await this.revision());
    await this.call("compact", () => this.client.kv.compact({ revision })).catch((err) => {
      // Compacting to a revision already compacted is a no-op, as in the local backends.
      if (err instanceof StoreError && err.code === "compacted") return;
      throw err;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.watches].map((w) => w.cancel()));
    this.closed = true;
    this.client.close();
  }
}
