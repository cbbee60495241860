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
  // Gone, and it says why: when it expired, how long after it was realized, that nobody accepted it.
  const gone = await apiError(ned.realization("ned", "e", "late"));
  assert.equal(gone.status, 404);
  const expired =
    /^late\.e\.ned expired at (\d\d:\d\d:\d\d) UTC, (\d+) s after it was realized, without being accepted/.exec(
      gone.message,
    );
  assert.ok(expired, gone.message);
  assert.equal(expired[1], late.expires?.slice(11, 19));
  assert.equal(expired[2], "1");
  for (const again of [
    ned.accept("ned", "e", "late"),
    ned.reject("ned", "e", "late"),
    ned.relinquish("ned", "e", "late"),
  ]) {
    const e = await apiError(again);
    assert.equal(e.status, 404);
    assert.match(e.message, /^late\.e\.ned expired at /);
  }
  // A name that never existed still does not exist; the tombstone sits on a lease and goes with it.
  assert.match(
    (await apiError(ned.realization("ned", "e", "never"))).message,
    /realization 'never\.e\.ned' does not exist/,
  );
  const tomb = await h.started.store.get(keys.expired("ned", "e", "late"));
  assert.ok(tomb?.lease, "the tombstone is on a lease");
  // Realizing the name again and relinquishing it: then it simply does not exist.
  await ned.realize("ned", "e", { name: "late" });
  await ned.relinquish("ned", "e", "late");
  assert.match(
    (await apiError(ned.realization("ned", "e", "late"))).message,
    /realization 'late\.e\.ned' does not exist/,
  );
  const names = (await ned.realizations("ned", "e")).map((r) => r.name).sort();
  assert.deepEqual(names, ["kept", "now"]);
  const holders = new Set(
    (await h.admin.resources({ allocated: true })).flatMap((r) => r.holders.map((x) => x.realization)),
  );
  assert.deepEqual([...holders].sort(), ["kept.e.ned", "now.e.ned"]);
  // What is left on the expiry index: the leases of the accepted ones (pending entries went with them).
  assert.equal((await h.started.store.range(keys.expiries())).length, 2);
  // A materialized realization cannot be released until it is dematerialized.
  await h.started.store.put(keys.materialization("ned", "e", "kept"), "{}");
  const busy = await apiError(ned.relinquish("ned", "e", "kept"));
  assert.equal(busy.status, 409);
  assert.match(busy.message, /dematerialize it first/);
  await h.started.store.delete(keys.materialization("ned", "e", "kept"));
  await ned.relinquish("ned", "e", "kept");
  await ned.relinquish("ned", "e", "now");
});
