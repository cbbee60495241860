/**
 * Lean wire codecs for the etcd calls a store makes most, put in place of
 * protobufjs's (see `leanTransformer`): the watch stream's responses, and
 * transactions and ranges. Every rex worker decodes every event under its
 * watched prefixes; protobufjs builds a message, then a plain object with a
 * Buffer per key and value and a string per 64-bit number, and that was the
 * largest CPU cost of a worker, with encoding transactions next. Here keys and
 * values become strings straight from the wire, revisions numbers, and
 * nothing else is made.
 *
 * Decoded responses keep the fields etcd3 reads (a watch response's
 * header.revision, watch_id, created, canceled, compact_revision,
 * cancel_reason, events with a "Put" or "Delete" type): the key-values in
 * them are the store's KeyValue, which only etcd.ts reads (see `storeKv`).
 */
import type { IKeyValue } from "etcd3";
import type { KeyValue } from "./kv.ts";

export interface LeanWatchResponse {
  header: { revision: string };
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  fragment: boolean;
  events: { type: "Put" | "Delete"; kv: KeyValue }[];
}

/** The wire's method path of etcd's watch stream. */
export const WATCH_PATH = "/etcdserverpb.Watch/Watch";

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** A varint as a number: exact up to 2^53, which revisions, versions and counts never pass. */
  varint(): number {
    let out = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.end) throw new Error("watch response: truncated varint");
      const b = this.buf[this.pos++]!;
      out += (b & 0x7f) * scale;
      if (b < 0x80) return out;
      scale *= 128;
    }
  }

  /** A 64-bit varint as a decimal string, exact whatever its size (ids: lease, watch, member). */
  long(): string {
    const start = this.pos;
    const n = this.varint();
    if (this.pos - start < 8) return String(n);
    let v = 0n;
    for (let i = this.pos - 1; i >= start; i--) v = (v << 7n) | BigInt(this.buf[i]! & 0x7f);
    return BigInt.asIntN(64, v).toString();
  }

  /** The end of a length-delimited field that starts here. */
  sub(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) throw new Error("watch response: truncated field");
    return end;
  }

  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        return;
      case 2:
        this.pos = this.sub();
        return;
      case 5:
        this.pos += 4;
        return;
      default:
        throw new Error(`watch response: unexpected wire type ${wire}`);
    }
  }
}

function keyValue(r: Reader, end: number): KeyValue {
  const kv: KeyValue = { key: "", value: "", createRevision: 0, modRevision: 0, version: 0 };
  while (r.pos < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if ((field === 1 || field === 5) && wire === 2) {
      const to = r.sub();
      const s = r.buf.toString("utf8", r.pos, to);
      r.pos = to;
      if (field === 1) kv.key = s;
      else kv.value = s;
    } else if (field === 2 && wire === 0) kv.createRevision = r.varint();
    else if (field === 3 && wire === 0) kv.modRevision = r.varint();
    else if (field === 4 && wire === 0) kv.version = r.varint();
    else if (field === 6 && wire === 0) {
      const lease = r.long();
      if (lease !== "0") kv.lease = lease;
    } else r.skip(wire);
  }
  return kv;
}

function event(r: Reader, end: number): LeanWatchResponse["events"][number] {
  let type: "Put" | "Delete" = "Put";
  let kv: KeyValue | undefined;
  while (r.pos < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 0) type = r.varint() === 1 ? "Delete" : "Put";
    else if (field === 2 && wire === 2) {
      const to = r.sub();
      kv = keyValue(r, to);
    } else r.skip(wire); // prev_kv: never asked for
  }
  return { type, kv: kv ?? { key: "", value: "", createRevision: 0, modRevision: 0, version: 0 } };
}

