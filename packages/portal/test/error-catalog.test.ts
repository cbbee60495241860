/**
 * Errors of every domain of the catalog (`@merge/xir/errors`) answer with the
 * status the catalog gives them, under the API code of that status; a service
 * that is down is a 503 that says which, never a 500 with its internals.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { StoreError } from "@merge/store";
import type { PortalPlugin } from "../src/server.ts";
import { type Harness, startHarness } from "./harness.ts";

const thrower: PortalPlugin = async (app) => {
  app.get("/test/store-conflict", { config: { access: "public" } }, async () => {
    throw new StoreError("conflict", "updating /x: 32 conflicting writers");
  });
  app.get("/test/store-down", { config: { access: "public" } }, async () => {
    throw new StoreError("unavailable", "etcd at 127.0.0.1:2379: connection refused");
  });
  app.get("/test/plain", { config: { access: "public" } }, async () => {
    throw new Error("secret internal detail");
  });
};

describe("the portal answers catalog errors by the catalog", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ plugins: [thrower] });
  });
  after(() => h?.stop());

  const get = async (path: string) => {
    const r = await fetch(`${h.url}${path}`);
    return { status: r.status, body: (await r.json()) as { error: string; message: string } };
  };

  test("a store CAS that gave up is a 409 conflict with its message", async () => {
    const r = await get("/test/store-conflict");
    assert.equal(r.status, 409);
    assert.equal(r.body.error, "conflict");
    assert.match(r.body.message, /conflicting writers/);
  });

  test("an unreachable store is a 503 naming the catalog code, without the internals", async () => {
    const r = await get("/test/store-down");
    assert.equal(r.status, 503);
    assert.equal(r.body.error, "unavailable");
    assert.match(r.body.message, /store\.unavailable/);
    assert.doesNotMatch(r.body.message, /127\.0\.0\.1/);
  });

  test("an error outside the catalog stays an opaque 500", async () => {
    const r = await get("/test/plain");
    assert.equal(r.status, 500);
    assert.equal(r.body.error, "internal");
    assert.doesNotMatch(r.body.message, /secret/);
  });
});
