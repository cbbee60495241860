// A dematerialize arriving while the materialize request is still being stored
// (the portal retries, a user dematerializes at once) must win cleanly: the
// materialization ends dematerializing with only its teardown DAG, never back
// to materializing, never with setup actions left among the teardown ones.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openMemoryStore } from "@merge/store";
import { Driver } from "../src/driver.ts";
import { keys, type MzInfo } from "../src/task.ts";

const store = openMemoryStore();
after(() => store.close());

test("materialize and dematerialize of one materialization at once: the later request wins whole", async () => {
  const driver = new Driver(store);
  for (let i = 0; i < 20; i++) {
    const mzid = `r${i}.race.proj`;
    const s = synthetic(30, { mzid, lanSize: 5 });
    const fragments = fragmentsFor(s.realization, s.experiment, s.facility);
    await Promise.all([driver.materialize(mzid, fragments), driver.dematerialize(mzid, fragments)]);
    const info = JSON.parse((await store.get(keys.info(mzid)))!.value) as MzInfo;
    assert.equal(info.phase, "dematerializing", `${mzid}: the dematerialize came second and stands`);
    const dag = await driver.readDag(mzid);
    assert.ok(dag.tasks.length > 0);
    assert.deepEqual(
      dag.tasks.filter((t) => t.phase !== "teardown").map((t) => t.id),
      [],
      `${mzid}: only teardown tasks`,
    );
    assert.deepEqual(
      dag.actions.filter((a) => !a.task.startsWith("teardown")).map((a) => a.id),
      [],
      `${mzid}: no setup action left`,
    );
  }
});
