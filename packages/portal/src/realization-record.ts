/**
 * Realization records in the store. A small record is one value, as it always
 * was. A big one (above INLINE_BYTES of JSON: some 80 nodes and up) keeps its
 * small fields in the record, so listings stay one range of small values, and
 * its embedding compressed in chunks under `keys.realizationChunks`, written
 * in the realize transaction and deleted with the record. Every read of a
 * realization's embedding goes through `readRealization`.
 */
import type { Op, Store } from "@merge/store";
import type { Realization as XirRealization } from "@merge/xir";
import { chunkPuts, encodeChunks, INLINE_BYTES, type Locate, readChunked } from "./chunked.ts";
import { keys, type RealizationRecord, type RealizationSummary, type StoredRealization } from "./objects.ts";

const prefixOf = (r: Pick<RealizationRecord, "project" | "experiment" | "name">) =>
  keys.realizationChunks(r.project, r.experiment, r.name);

const locate: Locate<StoredRealization> = (s) =>
  s.body === undefined ? undefined : { body: s.body, prefix: prefixOf(s) };

/** The puts that store a new realization record (and its chunks, when it is big), for the transaction creating it. */
export function putRealization(record: RealizationRecord): Op[] {
  const key = keys.realization(record.project, record.experiment, record.name);
  const whole = JSON.stringify(record);
  if (record.realization === null || Buffer.byteLength(whole) <= INLINE_BYTES)
    return [{ op: "put", key, value: whole }];
  const { body, chunks } = encodeChunks(JSON.stringify(record.realization));
  const stored: StoredRealization = { ...record, realization: null, body };
  return [{ op: "put", key, value: JSON.stringify(stored) }, ...chunkPuts(prefixOf(record), chunks)];
}

/** The ops that delete a realization record and its chunks (if any). */
export function deleteRealization(project: string, experiment: string, name: string): Op[] {
  return [
    { op: "delete", key: keys.realization(project, experiment, name) },
    { op: "deletePrefix", prefix: keys.realizationChunks(project, experiment, name) },
  ];
}

/** The record without its embedding (and without the storage header). */
export function summarize(stored: StoredRealization): RealizationSummary {
  const { realization: _realization, body: _body, ...summary } = stored;
  return summary;
}

/**
 * A realization record with its embedding, whatever its stored shape; undefined when there is
 * none (also when it was relinquished between reading the record and its chunks). `stored` and
 * `modRevision` are the record as stored, for a compare-and-swap rewrite of its small fields.
 */
export async function readRealization(
  store: Store,
  project: string,
  experiment: string,
  name: string,
): Promise<{ record: RealizationRecord; stored: StoredRealization; modRevision: number } | undefined> {
  const key = keys.realization(project, experiment, name);
  const got = await readChunked(store, await store.get(key), locate, `realization ${name}.${experiment}.${project}`);
  if (got === undefined) return undefined;
  const realization = got.json === undefined ? got.stored.realization : (JSON.parse(got.json) as XirRealization);
  return { record: { ...summarize(got.stored), realization }, stored: got.stored, modRevision: got.kv.modRevision };
}

/** Summaries of the realization records under `prefix` (keys.realizations & co.): one range, no chunks read. */
export async function listRealizations(store: Store, prefix: string): Promise<RealizationSummary[]> {
  return (await store.range(prefix)).map((kv) => summarize(JSON.parse(kv.value) as StoredRealization));
}
