// A facility that lost its records (host rebooted, store reset) still completes a
// dematerialize: the portal sends the fragments, the driver builds the teardown
// from them, and every teardown action must succeed on a backend that knows
// nothing of the materialization (there is nothing to remove). An emulated link's
// teardown used to fail there ("its infrapod has not been created on this host")
// and hold the dematerialize until an operator acted.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openMemoryStore } from "@merge/store";
import { Driver } from "../../src/driver.ts";
import { LinuxBackend } from "../../src/linux/backend.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { Rex } from "../../src/rex.ts";
import { statusIs } from "../fixture.ts";
import { isClean, leftovers, skip, suiteHarness } from "./fixture.ts";

describe("dematerialize on a linux facility that lost its records", { skip }, () => {
  const h = suiteHarness();

  test("teardown from the portal's fragments alone (LANs and emulated links) completes, nothing left", async () => {
    const mzid = h.mzid("lost");
    const s = synthetic(6, { mzid, lanSize: 3 });
    const fragments = fragmentsFor(s.realization, s.experiment, s.facility);
    assert.ok(
      fragments.some((f) => f.op === "emulation.setup"),
      "the model has an emulated link",
    );
    const store = openMemoryStore();
    const driver = new Driver(store);
    const rex = new Rex({ store, backend: LinuxBackend.over(h.dp), leaseTtl: 5, teardownRetryMs: [] });
    await rex.start();
    try {
      const dag = await driver.dematerialize(mzid, fragments);
      assert.ok(dag.actions.some((a) => a.spec.kind === "emulation.destroy"));
      const done = await statusIs(driver, mzid, "dematerialized", 10_000).catch(async (e) => {
        const st = await driver.status(mzid);
        const failed = st.actions.filter((a) => a.state === "error").map((a) => `${a.id}: ${a.error}`);
        throw new Error(`${(e as Error).message}; failed: ${failed.join("; ")}`);
      });
      assert.equal(done.summary.errors, 0);
      assert.ok(isClean(await leftovers(prefixOf(mzid), h.dataDir)));
    } finally {
      await rex.stop();
      await store.close();
    }
  });
});
