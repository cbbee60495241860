/**
 * Big objects on a real etcd with its default limits (1.5 MiB per request, 128
 * ops per transaction): a 3,200-node facility, a 3,000-node realization pushed,
 * realized, accepted, read, listed, materialized (the read path, against a
 * facility that is not reachable) and relinquished, leaving no chunk behind; a
 * 10,000-node revision; and records of the shape stored before chunking, read
 * through the API.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { phobos } from "@merge/facility-model";
import { checkRealizations } from "@merge/realize";
import { type EtcdServer, startEtcd } from "@merge/store/testing/etcd";
import type { Facility, Realization } from "@merge/xir";
import { PortalClient } from "../src/client/index.ts";
import { PortalError } from "../src/errors.ts";
import { type Started, startPortal } from "../src/main.ts";
import { credentialsConnector, Materializer } from "../src/materialize/index.ts";
import { keys, type RealizationRecord, type StoredFacility, type StoredRealization } from "../src/objects.ts";
import { readAllocations } from "../src/realization.ts";
import { demoSeed } from "./demo-seed.ts";
import { apiError } from "./harness.ts";
import { generatedFacility, lansXir } from "./size.ts";

let etcd: EtcdServer;
let dataDir: string;
let portal: Started;
let admin: PortalClient;
let dee: PortalClient;

before(async () => {
  etcd = await startEtcd();
  dataDir = await mkdtemp(join(tmpdir(), "merge-portal-large-etcd-"));
  portal = await startPortal({ dataDir, port: 0, storeUrl: etcd.url, seed: demoSeed() });
  const anon = new PortalClient(portal.url);
  admin = new PortalClient(portal.url, (await anon.login("admin", portal.admin.password as string)).token);
  await anon.register({ name: "dee", email: "dee@example.org", password: "dee-password" });
  await admin.setUserState("dee", "active");
  dee = new PortalClient(portal.url, (await anon.login("dee", "dee-password")).token);
});
after(async () => {
  await portal?.stop();
  await etcd?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** Every key under `prefix`, for "nothing left behind" checks. */
const keysUnder = async (prefix: string) => (await portal.store.range(prefix)).map((kv) => kv.key);

