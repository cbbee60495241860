/**
 * Secrets never reach the request log. A portal logs to a captured stream
 * while a user registers, signs in with a password (API token), signs in
 * through the web flow (cookies, authorization code in the redirect's query,
 * PKCE verifier, JWT access and refresh tokens), starts a device sign-in (user
 * code in the query), mistypes a password, and makes authenticated calls with
 * each token; then no secret value appears anywhere in the log, while the
 * requests themselves do.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, test } from "node:test";
import { PortalClient } from "../src/client/index.ts";
import { REDACTED, urlForLog } from "../src/logging.ts";
import { type Started, startPortal } from "../src/main.ts";
import { CLI_CLIENT } from "../src/oidc.ts";
import { authorizationCode, Browser, redeemCode } from "./harness.ts";

let dataDir: string;
let started: Started;
let log = "";

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "merge-portal-logging-"));
  const stream = new PassThrough();
  stream.setEncoding("utf8");
  stream.on("data", (c: string) => {
    log += c;
  });
  started = await startPortal({ dataDir, port: 0, logStream: stream });
});

after(async () => {
  try {
    await started?.stop();
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

/** Follows redirects by hand and remembers every cookie value the portal set. */
test("passwords, tokens, codes and cookies never appear in the request log", async () => {
  const url = started.url;
  const adminPassword = started.admin.password as string;
  const password = `pw-${randomBytes(9).toString("hex")}`;
  const anon = new PortalClient(url);
  const admin = new PortalClient(url, (await anon.login("admin", adminPassword)).token);
  await anon.register({ name: "lou", email: "lou@example.org", password });
  await admin.setUserState("lou", "active");
  await assert.rejects(anon.login("lou", `${password}-typo`));

  // Password → API token, then an authenticated call with it.
  const apiToken = (await anon.login("lou", password)).token;
  assert.equal((await new PortalClient(url, apiToken).whoami()).name, "lou");

  // Web sign-in: authorization code + PKCE; the code comes back in the query of /callback.
  const { code, verifier, redirect, callback, browser } = await authorizationCode(url, "lou", password, {
    offline: true,
  });
  // The browser lands on /callback?code=… (404 here: no UI plugin, but the request is logged).
  await fetch(callback);
  const tokenRes = await redeemCode(url, code, redirect, { code_verifier: verifier });
  const tokens = (await tokenRes.json()) as { access_token: string; refresh_token?: string; id_token?: string };
  assert.ok(tokens.access_token, JSON.stringify(tokens));
  assert.equal((await new PortalClient(url, tokens.access_token).whoami()).name, "lou");

  // Device sign-in: the user code travels in the verification URL's query.
  const device = (await (
    await fetch(`${url}/oidc/device/auth`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: CLI_CLIENT, scope: "openid api" }),
    })
  ).json()) as { user_code: string; device_code: string; verification_uri_complete: string };
  await new Browser().go(device.verification_uri_complete);

  await new Promise((r) => setImmediate(r)); // let the stream deliver the last lines
  const secrets: Record<string, string> = {
    "admin password": adminPassword,
    password,
    "API token": apiToken,
    "API token secret": apiToken.split(".")[1] as string,
    "access token": tokens.access_token,
    "access token signature": tokens.access_token.split(".")[2] as string,
    "authorization code": code,
    "PKCE verifier": verifier,
    "device code": device.device_code,
    "user code": device.user_code,
    "user code (bare)": device.user_code.replace("-", ""),
    ...(tokens.refresh_token ? { "refresh token": tokens.refresh_token } : {}),
    ...(tokens.id_token ? { "id token": tokens.id_token } : {}),
    // (cookies the provider cleared again have empty values)
    ...Object.fromEntries([...browser.cookies].filter(([, v]) => v !== "").map(([k, v]) => [`cookie ${k}`, v])),
  };
  assert.ok(Object.keys(secrets).filter((k) => k.startsWith("cookie ")).length >= 2, "the web flow set cookies");
  if (process.env.MERGE_SHOW_LOG) process.stderr.write(log);
  // The log did capture these requests (so the checks below look at something real).
  for (const seen of ["/login", "/whoami", "/oidc/token", "/callback?", "/oidc/device?user_code="]) {
    assert.ok(log.includes(seen), `the log shows ${seen}`);
  }
  assert.ok(log.includes(`code=${REDACTED}`), "the callback's code is logged redacted");
  for (const [what, value] of Object.entries(secrets)) {
    assert.ok(value.length >= 6, `${what} is long enough to search for`);
    assert.ok(!log.includes(value), `the ${what} appears in the log`);
    assert.ok(!log.includes(encodeURIComponent(value)), `the ${what} appears URL-encoded in the log`);
  }
});

test("query values are redacted unless known harmless; the path and parameter names stay", () => {
  assert.equal(
    urlForLog("/callback?code=abc&state=xyz&client_id=merge-web"),
    `/callback?code=${REDACTED}&state=${REDACTED}&client_id=merge-web`,
  );
  assert.equal(urlForLog("/oidc/device?user_code=BCDF-GHJK"), `/oidc/device?user_code=${REDACTED}`);
  assert.equal(urlForLog("/resources?facility=phobos&allocated=true"), "/resources?facility=phobos&allocated=true");
  assert.equal(urlForLog("/whoami"), "/whoami");
});
