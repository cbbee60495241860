import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { PortalClient } from "../src/client/index.ts";
import { startPortal } from "../src/main.ts";
import { API_RESOURCE, WEB_CLIENT } from "../src/oidc.ts";
import { apiError, Browser, type Harness, redeemCode, signInOnTheWeb, startHarness } from "./harness.ts";

let h: Harness;
before(async () => {
  h = await startHarness();
  await h.user("rita");
});
after(async () => {
  await h?.stop();
});

const webSignIn = async (user: string, password: string) => (await signInOnTheWeb(h.url, user, password)).access_token;

test("a portal configured with an external issuer accepts that issuer's tokens and embeds no provider", async () => {
  await h.user("sam");
  const jwt = await webSignIn("sam", "pw-sam-secret");
  // iat has a resolution of seconds: the account below must be made in a later second than this token.
  await sleep(1100);
  const dataDir = await mkdtemp(join(tmpdir(), "merge-portal-ext-"));
  const other = await startPortal({
    dataDir,
    port: 0,
    externalIssuer: { issuer: `${h.url}/oidc`, jwksUri: `${h.url}/oidc/jwks`, audience: API_RESOURCE },
  });
  try {
    const anon = new PortalClient(other.url);
    // Accounts are the portal's own: sam must exist (and be active) here too.
    assert.equal((await apiError(new PortalClient(other.url, jwt).whoami())).status, 401);
    await anon.register({ name: "sam", email: "sam@example.org", password: "another-password" });
    const admin = new PortalClient(other.url, (await anon.login("admin", other.admin.password as string)).token);
    await admin.setUserState("sam", "active");
    // A token issued before this account existed was issued to someone else of that name: refused.
    const early = await apiError(new PortalClient(other.url, jwt).whoami());
    assert.equal(early.status, 401);
    assert.match(early.message, /revoked/);
    await sleep(1000); // iat has a resolution of seconds
    const fresh = await webSignIn("sam", "pw-sam-secret");
    assert.equal((await new PortalClient(other.url, fresh).whoami()).name, "sam");
    assert.equal((await fetch(`${other.url}/oidc/.well-known/openid-configuration`)).status, 404);
  } finally {
    await other.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("web sign-in: authorization code + PKCE gives an access token the API accepts", async () => {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const redirect = `${h.url}/callback`;
  const auth = new URL(`${h.url}/oidc/auth`);
  for (const [k, v] of Object.entries({
    client_id: WEB_CLIENT,
    response_type: "code",
    redirect_uri: redirect,
    scope: "openid api",
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: "s1",
  })) {
    auth.searchParams.set(k, v);
  }
  const b = new Browser();
  const loginPage = await b.go(auth.href);
  const action = /action="([^"]+\/login)"/.exec(loginPage.html)?.[1];
  assert.ok(action, loginPage.html);
  const back = await b.go(new URL(action, h.url).href, {
    method: "POST",
    form: { username: "rita", password: "pw-rita-secret" },
    stopAt: redirect,
  });
  const cb = new URL(back.url);
  assert.equal(cb.searchParams.get("state"), "s1");
  const code = cb.searchParams.get("code");
  assert.ok(code, back.url);

  // The code alone is not enough: PKCE needs the verifier.
  const token = (extra: Record<string, string>) => redeemCode(h.url, code, redirect, extra);
  assert.equal((await token({ code_verifier: randomBytes(32).toString("base64url") })).status, 400);
  const res = await token({ code_verifier: verifier });
  const body = (await res.json()) as { access_token?: string };
  // A used code (even after a failed attempt) may be revoked; start over if so.
  if (!res.ok) assert.fail(JSON.stringify(body));
  const jwt = body.access_token as string;
  const [, payload] = jwt.split(".");
  assert.equal(JSON.parse(Buffer.from(payload as string, "base64url").toString()).aud, API_RESOURCE);
  const rita = new PortalClient(h.url, jwt);
  assert.equal((await rita.whoami()).name, "rita");

  // A tampered token is refused.
  const parts = jwt.split(".");
  const forged = Buffer.from(
    JSON.stringify({ ...JSON.parse(Buffer.from(parts[1] as string, "base64url").toString()), sub: "admin" }),
  ).toString("base64url");
  const e = await apiError(new PortalClient(h.url, `${parts[0]}.${forged}.${parts[2]}`).whoami());
  assert.equal(e.status, 401);

  // Freezing revokes every token at once (and activating again does not bring them back).
  await h.admin.setUserState("rita", "frozen");
  assert.equal((await apiError(rita.whoami())).status, 401);
  await h.admin.setUserState("rita", "active");
  assert.equal((await apiError(rita.whoami())).status, 401);
});

test("the authorization endpoint refuses requests without PKCE", async () => {
  const auth = new URL(`${h.url}/oidc/auth`);
  auth.searchParams.set("client_id", WEB_CLIENT);
  auth.searchParams.set("response_type", "code");
  auth.searchParams.set("redirect_uri", `${h.url}/callback`);
  auth.searchParams.set("scope", "openid api");
  const res = await new Browser().go(auth.href, { stopAt: `${h.url}/callback` });
  assert.match(res.url, /error=invalid_request/);
});
