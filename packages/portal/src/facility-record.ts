/**
 * Facility records in the store. A small record (the demo facility) is one
 * value, as it always was. A big one keeps its small fields in the record and
 * its resource model compressed in chunks under `keys.facilityChunks(f, gen)`:
 * a generated 3,000-node facility model is some 3 MB of JSON, twice what etcd
 * takes in one request by default. A model update writes a new generation and
 * deletes the old one in the same transaction, so readers never mix them.
 */
import { randomBytes } from "node:crypto";
import type { Op, Store } from "@merge/store";
import type { Facility as XirFacility } from "@merge/xir";
import { chunkPuts, encodeChunks, INLINE_BYTES, type Locate, readChunked } from "./chunked.ts";
import { type FacilityRecord, type FacilitySummary, keys, type StoredFacility } from "./objects.ts";

const locate: Locate<StoredFacility> = (s) =>
  s.body === undefined ? undefined : { body: s.body, prefix: keys.facilityChunks(s.name, s.body.generation) };

/** The puts that store `f` whole (small) or as a record and its model's chunks (big). */
export function putFacility(f: FacilityRecord): Op[] {
  const key = keys.facility(f.name);
  const whole = JSON.stringify(f);
  if (Buffer.byteLength(whole) <= INLINE_BYTES) return [{ op: "put", key, value: whole }];
  const { body, chunks } = encodeChunks(JSON.stringify(f.model));
  const generation = randomBytes(6).toString("hex");
  const stored: StoredFacility = {
    ...f,
    model: null,
    body: { ...body, generation, resources: f.model.resources.length },
  };
  return [
    { op: "put", key, value: JSON.stringify(stored) },
    ...chunkPuts(keys.facilityChunks(f.name, generation), chunks),
  ];
}

/** The ops that replace `prev` (as stored) by `next`: a new model replaces the old one's chunks; otherwise they stay. */
export function replaceFacility(
  prev: StoredFacility,
  next: Omit<FacilityRecord, "model">,
  model: XirFacility | undefined,
): Op[] {
  const key = keys.facility(prev.name);
  const old: Op[] =
    prev.body === undefined
      ? []
      : [{ op: "deletePrefix", prefix: keys.facilityChunks(prev.name, prev.body.generation) }];
  if (model !== undefined) return [...old, ...putFacility({ ...next, model })];
  if (prev.model !== null) return putFacility({ ...next, model: prev.model });
  const stored: StoredFacility = { ...next, model: null, ...(prev.body === undefined ? {} : { body: prev.body }) };
  return [{ op: "put", key, value: JSON.stringify(stored) }];
}

/** The ops that delete a facility record and every chunk of its model. */
export function deleteFacility(name: string): Op[] {
  return [
    { op: "delete", key: keys.facility(name) },
    { op: "deletePrefix", prefix: keys.facilityChunkGenerations(name) },
  ];
}

/** The record without its model, with the model's resource count. */
export function summarizeFacility(s: StoredFacility): FacilitySummary {
  const { model, body, ...rest } = s;
  return { ...rest, resources: model?.resources.length ?? body?.resources ?? 0 };
}

/** A facility with its model, whatever its stored shape; undefined when there is none. */
export async function readFacility(
  store: Store,
  name: string,
): Promise<{ record: FacilityRecord; stored: StoredFacility; modRevision: number } | undefined> {
  const got = await readChunked(store, await store.get(keys.facility(name)), locate, `facility ${name}`);
  if (got === undefined) return undefined;
  return { record: withModel(got.stored, got.json), stored: got.stored, modRevision: got.kv.modRevision };
}

/** Every facility with its model (the realizer's resource internet, the resources listing). */
export async function listFacilities(store: Store): Promise<FacilityRecord[]> {
  const out: FacilityRecord[] = [];
  for (const kv of await store.range(keys.facilities())) {
    const got = await readChunked(store, kv, locate, `facility ${kv.key.slice(keys.facilities().length)}`);
    if (got !== undefined) out.push(withModel(got.stored, got.json));
  }
  return out;
}

/** Summaries of every facility: one range, no chunks read. */
export async function listFacilitySummaries(store: Store): Promise<FacilitySummary[]> {
  return (await store.range(keys.facilities())).map((kv) => summarizeFacility(JSON.parse(kv.value) as StoredFacility));
}

function withModel(stored: StoredFacility, json: string | undefined): FacilityRecord {
  const { body: _body, model, ...rest } = stored;
  return { ...rest, model: json === undefined ? (model as XirFacility) : (JSON.parse(json) as XirFacility) };
}
