// Start-up reconciliation: a facility starting on a linux data directory sweeps
// the kernel objects and files of materializations its store no longer has
// (left by a crash or a reset store) and keeps those it has. Needs root and
// network namespaces; skipped with the reason otherwise.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { synthetic } from "@merge/materialize";
import { openMemoryStore } from "@merge/store";
import { makeCerts } from "../../src/certs.ts";
import { startFacility } from "../../src/facility.ts";
import { LinuxBackend } from "../../src/linux/backend.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { prefixesOwned } from "../../src/linux/state.ts";
import { keys, type MzInfo } from "../../src/task.ts";
import { experiment, type Harness, harness, isClean, leftovers, link, localPlan, node, skip } from "./fixture.ts";

const pair = () =>
  experiment(
    "pair",
    [node("a", [["10.0.0.1/24"]]), node("b", [["10.0.0.2/24"]])],
    [
      link("ab", [
        ["a", 0],
        ["b", 0],
      ]),
    ],
  );

describe("start-up reconciliation on the linux backend", { skip }, () => {
  let h: Harness;
  const certs = mkdtempSync(join(tmpdir(), "mrg-reconcile-certs-"));
  before(async () => {
    h = await harness();
    makeCerts(certs);
  });
  after(async () => {
    rmSync(certs, { recursive: true, force: true });
    await h?.close();
  });

  test("materializations the store does not have are swept; those it has stay and keep working", {
    timeout: 120_000,
  }, async () => {
    const orphan = h.mzid("orphan");
    const live = h.mzid("live");
    await h.dp.materialize(localPlan(pair(), orphan));
    await h.dp.materialize(localPlan(pair(), live));
    assert.ok(!isClean(await leftovers(prefixOf(orphan), h.dataDir)), "the orphan exists before the start");

    // The store knows only `live` (as the driver records it); `orphan` was forgotten.
    const store = openMemoryStore();
    const info: MzInfo = { mzid: live, vindex: 1, phase: "materializing", nodes: [], links: [], created: "" };
    await store.put(keys.info(live), JSON.stringify(info));
    const logs: string[] = [];
    const backend = LinuxBackend.over(h.dp);
    const facility = await startFacility({
      store,
      backend,
      model: synthetic(1).facility,
      certs,
      log: (m) => logs.push(m),
    });
    try {
      const left = await leftovers(prefixOf(orphan), h.dataDir);
      assert.ok(isClean(left), `orphan left behind: ${JSON.stringify(left)}`);
      assert.ok(
        logs.some((l) => l.includes(`reconcile: swept ${prefixOf(orphan)}: not in the facility store`)),
        logs.join("\n"),
      );
      assert.deepEqual(prefixesOwned(h.dataDir), [prefixOf(live)]);
      // The live one is untouched: its nodes still reach each other.
      const r = await h.dp.run(live, "a", ["ping", "-c", "1", "-W", "2", "10.0.0.2"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    } finally {
      await facility.close();
      await store.close();
    }
  });
});