test("a 3,000-node realization on etcd: pushed, realized, accepted, read, listed, materialized, relinquished to nothing", async (t) => {
  const store = portal.store;
  const gen = generatedFacility(3200);
  const modelBytes = JSON.stringify(gen.model).length;
  await admin.registerFacility(gen);
  // The facility model is twice what etcd takes in one request: stored as a record and chunks.
  const fkv = JSON.parse((await store.get(keys.facility(gen.name)))!.value) as StoredFacility;
  assert.equal(fkv.model, null);
  assert.ok(fkv.body !== undefined && fkv.body.chunks >= 1);
  assert.deepEqual(await admin.facilityModel(gen.name), gen.model);
  assert.equal((await admin.facilities()).find((f) => f.name === gen.name)?.resources, gen.model.resources.length);

  const xir = lansXir("big", 75, 40);
  await dee.createExperiment("dee", { name: "big" });
  const rev = await dee.push("dee", "big", JSON.stringify(xir), "xir");
  assert.equal(rev.status, "compiled", JSON.stringify(rev.errors));
  assert.equal(rev.nodes, 3000);

  let started = Date.now();
  const r = await dee.realize("dee", "big", { name: "r" });
  const realizeMs = Date.now() - started;
  assert.equal(r.state, "pending", r.diagnostics.join("\n"));
  const made = r.realization as Realization;
  assert.equal(made.nodes.length, 3000);

  // Stored as a small record and its chunks; every value and the transaction well under etcd's limits.
  const rkv = (await store.get(keys.realization("dee", "big", "r")))!;
  const stored = JSON.parse(rkv.value) as StoredRealization;
  assert.equal(stored.realization, null);
  assert.ok(stored.body !== undefined);
  const chunks = await store.range(keys.realizationChunks("dee", "big", "r"));
  assert.equal(chunks.length, stored.body.chunks);
  assert.ok(chunks.every((c) => c.modRevision === rkv.createRevision));
  const fullBytes = JSON.stringify(made).length;
  t.diagnostic(
    `facility model ${Math.round(modelBytes / 1024)} KiB; realization ${Math.round(fullBytes / 1024)} KiB as JSON, ` +
      `${Math.round(stored.body.chars / 1024)} KiB in ${stored.body.chunks} chunk(s) + a ${Math.round(rkv.value.length / 1024)} KiB record; realized in ${realizeMs} ms`,
  );
  assert.ok(fullBytes > 1.5 * 2 ** 20, `${fullBytes} bytes: more than etcd takes in one request`);

  // Accept: the record's small fields change, the chunks stay as they are and still read.
  const accepted = await dee.accept("dee", "big", "r");
  assert.equal(accepted.state, "accepted");
  assert.equal("realization" in accepted, false);
  started = Date.now();
  const got = await dee.realization("dee", "big", "r");
  t.diagnostic(`GET of the 3,000-node realization: ${Date.now() - started} ms`);
  assert.equal(got.state, "accepted");
  assert.deepEqual(got.realization, made);
  assert.deepEqual(
    checkRealizations({ facilities: [phobos(), gen.model as Facility], interconnects: [] }, [
      { experiment: xir, realization: got.realization as Realization },
    ]),
    [],
  );
  // Listings show the summary, never the embedding nor the storage header.
  for (const listed of [await dee.realizations("dee", "big"), await dee.allRealizations()]) {
    const one = listed.find((x) => x.id === "r.big.dee");
    assert.ok(one !== undefined);
    assert.equal("realization" in one, false);
    assert.equal("body" in one, false);
    assert.equal(one.resources.length, r.resources.length);
  }
  assert.equal((await readAllocations(store)).table.recordsOf("r.big.dee").length > 3000, true);

  // Materialize: the materializer reads the realization, the revision's XIR and the facility model
  // through the same readers. The facility is unreachable (no credentials), so delivery waits; then
  // dematerialize gives up at once (teardownGiveUpMs 0) and the realization can go.
  const mz = new Materializer({
    store,
    connect: credentialsConnector(join(dataDir, "no-credentials")),
    backoffMs: 20,
    teardownGiveUpMs: 0,
  });
  try {
    const rec = await mz.create("dee", "big", "r", "dee");
    const part = rec.facilities.find((f) => f.facility === gen.name);
    assert.ok(part !== undefined);
    assert.ok(part.fragments > 3000, `${part.fragments} fragments`);
    assert.ok(part.resources.length > 0);
    const refused = await apiError(dee.relinquish("dee", "big", "r"));
    assert.equal(refused.status, 409);
    await mz.dematerialize("dee", "big", "r");
    const deadline = Date.now() + 10_000;
    while ((await mz.get("dee", "big", "r")) !== undefined) {
      assert.ok(Date.now() < deadline, "dematerialize did not finish");
      await new Promise((res) => setTimeout(res, 50));
    }
  } finally {
    mz.close();
  }
  await assert.rejects(
    mz.create("dee", "nope", "r", "dee"),
    (e: Error) => e instanceof PortalError && e.code === "not_found",
  );

  // Relinquish: the record, its chunks, the allocation header and its chunks all go.
  await dee.relinquish("dee", "big", "r");
  assert.equal((await apiError(dee.realization("dee", "big", "r"))).status, 404);
  assert.deepEqual(await keysUnder(keys.allRealizations()), []);
  assert.deepEqual(await keysUnder(keys.allRealizationChunks()), []);
  assert.deepEqual(await keysUnder(keys.allocations()), []);
  assert.deepEqual(await keysUnder(keys.allAllocationChunks()), []);

  // Deleting the experiment deletes its revision chunks (the facility goes in the last test).
  assert.ok((await keysUnder(keys.experimentRevisionChunks("dee", "big"))).length > 0);
  await dee.deleteExperiment("dee", "big");
  assert.deepEqual(await keysUnder(keys.allRevisionChunks()), []);
});

