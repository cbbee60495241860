/**
 * The UI plugin on a plain Fastify app over a small dist/ made here: files,
 * SPA fallback, caching and security headers, what it refuses (missing files,
 * paths outside dist, bad encodings), the not-built page, and the token relay's
 * filter. The relay's real exchange runs in browser.test.ts against a portal.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { webUi } from "../src/serve.ts";

let dir: string;
let app: FastifyInstance;
let relayed: string[] = [];

const INDEX = '<!DOCTYPE html><script type="module" src="/ui/assets/index-abc123.js"></script>';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "merge-web-serve-"));
  await mkdir(join(dir, "dist", "assets"), { recursive: true });
  await writeFile(join(dir, "dist", "index.html"), INDEX);
  await writeFile(join(dir, "dist", "assets", "index-abc123.js"), "console.log(1)");
  await writeFile(join(dir, "dist", "assets", "index-abc123.css"), "body{}");
  await writeFile(join(dir, "secret.txt"), "outside dist");
  app = Fastify();
  // Stands in for the provider's token endpoint: records what reaches it.
  app.post("/oidc/token", async (req) => {
    relayed.push(String(req.body));
    return { access_token: "t", token_type: "Bearer", expires_in: 60, origin: req.headers.origin ?? null };
  });
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_r, b, done) => done(null, b));
  await webUi(app, { distDir: join(dir, "dist") });
  await app.ready();
});

after(async () => {
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

test("serves index.html for the UI's own paths and /callback, with security headers and no caching", async () => {
  for (const url of ["/ui/", "/ui/projects/alice/experiments/demo", "/ui/admin", "/callback?code=x&state=y"]) {
    const r = await app.inject({ method: "GET", url });
    assert.equal(r.statusCode, 200, url);
    assert.equal(r.body, INDEX, url);
    assert.match(String(r.headers["content-type"]), /text\/html/);
    assert.match(String(r.headers["content-security-policy"]), /default-src 'self'; script-src 'self'/);
    assert.equal(r.headers["x-frame-options"], "DENY");
    assert.equal(r.headers["referrer-policy"], "no-referrer");
    assert.match(String(r.headers["cache-control"]), /no-cache|no-store/);
  }
});

test("serves hashed assets with their type, cached for good", async () => {
  const js = await app.inject({ method: "GET", url: "/ui/assets/index-abc123.js" });
  assert.equal(js.statusCode, 200);
  assert.equal(js.body, "console.log(1)");
  assert.match(String(js.headers["content-type"]), /text\/javascript/);
  assert.match(String(js.headers["cache-control"]), /immutable/);
  const css = await app.inject({ method: "GET", url: "/ui/assets/index-abc123.css" });
  assert.match(String(css.headers["content-type"]), /text\/css/);
});

test("redirects / and /ui to /ui/", async () => {
  for (const url of ["/", "/ui"]) {
    const r = await app.inject({ method: "GET", url });
    assert.equal(r.statusCode, 302, url);
    assert.equal(r.headers.location, "/ui/");
  }
});

test("a missing file is a 404, not the app; nothing outside dist is reachable", async () => {
  const gone = await app.inject({ method: "GET", url: "/ui/assets/index-old999.js" });
  assert.equal(gone.statusCode, 404);
  assert.match(gone.body, /no such file/);
  assert.equal(gone.headers["x-content-type-options"], "nosniff");
  for (const url of ["/ui/../secret.txt", "/ui/%2e%2e/secret.txt", "/ui/assets/..%2f..%2fsecret.txt"]) {
    const r = await app.inject({ method: "GET", url });
    assert.doesNotMatch(r.body, /outside dist/, url);
  }
  const bad = await app.inject({ method: "GET", url: "/ui/%E0%A4%A" });
  assert.equal(bad.statusCode, 400);
});

test("the token relay forwards only authorization-code grants of the web client, without a browser Origin", async () => {
  relayed = [];
  const form = (f: Record<string, string>) => ({
    method: "POST" as const,
    url: "/ui/token",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://127.0.0.1:1" },
    payload: new URLSearchParams(f).toString(),
  });
  const refused: Record<string, string>[] = [
    { grant_type: "refresh_token", client_id: "merge-web", refresh_token: "x" },
    { grant_type: "authorization_code", client_id: "mrg", code: "c" },
    { grant_type: "urn:ietf:params:oauth:grant-type:device_code", client_id: "merge-web" },
  ];
  for (const f of refused) {
    const r = await app.inject(form(f));
    assert.equal(r.statusCode, 400, JSON.stringify(f));
    assert.equal(r.json().error, "invalid_request");
  }
  assert.deepEqual(relayed, []);
  const ok = await app.inject(
    form({ grant_type: "authorization_code", client_id: "merge-web", code: "c", code_verifier: "v" }),
  );
  assert.equal(ok.statusCode, 200);
  assert.equal(ok.json().origin, null);
  assert.equal(ok.headers["cache-control"], "no-store");
  assert.equal(relayed.length, 1);
  assert.equal(new URLSearchParams(relayed[0]).get("code_verifier"), "v");
  const big = await app.inject(
    form({ grant_type: "authorization_code", client_id: "merge-web", code: "x".repeat(9000) }),
  );
  assert.equal(big.statusCode, 413);
});

test("without a build, the UI paths explain how to build it (and the app still starts)", async () => {
  const bare = Fastify();
  try {
    await webUi(bare, { distDir: join(dir, "nothing-here") });
    const r = await bare.inject({ method: "GET", url: "/ui/projects" });
    assert.equal(r.statusCode, 503);
    assert.match(r.body, /npm run build -w packages\/web/);
  } finally {
    await bare.close();
  }
});
