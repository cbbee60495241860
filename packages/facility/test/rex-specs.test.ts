// Where action specs are stored: in compressed chunks outside rex's watched
// range (`/cogspec/`), and, for DAGs stored before that, one a key under
// `/cogs/mz/<mzid>/spec/`: rex runs both, the driver reads and deletes both.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openMemoryStore, openSqliteStore, type Store } from "@merge/store";
import { materializeDag } from "../src/dag.ts";
import { Driver, rangeAll } from "../src/driver.ts";
import { keys, ROOT, SPEC_ROOT, storedAction } from "../src/task.ts";
import { startRex, statusIs, until } from "./fixture.ts";

const stores: Store[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of stores) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A driver on a fresh memory store. */
function onMemory() {
  const store = openMemoryStore();
  stores.push(store);
  return { store, driver: new Driver(store) };
}

/** Resolves once nothing of the materialization is left in the store, in either spec layout. */
function gone(store: Store, mzid: string) {
  return until(`${mzid}'s keys gone`, async () => {
    const left = [...(await store.range(ROOT)), ...(await store.range(SPEC_ROOT))];
    return left.some((kv) => kv.key.includes(encodeURIComponent(mzid))) ? undefined : true;
  });
}

function fragments(n: number, mzid: string) {
  const s = synthetic(n, { mzid, lanSize: 4 });
  return fragmentsFor(s.realization, s.experiment, s.facility);
}

test("specs are stored in chunks outside the watched range; rex on sqlite runs them and teardown deletes them", async () => {
  const dir = mkdtempSync(join(tmpdir(), "rex-specs-"));
  dirs.push(dir);
  const store = openSqliteStore({ dir });
  stores.push(store);
  const driver = new Driver(store);
  const mzid = "chunks.exp.proj";
  const dag = await driver.materialize(mzid, fragments(250, mzid));
  // Nothing of the specs under /cogs/: the watch carries only the actions' small state.
  assert.deepEqual(await store.range(keys.legacySpecs(mzid)), []);
  const chunks = await rangeAll(store, keys.specs(mzid));
  assert.ok(chunks.length > 0 && chunks.length < dag.actions.length / 10, `${chunks.length} chunks`);
  const specBytes = JSON.stringify(dag.actions.map((a) => a.spec)).length;
  const stored = chunks.reduce((n, kv) => n + kv.value.length, 0);
  assert.ok(stored < specBytes / 3, `specs stored in ${stored} bytes, ${specBytes} as JSON`);
  // Read back whole, in the DAG's terms.
  const read = new Map((await driver.readDag(mzid)).actions.map((a) => [keys.action(a), a.spec]));
  assert.deepEqual(read, new Map(dag.actions.map((a) => [keys.action(a), a.spec])));

  const { rex } = await startRex(store, { durations: { imaging: 0, power: 0, network: 0, infrapod: 0 } });
  try {
    await statusIs(driver, mzid, "active");
    await driver.dematerialize(mzid);
    await statusIs(driver, mzid, "dematerialized");
    await gone(store, mzid);
  } finally {
    await rex.stop();
  }
});

test("a DAG stored with one spec a key under /cogs/ (before chunks) runs, reads back and is torn down", async () => {
  const { store, driver } = onMemory();
  const mzid = "legacy.exp.proj";
  const info = await driver.notifyIncoming(mzid);
  const dag = materializeDag(mzid, fragments(12, mzid));
  // The layout as an earlier driver wrote it: spec and state per action, then tasks, then the record.
  for (const a of dag.actions) {
    await store.put(
      `${keys.legacySpecs(mzid)}${keys.action(a).slice(keys.actions(mzid).length)}`,
      JSON.stringify(a.spec),
    );
    await store.put(keys.action(a), storedAction(a));
  }
  for (const t of dag.tasks) await store.put(keys.task(mzid, t.id), JSON.stringify(t));
  await store.put(keys.info(mzid), JSON.stringify({ ...info, phase: "materializing" }));

  const read = new Map((await driver.readDag(mzid)).actions.map((a) => [keys.action(a), a.spec]));
  assert.deepEqual(read, new Map(dag.actions.map((a) => [keys.action(a), a.spec])));
  const { rex } = await startRex(store, { durations: { imaging: 0, power: 0, network: 0, infrapod: 0 } });
  try {
    const done = await statusIs(driver, mzid, "active");
    assert.equal(done.summary.complete, dag.actions.length);
    // Teardown is built from the stored (legacy) specs and written in today's layout; the old keys go.
    const teardown = await driver.dematerialize(mzid);
    assert.ok(teardown.actions.length > 0);
    assert.deepEqual(await store.range(keys.legacySpecs(mzid)), []);
    await statusIs(driver, mzid, "dematerialized");
    // Discarded once teardown is done: nothing of the materialization is left, in either layout.
    await gone(store, mzid);
  } finally {
    await rex.stop();
  }
});

test("a spec chunk that does not decode: rex reports it and holds its task, and reading the DAG says which key", async () => {
  const { store, driver } = onMemory();
  const mzid = "badchunk.exp.proj";
  await driver.notifyIncoming(mzid);
  // Stored with its record still incoming, so no worker runs it before the chunk is spoiled.
  const dag = await driver.materialize(mzid, fragments(8, mzid));
  const nodes = (await rangeAll(store, keys.taskSpecs(mzid, "nodes")))[0]!;
  await store.put(nodes.key, "not base64 gzip {");
  await assert.rejects(driver.readDag(mzid), (err: Error) => err.message.includes(nodes.key));

  const { rex, journal } = await startRex(store, { durations: { imaging: 0, power: 0, network: 0, infrapod: 0 } });
  try {
    await statusIs(driver, mzid, "error").catch(() => undefined);
    // The nodes' actions have no key yet (impliedAction): the chunk is what is in error, and the task waits.
    const errors = await until("the chunk in error", async () => {
      const e = journal.of("error");
      return e.length ? e : undefined;
    });
    for (const e of errors) {
      assert.ok("error" in e && e.error.includes(nodes.key), `error names the chunk: ${"error" in e ? e.error : ""}`);
    }
    await rex.idle();
    assert.ok(
      !journal.of("complete").some((e) => "key" in e && e.key.includes("/action/nodes/")),
      "no action of the task with the spoiled chunk ran",
    );
    assert.ok(
      dag.actions.some((a) => a.task === "nodes"),
      "the task has actions",
    );
  } finally {
    await rex.stop();
  }
});
