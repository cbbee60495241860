import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { PortalClient } from "../src/client/index.ts";
import { type Harness, startHarness } from "./harness.ts";

let h: Harness;
let kim: PortalClient;
let token: string;
before(async () => {
  h = await startHarness();
  kim = await h.user("kim");
  token = kim.token as string;
  await kim.createExperiment("kim", { name: "exp" });
});
after(async () => {
  await h?.stop();
});

async function send(method: string, path: string, body?: string, contentType = "application/json") {
  const res = await fetch(h.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": contentType }) },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as { error: string; message: string; field?: string } };
}

describe("bad input gets a clear 4xx and changes nothing", () => {
  test("unknown fields are rejected by name", async () => {
    const r = await send("POST", "/projects/kim/experiments", JSON.stringify({ name: "e2", admin: true }));
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "bad_request");
    assert.equal(r.body.field, "admin");
    assert.match(r.body.message, /unknown field 'admin'/);
  });

  test("wrong types are rejected, not coerced", async () => {
    const r = await send("POST", "/projects/kim/experiments", JSON.stringify({ name: 42 }));
    assert.equal(r.status, 400);
    assert.equal(r.body.field, "name");
    const r2 = await send(
      "POST",
      "/projects/kim/experiments/exp/realizations",
      JSON.stringify({ name: "r", revision: "1" }),
    );
    assert.equal(r2.status, 400);
    assert.equal(r2.body.field, "revision");
    const r3 = await send("POST", "/projects/kim/experiments", JSON.stringify({ name: "e3", visibility: "secret" }));
    assert.equal(r3.status, 400);
    assert.equal(r3.body.field, "visibility");
  });

  test("missing fields name the field", async () => {
    const r = await send("POST", "/users", JSON.stringify({ name: "zed", email: "z@example.org" }));
    assert.equal(r.status, 400);
    assert.equal(r.body.field, "password");
    assert.match(r.body.message, /missing required field 'password'/);
  });

  test("names that could traverse paths or break keys are refused", async () => {
    for (const bad of ["..", "../etc", "a/b", "A", "a.b", "x".repeat(40), "a b", "%00"]) {
      const r = await send("POST", "/projects", JSON.stringify({ name: bad }));
      assert.equal(r.status, 400, bad);
      assert.equal(r.body.field, "name");
      assert.match(r.body.message, /lowercase letters and digits/);
    }
    for (const path of [
      "/projects/..%2f..%2fetc/experiments",
      "/projects/kim/experiments/..%2fkim",
      "/users/..%2froot/keys",
    ]) {
      const r = await send("GET", path);
      assert.equal(r.status, 400, path);
    }
    assert.deepEqual(readdirSync(join(h.dataDir, "proj")).sort(), ["admin", "kim"]);
  });

  test("huge bodies get 413; pushes have their own, larger limit", async () => {
    const big = JSON.stringify({ name: "big", description: "x".repeat(2 * 1024 * 1024) });
    const r = await send("POST", "/projects/kim/experiments", big);
    assert.equal(r.status, 413);
    assert.equal(r.body.error, "too_large");
    const huge = JSON.stringify({ source: "x".repeat(17 * 1024 * 1024), lang: "xir" });
    const r2 = await send("POST", "/projects/kim/experiments/exp/revisions", huge);
    assert.equal(r2.status, 413);
    assert.equal((await kim.experiment("kim", "exp")).revisions, 0);
  });

  test("broken JSON and wrong content types", async () => {
    const r = await send("POST", "/projects", "{not json");
    assert.equal(r.status, 400);
    const r2 = await send("POST", "/projects", "name=x", "application/x-www-form-urlencoded");
    assert.equal(r2.status, 415);
    assert.equal(r2.body.error, "unsupported");
  });

  test("unknown routes say so", async () => {
    const r = await send("GET", "/nope");
    assert.equal(r.status, 404);
    assert.match(r.body.message, /no such API route: GET \/nope/);
  });
});
