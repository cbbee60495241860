/**
 * The chunked layout at the store level (memory store): small objects stay one
 * value, big ones are a header and chunks; a reader racing a delete (or a
 * delete and re-create) sees the object whole or not at all; missing chunks
 * under an unchanged header are reported as damage; a facility's new model
 * replaces the old chunks in the same transaction.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { generateFacility } from "@merge/facility-model";
import { openMemoryStore, type Store } from "@merge/store";
import type { Realization } from "@merge/xir";
import { CHUNK_CHARS, decodeChunks, encodeChunks, INLINE_BYTES, readChunked } from "../src/chunked.ts";
import { listFacilities, putFacility, readFacility, replaceFacility } from "../src/facility-record.ts";
import { keys, type RealizationRecord, type StoredFacility, type StoredRealization } from "../src/objects.ts";
import { deleteRealization, listRealizations, putRealization, readRealization } from "../src/realization-record.ts";
import { putRevisionBody, readRevisionBody } from "../src/revision-body.ts";

/** A realization-shaped embedding of `n` nodes with random (incompressible) names, so it takes several chunks. */
function embedding(id: string, n: number): Realization {
  return {
    id,
    nodes: Array.from({ length: n }, () => ({ name: randomBytes(16).toString("hex") })),
  } as unknown as Realization;
}

function record(name: string, realization: Realization | null): RealizationRecord {
  return {
    name,
    experiment: "e",
    project: "p",
    revision: 1,
    state: "pending",
    creator: "u",
    created: new Date(0).toISOString(),
    expires: null,
    realization,
    diagnostics: [],
    resources: ["f/a", "f/b"],
  };
}

async function commit(store: Store, ops: Parameters<Store["txn"]>[0]["success"]): Promise<void> {
  assert.equal((await store.txn({ compare: [], success: ops })).succeeded, true);
}

test("encoding: chunks of at most CHUNK_CHARS, decoded whole; a missing chunk is an error", () => {
  const json = JSON.stringify(embedding("x", 40_000));
  const { body, chunks } = encodeChunks(json);
  assert.ok(chunks.length > 1, `${chunks.length} chunks`);
  for (const c of chunks) assert.ok(c.length <= CHUNK_CHARS);
  assert.equal(decodeChunks(body, chunks, "x"), json);
  assert.throws(() => decodeChunks(body, chunks.slice(1), "thing x"), /thing x: \d+ chunks of \d+ stored/);
});

test("realization records: small inline, big as a header and chunks; both read whole; listings read no chunks", async () => {
  const store = openMemoryStore();
  try {
    const small = record("small", embedding("small.e.p", 3));
    const big = record("big", embedding("big.e.p", 20_000));
    assert.ok(JSON.stringify(small).length <= INLINE_BYTES);
    const smallOps = putRealization(small);
    assert.equal(smallOps.length, 1);
    const bigOps = putRealization(big);
    assert.ok(bigOps.length > 2, `${bigOps.length} ops`);
    await commit(store, smallOps);
    await commit(store, bigOps);
    assert.deepEqual((await readRealization(store, "p", "e", "small"))?.record, small);
    assert.deepEqual((await readRealization(store, "p", "e", "big"))?.record, big);
    const stored = JSON.parse((await store.get(keys.realization("p", "e", "big")))!.value) as StoredRealization;
    assert.equal(stored.realization, null);

    // Rewriting the small fields (as accept does) keeps the chunks, which still read.
    await store.put(keys.realization("p", "e", "big"), JSON.stringify({ ...stored, state: "accepted" }));
    const accepted = await readRealization(store, "p", "e", "big");
    assert.equal(accepted?.record.state, "accepted");
    assert.deepEqual(accepted?.record.realization, big.realization);

    const listed = await listRealizations(store, keys.realizations("p", "e"));
    assert.deepEqual(
      listed.map((r) => [r.name, "realization" in r, "body" in r]),
      [
        ["big", false, false],
        ["small", false, false],
      ],
    );

    // Deleted: record and chunks together.
    await commit(store, deleteRealization("p", "e", "big"));
    assert.equal(await readRealization(store, "p", "e", "big"), undefined);
    assert.deepEqual(await store.range(keys.allRealizationChunks()), []);
  } finally {
    await store.close();
  }
});