/** Decode one WatchResponse message. */
export function decodeWatchResponse(buf: Buffer): LeanWatchResponse {
  const r = new Reader(buf, 0, buf.length);
  const out: LeanWatchResponse = {
    header: { revision: "0" },
    watch_id: "0",
    created: false,
    canceled: false,
    compact_revision: "0",
    cancel_reason: "",
    fragment: false,
    events: [],
  };
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 2) {
      const to = r.sub();
      while (r.pos < to) {
        const t = r.varint();
        if (t >>> 3 === 3 && (t & 7) === 0) out.header.revision = r.long();
        else r.skip(t & 7);
      }
    } else if (field === 2 && wire === 0) out.watch_id = r.long();
    else if (field === 3 && wire === 0) out.created = r.varint() !== 0;
    else if (field === 4 && wire === 0) out.canceled = r.varint() !== 0;
    else if (field === 5 && wire === 0) out.compact_revision = r.long();
    else if (field === 6 && wire === 2) {
      const to = r.sub();
      out.cancel_reason = r.buf.toString("utf8", r.pos, to);
      r.pos = to;
    } else if (field === 7 && wire === 0) out.fragment = r.varint() !== 0;
    else if (field === 11 && wire === 2) {
      const to = r.sub();
      out.events.push(event(r, to));
    } else r.skip(wire);
  }
  return out;
}

/** A key-value as decoded here, or as etcd3 gives it (a call the lean codecs did not decode). */
export function storeKv(kv: KeyValue | IKeyValue): KeyValue {
  if (typeof kv.key === "string") return kv as KeyValue;
  const k = kv as IKeyValue;
  const out: KeyValue = {
    key: k.key.toString("utf8"),
    value: k.value.toString("utf8"),
    createRevision: Number(k.create_revision),
    modRevision: Number(k.mod_revision),
    version: Number(k.version),
  };
  if (k.lease && k.lease !== "0") out.lease = String(k.lease);
  return out;
}

/** A RangeResponse (response to a range, alone or in a transaction): its key-values and revision. */
export interface LeanRangeResponse {
  header: { revision: string };
  kvs: KeyValue[];
  more: boolean;
  count: string;
}

function header(r: Reader, end: number, into: { revision: string }): void {
  while (r.pos < end) {
    const t = r.varint();
    if (t >>> 3 === 3 && (t & 7) === 0) into.revision = r.long();
    else r.skip(t & 7);
  }
}

function rangeResponse(r: Reader, end: number): LeanRangeResponse {
  const out: LeanRangeResponse = { header: { revision: "0" }, kvs: [], more: false, count: "0" };
  while (r.pos < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 2) header(r, r.sub(), out.header);
    else if (field === 2 && wire === 2) {
      const to = r.sub();
      out.kvs.push(keyValue(r, to));
    } else if (field === 3 && wire === 0) out.more = r.varint() !== 0;
    else if (field === 4 && wire === 0) out.count = r.long();
    else r.skip(wire);
  }
  return out;
}

export function decodeRangeResponse(buf: Buffer): LeanRangeResponse {
  return rangeResponse(new Reader(buf, 0, buf.length), buf.length);
}

/** A TxnResponse; of its responses only ranges are decoded (puts and deletes are read by nobody). */
export interface LeanTxnResponse {
  header: { revision: string };
  succeeded: boolean;
  responses: { response_range?: LeanRangeResponse }[];
}

export function decodeTxnResponse(buf: Buffer): LeanTxnResponse {
  const r = new Reader(buf, 0, buf.length);
  const out: LeanTxnResponse = { header: { revision: "0" }, succeeded: false, responses: [] };
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 2) header(r, r.sub(), out.header);
    else if (field === 2 && wire === 0) out.succeeded = r.varint() !== 0;
    else if (field === 3 && wire === 2) {
      const to = r.sub();
      const op: LeanTxnResponse["responses"][number] = {};
      while (r.pos < to) {
        const t = r.varint();
        if (t >>> 3 === 1 && (t & 7) === 2) {
          const end = r.sub();
          op.response_range = rangeResponse(r, end);
        } else r.skip(t & 7);
      }
      out.responses.push(op);
    } else r.skip(wire);
  }
  return out;
}

