import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { keys } from "../src/objects.ts";
import { apiError, chainXir, type Harness, startHarness } from "./harness.ts";

let h: Harness;
before(async () => {
  h = await startHarness({ acceptTimeoutSeconds: 1 });
});
after(async () => {
  await h?.stop();
});

test("a realization not accepted within the timeout is released; an accepted one is held", async () => {
  const ned = await h.user("ned");
  await ned.createExperiment("ned", { name: "e" });
  await ned.push("ned", "e", chainXir("e", 2), "xir");
  const late = await ned.realize("ned", "e", { name: "late" });
  const kept = await ned.realize("ned", "e", { name: "kept" });
  const now = await ned.realize("ned", "e", { name: "now", accept: true });
  assert.equal(late.state, "pending");
  assert.equal(kept.state, "pending");
  assert.equal(now.state, "accepted");
  await ned.accept("ned", "e", "kept");
  // The sweeper runs every second; give it three.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal((await apiError(ned.realization("ned", "e", "late"))).status, 404);
  assert.equal((await apiError(ned.accept("ned", "e", "late"))).status, 404);
  const names = (await ned.realizations("ned", "e")).map((r) => r.name).sort();
  assert.deepEqual(names, ["kept", "now"]);
  const holders = new Set(
    (await h.admin.resources({ allocated: true })).flatMap((r) => r.holders.map((x) => x.realization)),
  );
  assert.deepEqual([...holders].sort(), ["kept.e.ned", "now.e.ned"]);
  assert.equal((await h.started.store.range(keys.expiries())).length, 0);
  // A materialized realization cannot be released until it is dematerialized.
  await h.started.store.put(keys.materialization("ned", "e", "kept"), "{}");
  const busy = await apiError(ned.relinquish("ned", "e", "kept"));
  assert.equal(busy.status, 409);
  assert.match(busy.message, /dematerialize it first/);
  await h.started.store.delete(keys.materialization("ned", "e", "kept"));
  await ned.relinquish("ned", "e", "kept");
  await ned.relinquish("ned", "e", "now");
});
