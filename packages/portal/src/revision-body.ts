/**
 * Revision bodies (model source and compiled XIR) in the store. A small body
 * is one value, as it always was; a big one (above INLINE_BYTES of JSON: a
 * 10,000-node experiment pushed as XIR is some 2.6 MB, source and XIR) is
 * stored as a header at `keys.revisionBody` and the whole body compressed in
 * chunks under `keys.revisionChunks`, written by the push transaction and
 * deleted with the experiment. Every read of a body goes through `readRevisionBody`.
 */
import type { Op, Store } from "@merge/store";
import { chunkPuts, encodeChunks, INLINE_BYTES, type Locate, readChunked } from "./chunked.ts";
import { keys, type RevisionBody, type StoredRevisionBody } from "./objects.ts";

/** A revision body's JSON as it will be stored: inline, or a header and its compressed chunks. */
export type EncodedRevisionBody = { inline: string } | { header: string; chunks: string[] };

/** Encodes a body's JSON text (pure and CPU-heavy for big bodies: the compile thread calls it). */
export function encodeRevisionBody(whole: string): EncodedRevisionBody {
  if (Buffer.byteLength(whole) <= INLINE_BYTES) return { inline: whole };
  const { body: header, chunks } = encodeChunks(whole);
  return { header: JSON.stringify({ body: header } satisfies StoredRevisionBody), chunks };
}

/** Bytes an encoded body takes in the store (what storage quotas count). */
export function encodedBytes(e: EncodedRevisionBody): number {
  if ("inline" in e) return Buffer.byteLength(e.inline);
  return Buffer.byteLength(e.header) + e.chunks.reduce((n, c) => n + c.length, 0);
}

/** The puts that store an encoded body as revision `n` (with its chunks, when it is big), for the push transaction. */
export function revisionBodyOps(e: EncodedRevisionBody): (project: string, experiment: string, n: number) => Op[] {
  if ("inline" in e) {
    return (project, experiment, n) => [{ op: "put", key: keys.revisionBody(project, experiment, n), value: e.inline }];
  }
  return (project, experiment, n) => [
    { op: "put", key: keys.revisionBody(project, experiment, n), value: e.header },
    ...chunkPuts(keys.revisionChunks(project, experiment, n), e.chunks),
  ];
}

/**
 * `body` encoded once (a push may retry with another revision number); the result gives the puts
 * that store it as revision `n` (with its chunks, when it is big), for the push transaction.
 */
export function putRevisionBody(body: RevisionBody): (project: string, experiment: string, n: number) => Op[] {
  return revisionBodyOps(encodeRevisionBody(JSON.stringify(body)));
}

/** The ops that delete every revision body of an experiment, with their chunks. */
export function deleteRevisionBodies(project: string, experiment: string): Op[] {
  return [
    { op: "deletePrefix", prefix: keys.revisionBodies(project, experiment) },
    { op: "deletePrefix", prefix: keys.experimentRevisionChunks(project, experiment) },
  ];
}

/** Revision `n`'s source and XIR, whatever its stored shape; undefined when there is none. */
export async function readRevisionBody(
  store: Store,
  project: string,
  experiment: string,
  n: number,
): Promise<RevisionBody | undefined> {
  const locate: Locate<StoredRevisionBody> = (s) =>
    "body" in s ? { body: s.body, prefix: keys.revisionChunks(project, experiment, n) } : undefined;
  const key = keys.revisionBody(project, experiment, n);
  const got = await readChunked(store, await store.get(key), locate, `revision ${n} of ${experiment}.${project}`);
  if (got === undefined) return undefined;
  return got.json === undefined ? (got.stored as RevisionBody) : (JSON.parse(got.json) as RevisionBody);
}