test("a reader racing a delete, or a delete and re-create, sees a whole object or none; lost chunks are damage", async () => {
  const store = openMemoryStore();
  try {
    const first = record("r", embedding("r.e.p", 20_000));
    await commit(store, putRealization(first));
    const stale = await store.get(keys.realization("p", "e", "r"));
    assert.ok(stale !== undefined);

    // Relinquished and realized again under the same name between reading the header and its chunks.
    await commit(store, deleteRealization("p", "e", "r"));
    const second = record("r", embedding("r.e.p", 20_000));
    await commit(store, putRealization(second));
    const locate = (s: StoredRealization) =>
      s.body === undefined ? undefined : { body: s.body, prefix: keys.realizationChunks("p", "e", "r") };
    const raced = await readChunked(store, stale, locate, "realization r.e.p");
    assert.ok(raced !== undefined);
    assert.deepEqual(JSON.parse(raced.json as string), second.realization);

    // Relinquished between the two reads: not found, like a record that was never there.
    const before = await store.get(keys.realization("p", "e", "r"));
    await commit(store, deleteRealization("p", "e", "r"));
    assert.equal(await readChunked(store, before, locate, "realization r.e.p"), undefined);

    // A chunk lost under an unchanged header is damage, reported, never read as something else.
    await commit(store, putRealization(first));
    await store.delete(`${keys.realizationChunks("p", "e", "r")}0000`);
    await assert.rejects(readRealization(store, "p", "e", "r"), /realization r\.e\.p: \d+ of \d+ chunks stored/);
  } finally {
    await store.close();
  }
});

test("revision bodies: small inline, big chunked; the old shape reads", async () => {
  const store = openMemoryStore();
  try {
    const small = { source: "{}", xir: null };
    const big = { source: randomBytes(100_000).toString("hex"), xir: null };
    const ops = putRevisionBody(big)("p", "e", 2);
    assert.ok(ops.length >= 2);
    await commit(store, [...putRevisionBody(small)("p", "e", 1), ...ops]);
    assert.deepEqual(await readRevisionBody(store, "p", "e", 1), small);
    assert.deepEqual(await readRevisionBody(store, "p", "e", 2), big);
    await store.put(keys.revisionBody("p", "e", 3), JSON.stringify(big));
    assert.deepEqual(await readRevisionBody(store, "p", "e", 3), big);
    assert.equal(await readRevisionBody(store, "p", "e", 4), undefined);
  } finally {
    await store.close();
  }
});

test("facilities: a big model is chunked; a new model replaces the old chunks, other updates keep them", async () => {
  const store = openMemoryStore();
  try {
    const now = new Date(0).toISOString();
    const base = { description: "", endpoint: "https://g:6000", certificate: "", state: "active" as const };
    const f = { name: "g", ...base, registered: now, updated: now, model: generateFacility({ nodes: 300, name: "g" }) };
    await commit(store, putFacility(f));
    const stored = JSON.parse((await store.get(keys.facility("g")))!.value) as StoredFacility;
    assert.ok(stored.body !== undefined);
    assert.deepEqual((await readFacility(store, "g"))?.record, f);

    // State change only: same chunks.
    const { model: _m, body: _b, ...rest } = stored;
    await commit(store, replaceFacility(stored, { ...rest, state: "inactive" }, undefined));
    const inactive = await readFacility(store, "g");
    assert.equal(inactive?.record.state, "inactive");
    assert.deepEqual(inactive?.record.model, f.model);
    assert.equal(inactive?.stored.body?.generation, stored.body.generation);

    // A new model: a new generation, the old one's chunks gone in the same transaction.
    const model = generateFacility({ nodes: 400, name: "g" });
    await commit(store, replaceFacility(inactive!.stored, { ...rest, state: "inactive" }, model));
    const replaced = await readFacility(store, "g");
    assert.deepEqual(replaced?.record.model, model);
    assert.notEqual(replaced?.stored.body?.generation, stored.body.generation);
    const gens = new Set((await store.range(keys.facilityChunkGenerations("g"))).map((kv) => kv.key.split("/")[3]));
    assert.deepEqual([...gens], [replaced?.stored.body?.generation]);
    assert.deepEqual(
      (await listFacilities(store)).map((x) => x.model.resources.length),
      [model.resources.length],
    );
  } finally {
    await store.close();
  }
});
