import assert from "node:assert/strict";
import { test } from "node:test";
import { needsObservation, nextStep } from "../src/materialize/reconcile.ts";

test("materialize: send when the facility lacks it, adopt when it runs it, then nothing", () => {
  const want = { want: "materialize" as const, delivered: false };
  assert.equal(needsObservation(want), true);
  assert.equal(nextStep(want, "dematerialized"), "materialize");
  assert.equal(nextStep(want, "incoming"), "materialize");
  for (const s of ["materializing", "active", "error"] as const) assert.equal(nextStep(want, s), "adopt");
  const done = { want: "materialize" as const, delivered: true };
  assert.equal(needsObservation(done), false);
  assert.equal(nextStep(done, undefined), "done");
});

test("dematerialize: send the request, wait while the facility tears down, release when it is gone", () => {
  const ask = { want: "dematerialize" as const, delivered: false };
  assert.equal(needsObservation(ask), false);
  assert.equal(nextStep(ask, undefined), "dematerialize");
  const asked = { want: "dematerialize" as const, delivered: true };
  assert.equal(needsObservation(asked), true);
  assert.equal(nextStep(asked, "dematerializing"), "wait");
  assert.equal(nextStep(asked, "error"), "wait");
  assert.equal(nextStep(asked, "dematerialized"), "release");
});