/** A transaction as the store hands etcd3 (etcd.ts: toCompare, toRequest). */
interface TxnShape {
  compare?: {
    result?: unknown;
    target?: unknown;
    key?: Buffer;
    version?: unknown;
    create_revision?: unknown;
    mod_revision?: unknown;
    value?: Buffer;
  }[];
  success?: OpShape[];
  failure?: OpShape[];
}
interface OpShape {
  request_range?: { key?: Buffer; range_end?: Buffer; limit?: unknown };
  request_put?: { key?: Buffer; value?: Buffer; lease?: unknown };
  request_delete_range?: { key?: Buffer; range_end?: Buffer };
  request_txn?: unknown;
}

/** Bytes of a varint. */
function varintLen(n: number): number {
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/** A non-negative integer field's value, or undefined for what this encoder leaves to protobufjs. */
function uint(v: unknown): number | undefined {
  const n = typeof v === "string" ? Number(v) : v;
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** A lease id's varint (ids are 63-bit: beyond a double's exact range), or undefined for none or a bad one. */
function leaseVarint(v: unknown): Buffer | undefined | null {
  if (v === undefined || v === 0 || v === "0") return undefined;
  if (typeof v !== "string" && typeof v !== "number") return null;
  let n: bigint;
  try {
    n = BigInt(v);
  } catch {
    return null;
  }
  if (n <= 0n || n >= 2n ** 64n) return null;
  const out: number[] = [];
  while (n >= 128n) {
    out.push(Number(n & 127n) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return Buffer.from(out);
}

class Writer {
  readonly buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  varint(n: number): void {
    while (n >= 128) {
      this.buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  bytes(field: number, b: Buffer): void {
    this.varint((field << 3) | 2);
    this.varint(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }
  uint(field: number, n: number): void {
    if (n === 0) return;
    this.varint(field << 3);
    this.varint(n);
  }
  message(field: number, len: number): void {
    this.varint((field << 3) | 2);
    this.varint(len);
  }
}

const bytesLen = (b: Buffer | undefined) => (b ? 1 + varintLen(b.length) + b.length : 0);
const uintLen = (n: number) => (n === 0 ? 0 : 1 + varintLen(n));
const msgLen = (field: number, len: number) => varintLen(field << 3) + varintLen(len) + len;

/** A compare's value when it has none: one buffer, only read (an allocation per compare was much of encoding a claim). */
const EMPTY = Buffer.alloc(0);

/** One compare's fields and their length, or undefined for a compare this encoder leaves to protobufjs. */
function compareParts(c: NonNullable<TxnShape["compare"]>[number]) {
  const result = uint(c.result ?? 0);
  const target = uint(c.target ?? 0);
  if (result === undefined || target === undefined) return undefined;
  const version = uint(c.version ?? 0);
  const create = uint(c.create_revision ?? 0);
  const mod = uint(c.mod_revision ?? 0);
  if (version === undefined || create === undefined || mod === undefined) return undefined;
  // Which one of the union is set (protobufjs writes the one given even when zero: etcd reads the target's).
  const union =
    target === 0 ? [4, version] : target === 1 ? [5, create] : target === 2 ? [6, mod] : target === 3 ? [7, -1] : [];
  if (union.length === 0) return undefined;
  const [field, n] = union as [number, number];
  const unionLen = field === 7 ? bytesLen(c.value ?? EMPTY) : 1 + varintLen(n);
  const len = uintLen(result) + uintLen(target) + bytesLen(c.key) + unionLen;
  return { result, target, key: c.key, field, n, value: c.value ?? EMPTY, len };
}

/** One op's request and its length, or undefined for an op this encoder leaves to protobufjs. */
function opParts(op: OpShape) {
  if (op.request_txn !== undefined) return undefined;
  if (op.request_put) {
    const { key, value } = op.request_put;
    const lease = leaseVarint(op.request_put.lease);
    if (lease === null) return undefined;
    const len = bytesLen(key) + bytesLen(value) + (lease ? 1 + lease.length : 0);
    return { field: 2, key, second: value, n: 0, lease, len };
  }
  if (op.request_range) {
    const { key, range_end } = op.request_range;
    const limit = uint(op.request_range.limit ?? 0);
    if (limit === undefined) return undefined;
    const len = bytesLen(key) + bytesLen(range_end) + uintLen(limit);
    return { field: 1, key, second: range_end, n: limit, lease: undefined, len };
  }
  if (op.request_delete_range) {
    const { key, range_end } = op.request_delete_range;
    return { field: 3, key, second: range_end, n: 0, lease: undefined, len: bytesLen(key) + bytesLen(range_end) };
  }
  return undefined;
}

/**
 * A TxnRequest's bytes, or undefined for one this encoder does not handle
 * (nested transactions, negative or huge numbers): protobufjs encodes those.
 */
export function encodeTxnRequest(t: TxnShape): Buffer | undefined {
  const compares = (t.compare ?? []).map(compareParts);
  const success = (t.success ?? []).map(opParts);
  const failure = (t.failure ?? []).map(opParts);
  let size = 0;
  for (const c of compares) {
    if (!c) return undefined;
    size += msgLen(1, c.len);
  }
  for (const [field, ops] of [
    [2, success],
    [3, failure],
  ] as const)
    for (const o of ops) {
      if (!o) return undefined;
      size += msgLen(field, msgLen(o.field, o.len));
    }
  const w = new Writer(size);
  for (const c of compares as NonNullable<(typeof compares)[number]>[]) {
    w.message(1, c.len);
    w.uint(1, c.result);
    w.uint(2, c.target);
    if (c.key) w.bytes(3, c.key);
    if (c.field === 7) w.bytes(7, c.value);
    else {
      w.varint(c.field << 3);
      w.varint(c.n);
    }
  }
  for (const [field, ops] of [
    [2, success],
    [3, failure],
  ] as const)
    for (const o of ops as NonNullable<(typeof ops)[number]>[]) {
      w.message(field, msgLen(o.field, o.len));
      w.message(o.field, o.len);
      if (o.key) w.bytes(1, o.key);
      if (o.second) w.bytes(2, o.second);
      w.uint(3, o.n);
      if (o.lease) {
        w.varint(3 << 3);
        o.lease.copy(w.buf, w.pos);
        w.pos += o.lease.length;
      }
    }
  return w.buf;
}

/** The wire's method paths of the calls given lean codecs. */
const TXN_PATH = "/etcdserverpb.KV/Txn";
const RANGE_PATH = "/etcdserverpb.KV/Range";

/** What grpc-js hands a client's callInvocationTransformer (the part of it used here). */
interface CallProperties {
  methodDefinition: {
    path: string;
    requestSerialize: (req: never) => Buffer;
    responseDeserialize: (b: Buffer) => unknown;
  };
}

/**
 * A grpc-js `callInvocationTransformer` (a client option) that gives the watch
 * stream, transactions and ranges the lean codecs; every other call is left as
 * it is.
 */
export function leanTransformer<P extends CallProperties>(props: P): P {
  const def = props.methodDefinition;
  switch (def.path) {
    case WATCH_PATH:
      return { ...props, methodDefinition: { ...def, responseDeserialize: decodeWatchResponse } };
    case RANGE_PATH:
      return { ...props, methodDefinition: { ...def, responseDeserialize: decodeRangeResponse } };
    case TXN_PATH: {
      const fallback = def.requestSerialize;
      const requestSerialize = (req: TxnShape) => encodeTxnRequest(req) ?? fallback(req as never);
      return { ...props, methodDefinition: { ...def, requestSerialize, responseDeserialize: decodeTxnResponse } };
    }
    default:
      return props;
  }
}