test("a 10,000-node revision pushes and reads back on etcd", async (t) => {
  const xir = lansXir("huge", 250, 40);
  const source = JSON.stringify(xir);
  await dee.createExperiment("dee", { name: "huge" });
  let started = Date.now();
  const rev = await dee.push("dee", "huge", source, "xir");
  const pushMs = Date.now() - started;
  assert.equal(rev.status, "compiled", JSON.stringify(rev.errors));
  assert.equal(rev.nodes, 10_000);
  started = Date.now();
  const back = await dee.revision("dee", "huge", 1);
  t.diagnostic(
    `10,000-node revision (${Math.round(source.length / 1024)} KiB of source, and as much XIR): push ${pushMs} ms, read ${Date.now() - started} ms`,
  );
  assert.equal(back.source, source);
  assert.deepEqual(back.xir, xir);
  assert.equal(back.revision.number, 1);
  const header = JSON.parse((await portal.store.get(keys.revisionBody("dee", "huge", 1)))!.value) as object;
  assert.deepEqual(Object.keys(header), ["body"]);
  await dee.deleteExperiment("dee", "huge");
  assert.deepEqual(await keysUnder(keys.allRevisionChunks()), []);
});

test("a push too big for etcd even compressed is a 422 naming the limit, and stores nothing", async () => {
  await dee.createExperiment("dee", { name: "noise" });
  // Random base64 barely compresses: some 1.8 MB in one transaction, over etcd's 1.5 MiB.
  const source = randomBytes(1_350_000).toString("base64");
  const err = await apiError(dee.push("dee", "noise", source, "xir"));
  assert.equal(err.status, 422, err.message);
  assert.match(
    err.message,
    /revision 1 of noise\.dee: the etcd store refused its 1\.\d MiB transaction .*--max-request-bytes/,
  );
  assert.equal((await dee.experiment("dee", "noise")).revisions, 0);
  assert.deepEqual(await keysUnder(keys.revisionBodies("dee", "noise")), []);
  assert.deepEqual(await keysUnder(keys.experimentRevisionChunks("dee", "noise")), []);
  await dee.deleteExperiment("dee", "noise");
});

test("records stored before chunking (one value each) still read through the API", async () => {
  const store = portal.store;
  await dee.createExperiment("dee", { name: "old" });
  // A pushed revision, then its body replaced by the old shape ({source, xir} in one value), bigger than the inline limit.
  const xir = lansXir("old", 8, 40);
  // Bare metal, as nodes were placed before VMs became the default: an embedding of that size.
  for (const n of xir.nodes) n.constraints.push({ prop: "metal", op: "==", value: true });
  await dee.push("dee", "old", JSON.stringify(xir), "xir");
  const source = `${JSON.stringify(xir)}\n`.repeat(2);
  await store.put(keys.revisionBody("dee", "old", 1), JSON.stringify({ source, xir }));
  const rev = await dee.revision("dee", "old", 1);
  assert.equal(rev.source, source);
  assert.deepEqual(rev.xir, xir);

  // A realization record with its embedding inline, as the portal wrote them before.
  const r = await dee.realize("dee", "old", { name: "r", accept: true });
  assert.equal(r.state, "accepted", r.diagnostics.join("\n"));
  const embedding = r.realization as Realization;
  const legacy: RealizationRecord = {
    name: "legacy",
    experiment: "old",
    project: "dee",
    revision: 1,
    state: "accepted",
    creator: "dee",
    created: new Date().toISOString(),
    expires: null,
    realization: { ...embedding, id: "legacy.old.dee" },
    diagnostics: [],
    resources: [],
  };
  assert.ok(JSON.stringify(legacy).length > 64 * 1024, "bigger than what is stored inline today");
  await store.put(keys.realization("dee", "old", "legacy"), JSON.stringify(legacy));
  const got = await dee.realization("dee", "old", "legacy");
  assert.deepEqual(got.realization, legacy.realization);
  assert.equal(got.id, "legacy.old.dee");
  const listed = (await dee.realizations("dee", "old")).map((x) => x.id).sort();
  assert.deepEqual(listed, ["legacy.old.dee", "r.old.dee"]);
  await dee.relinquish("dee", "old", "legacy");
  await dee.relinquish("dee", "old", "r");
  assert.deepEqual(await keysUnder(keys.allRealizations()), []);
  assert.deepEqual(await keysUnder(keys.allRealizationChunks()), []);
  await dee.deleteExperiment("dee", "old");

  // Deleting the big facility deletes its model's chunks.
  await admin.deleteFacility("gen3200");
  assert.deepEqual(await keysUnder(keys.allFacilityChunks()), []);
});
