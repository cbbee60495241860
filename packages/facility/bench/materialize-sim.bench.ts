// A 1,000-node materialization on the sim backend with zero modeled durations:
// what is measured is rex's own overhead (claims, outcomes, watches) per action.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCase, defineBench } from "@merge/bench";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openStore, type Store } from "@merge/store";
import { startEtcd } from "@merge/store/testing/etcd";
import { Driver } from "../src/driver.ts";
import { Rex } from "../src/rex.ts";
import { SimBackend, ZERO_DURATIONS } from "../src/sim/sim.ts";

const NODES = 1000;
const MZID = "bench.exp.proj";

async function materialize(store: Store) {
  const s = synthetic(NODES, { mzid: MZID, lanSize: 10 });
  const fragments = fragmentsFor(s.realization, s.experiment, s.facility);
  const driver = new Driver(store);
  let completed = 0;
  let wake = () => {};
  const rex = new Rex({
    store,
    backend: new SimBackend({ durations: ZERO_DURATIONS }),
    concurrency: 256,
    onEvent: (e) => {
      if (e.type === "complete") completed++;
      if (e.type === "error") throw new Error(`${e.key}: ${e.error}`);
      wake();
    },
  });
  await rex.start();
  return {
    run: async () => {
      const t0 = performance.now();
      // The driver writes the DAG; rex starts only once the materialization record
      // (written last) appears, so what follows is rex alone.
      const dag = await driver.materialize(MZID, fragments);
      const t1 = performance.now();
      while (completed < dag.actions.length) await new Promise<void>((r) => (wake = r));
      const t2 = performance.now();
      const s = (t2 - t1) / 1000;
      const total = (t2 - t0) / 1000;
      const st = await driver.status(MZID);
      if (st.summary.status !== "active") throw new Error(`materialization is ${st.summary.status}, not active`);
      await rex.stop();
      return { actions: dag.actions.length, seconds: s, total };
    },
    fields: (r: { actions: number; seconds: number; total: number }) => ({
      nodes: NODES,
      actions: r.actions,
      /** Actions per second of rex alone (claims, backend calls, outcomes, watches). */
      ops_per_s: Math.round(r.actions / r.seconds),
      /** Including the driver building and storing the DAG. */
      with_driver_ops_per_s: Math.round(r.actions / r.total),
    }),
  };
}

export default defineBench({
  name: "materialize-sim",
  cases: {
    sqlite: benchCase(async () => {
      const dir = mkdtempSync(join(tmpdir(), "mz-bench-"));
      const store = openStore({ backend: "sqlite", dir });
      const m = await materialize(store);
      return {
        ...m,
        targets: { min: { ops_per_s: 2000 } },
        cleanup: async () => {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }),
    etcd: benchCase(async () => {
      const etcd = await startEtcd();
      const store = openStore({ backend: "etcd", endpoints: etcd.endpoints });
      const m = await materialize(store);
      return {
        ...m,
        cleanup: async () => {
          await store.close();
          await etcd.stop();
        },
      };
    }),
  },
});
