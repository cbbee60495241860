/**
 * Big values (allocation records, realizations, revision bodies) stored
 * compressed and chunked: the JSON deflated, base64-encoded and cut into
 * chunks of at most 256 KiB, each its own key under a per-object prefix.
 * A small header (in the object's own record) says how many chunks and
 * characters to expect. Compression is what lifts the size limit on etcd
 * (whose --max-request-bytes, 1.5 MiB by default, bounds a whole transaction):
 * realizations and XIR deflate 15–30 times. Chunking keeps every value well
 * under the 1 MiB one backend value may hold.
 *
 * Invariant the readers rely on: chunks are written in the same transaction
 * as their header, under a prefix no other live header's chunks use, and
 * deleted with it; a header rewritten with a new body gets a fresh prefix
 * (facilities: a generation in the prefix). So a chunk read with a header was
 * written between the header's createRevision and its modRevision; anything
 * else is a torn read across a concurrent delete (and re-create).
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type { KeyValue, Op, Store } from "@merge/store";

/** Characters per chunk: well under the 1 MiB value every store backend takes. */
export const CHUNK_CHARS = 256 * 1024;
/** Records up to this many bytes of JSON stay inline (one value, one store op to read, the pre-chunking shape). */
export const INLINE_BYTES = 64 * 1024;

/** What a header says about its chunks. */
export interface ChunkedBody {
  encoding: "deflate-raw+base64";
  chunks: number;
  /** Characters of the encoded value, all chunks together. */
  chars: number;
}

/** `json` (a JSON text) as stored: deflated, base64, in chunks of at most CHUNK_CHARS; at least one chunk. */
export function encodeChunks(json: string): { body: ChunkedBody; chunks: string[] } {
  const encoded = deflateRawSync(json).toString("base64");
  const chunks: string[] = [];
  for (let i = 0; i < encoded.length; i += CHUNK_CHARS) chunks.push(encoded.slice(i, i + CHUNK_CHARS));
  if (chunks.length === 0) chunks.push("");
  return { body: { encoding: "deflate-raw+base64", chunks: chunks.length, chars: encoded.length }, chunks };
}

/** The JSON text back from its chunks; `what` names the object in errors. */
export function decodeChunks(body: ChunkedBody, chunks: readonly string[], what: string): string {
  if (body.encoding !== "deflate-raw+base64") throw new Error(`${what}: unknown encoding '${body.encoding}'`);
  const encoded = chunks.join("");
  if (chunks.length !== body.chunks || encoded.length !== body.chars) {
    throw new Error(`${what}: ${chunks.length} chunks of ${body.chunks} stored`);
  }
  return inflateRawSync(Buffer.from(encoded, "base64")).toString("utf8");
}

/** The key of chunk `i` under `prefix` (zero-padded, so key order is chunk order). */
export function chunkKey(prefix: string, i: number): string {
  return `${prefix}${String(i).padStart(4, "0")}`;
}

/** Puts for `chunks` under `prefix`, for the transaction that creates their header. */
export function chunkPuts(prefix: string, chunks: readonly string[]): Op[] {
  return chunks.map((value, i): Op => ({ op: "put", key: chunkKey(prefix, i), value }));
}

/** How to find an object's chunks from its stored record: undefined when the record is inline. */
export type Locate<S> = (stored: S) => { body: ChunkedBody; prefix: string } | undefined;

export interface ChunkedRead<S> {
  /** The record's key-value as read (its modRevision is what a later compare-and-swap uses). */
  kv: KeyValue;
  stored: S;
  /** The decoded JSON text of the chunks; undefined when the record is inline. */
  json: string | undefined;
}

/**
 * A record and, when it has them, its chunks, consistent with each other. `first` is the record
 * as already read (by a get or a range). A header whose chunks do not match it (deleted, or
 * deleted and created again, between the two reads) is read again; gone means undefined, like a
 * record that was never there. A header that is unchanged but lacks chunks is damage: an error.
 */
export async function readChunked<S>(
  store: Store,
  first: KeyValue | undefined,
  locate: Locate<S>,
  what: string,
): Promise<ChunkedRead<S> | undefined> {
  let kv = first;
  for (let attempt = 0; attempt < 8; attempt++) {
    if (kv === undefined) return undefined;
    const stored = JSON.parse(kv.value) as S;
    const where = locate(stored);
    if (where === undefined) return { kv, stored, json: undefined };
    const chunks = await store.range(where.prefix);
    const { createRevision, modRevision } = kv;
    const ours = (c: KeyValue) => c.modRevision >= createRevision && c.modRevision <= modRevision;
    if (chunks.length === where.body.chunks && chunks.every(ours)) {
      const json = decodeChunks(
        where.body,
        chunks.map((c) => c.value),
        what,
      );
      return { kv, stored, json };
    }
    const again: KeyValue | undefined = await store.get(kv.key);
    if (again?.modRevision === modRevision) {
      throw new Error(`${what}: ${chunks.length} of ${where.body.chunks} chunks stored`);
    }
    kv = again;
  }
  throw new Error(`${what} kept changing while reading it`);
}
