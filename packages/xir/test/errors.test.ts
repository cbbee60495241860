import assert from "node:assert/strict";
import { test } from "node:test";
import { ERROR_CATALOG, errorKind, MergeError } from "../src/errors.ts";

test("every catalog entry has an HTTP error status and a meaning", () => {
  for (const [domain, codes] of Object.entries(ERROR_CATALOG)) {
    for (const [code, kind] of Object.entries(codes)) {
      assert.ok(kind.status >= 400 && kind.status < 600, `${domain}.${code}: status ${kind.status}`);
      assert.ok(kind.meaning.length > 10, `${domain}.${code}: say what it means`);
    }
  }
});

test("an error takes its status from the catalog and has one id across the system", () => {
  const e = new MergeError("store", "conflict", "x");
  assert.equal(e.status, 409);
  assert.equal(e.id, "store.conflict");
  assert.equal(new MergeError("api", "not_found", "x").id, "not_found");
  assert.equal(new MergeError("xdc", "host", "x", { status: 418 }).status, 418);
  assert.equal(errorKind("store", "nope"), undefined);
  assert.equal(errorKind("store", "toString"), undefined, "only the catalog's own codes");
  class PlanError extends MergeError<"plan"> {}
  assert.equal(new PlanError("plan", "invalid", "x").name, "PlanError");
});
