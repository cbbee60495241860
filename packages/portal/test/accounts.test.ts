/**
 * Accounts held against their own users: simultaneous password guesses all
 * count before any is checked (one portal, and two replicas on one store);
 * tokens name the user's id and token generation, so a deleted and
 * re-registered name, a password change or a freeze leaves every earlier
 * token (API, access, refresh) dead; changing one's own password needs the
 * current one; a deleted user leaves no membership behind; a plain member
 * cannot change an experiment's visibility; access tokens must expire;
 * accounts stored before ids existed are upgraded at start.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { importJWK, SignJWT } from "jose";
import { upgradeAccounts } from "../src/accounts.ts";
import { PortalClient } from "../src/client/index.ts";
import { subjectOf } from "../src/identity.ts";
import { startPortal } from "../src/main.ts";
import { keys, type User } from "../src/objects.ts";
import { API_RESOURCE, WEB_CLIENT } from "../src/oidc.ts";
import { answer, apiError, chainXir, type Harness, signInOnTheWeb, startHarness } from "./harness.ts";

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.stop();
});

const login = (url: string, username: string, password: string) =>
  fetch(`${url}/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  }).then((r) => r.status);

function tally(statuses: number[]): Record<number, number> {
  const t: Record<number, number> = {};
  for (const s of statuses) t[s] = (t[s] ?? 0) + 1;
  return t;
}

describe("the credential throttle counts simultaneous guesses", () => {
  // Locks that outlast the test: on a loaded machine 60 requests may take longer than the default 2 s lock,
  // after which one more attempt is allowed by design (backoff).
  const THROTTLE = { lockMs: 120_000, maxLockMs: 120_000 };
  let th: Harness;
  before(async () => {
    th = await startHarness({ throttle: THROTTLE });
  });
  after(async () => {
    await th?.stop();
  });

  test("60 simultaneous wrong passwords: at most the budget (5) are checked, the rest are refused", async () => {
    await th.user("gus");
    const statuses = await Promise.all(Array.from({ length: 60 }, (_, i) => login(th.url, "gus", `wrong-${i}`)));
    const t = tally(statuses);
    assert.ok((t[401] ?? 0) <= 5, `checked (401): ${JSON.stringify(t)}`);
    assert.equal((t[401] ?? 0) + (t[429] ?? 0), 60, JSON.stringify(t));
    // Locked: the right password is refused too.
    assert.equal(await login(th.url, "gus", "pw-gus-secret"), 429);
  });

  test("two replicas on one store share one budget for simultaneous guesses", async () => {
    await th.user("hal");
    const other = await startPortal({ dataDir: th.dataDir, port: 0, throttle: THROTTLE });
    try {
      const statuses = await Promise.all(
        Array.from({ length: 60 }, (_, i) => login(i % 2 ? other.url : th.url, "hal", `wrong-${i}`)),
      );
      const t = tally(statuses);
      assert.ok((t[401] ?? 0) <= 5, `checked (401) on both replicas together: ${JSON.stringify(t)}`);
      assert.equal((t[401] ?? 0) + (t[429] ?? 0), 60, JSON.stringify(t));
    } finally {
      await other.stop();
    }
  });

  test("successful sign-ins give their reserved attempt back: more than the address budget (20) in a row", async () => {
    await th.user("ida");
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) statuses.push(await login(th.url, "ida", "pw-ida-secret"));
    assert.deepEqual(tally(statuses), { 200: 25 });
  });
});

describe("tokens name the account, not just its name", () => {
  test("a deleted user's tokens do not work for a new account of the same name", async () => {
    const old = await h.user("jon");
    const jwt = (await signInOnTheWeb(h.url, "jon", "pw-jon-secret")).access_token;
    assert.equal((await new PortalClient(h.url, jwt).whoami()).name, "jon");
    await h.admin.deleteUser("jon");
    const fresh = await h.user("jon");
    assert.equal((await fresh.whoami()).name, "jon");
    for (const stale of [old, new PortalClient(h.url, jwt)]) {
      const e = await apiError(stale.whoami());
      assert.equal(e.status, 401);
      assert.match(e.message, /revoked/);
    }
  });

  test("a password change needs the current one and revokes API, access and refresh tokens", async () => {
    const kay = await h.user("kay");
    const second = new PortalClient(h.url, (await h.anon.login("kay", "pw-kay-secret")).token);
    const web = await signInOnTheWeb(h.url, "kay", "pw-kay-secret", { offline: true });
    assert.ok(web.refresh_token, JSON.stringify(web));
    const missing = await apiError(kay.updateUser("kay", { password: "new-kay-password" }));
    assert.equal(missing.status, 400);
    assert.equal(missing.field, "currentPassword");
    const wrong = await apiError(kay.updateUser("kay", { password: "new-kay-password", currentPassword: "not-it" }));
    assert.equal(wrong.status, 403);
    assert.equal(wrong.field, "currentPassword");
    assert.equal((await second.whoami()).name, "kay", "nothing changed yet");

    await kay.updateUser("kay", { password: "new-kay-password", currentPassword: "pw-kay-secret" });
    for (const stale of [kay, second, new PortalClient(h.url, web.access_token)]) {
      assert.equal((await apiError(stale.whoami())).status, 401);
    }
    const refreshed = await fetch(`${h.url}/oidc/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: web.refresh_token as string,
        client_id: WEB_CLIENT,
      }),
    });
    assert.equal(refreshed.status, 400);
    assert.equal(((await refreshed.json()) as { error: string }).error, "invalid_grant");
    assert.deepEqual(await h.admin.tokens("kay"), [], "the API tokens are gone from the list");
    const now = new PortalClient(h.url, (await h.anon.login("kay", "new-kay-password")).token);
    assert.equal((await now.whoami()).name, "kay");
    assert.equal(await login(h.url, "kay", "pw-kay-secret"), 401);
    // An administrator resets another user's password without knowing it.
    await h.admin.updateUser("kay", { password: "reset-by-admin" });
    assert.equal((await apiError(now.whoami())).status, 401);
    assert.equal(await login(h.url, "kay", "reset-by-admin"), 200);
  });

  test("an access token without an expiry is refused, even signed with the portal's key", async () => {
    await h.user("lee");
    const u = (await h.started.store.get(keys.user("lee"))) as { value: string };
    const secrets = JSON.parse(((await h.started.store.get(keys.secret("oidc"))) as { value: string }).value) as {
      signing: Parameters<typeof importJWK>[0] & { kid: string };
    };
    const key = await importJWK(secrets.signing, "ES256");
    const forever = (withExpiry: boolean) => {
      const jwt = new SignJWT({ scope: "api" })
        .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: secrets.signing.kid })
        .setIssuer(`${h.url}/oidc`)
        .setAudience(API_RESOURCE)
        .setSubject(subjectOf(JSON.parse(u.value) as User))
        .setIssuedAt();
      return (withExpiry ? jwt.setExpirationTime("1h") : jwt).sign(key);
    };
    // The same token with an expiry works: only the missing expiry is refused.
    assert.equal((await new PortalClient(h.url, await forever(true)).whoami()).name, "lee");
    const e = await apiError(new PortalClient(h.url, await forever(false)).whoami());
    assert.equal(e.status, 401);
    assert.match(e.message, /exp/);
  });
});

describe("deleting a user", () => {
  test("removes every membership naming them: their former co-members see nothing through the name", async () => {
    const mia = await h.user("mia");
    const ned = await h.user("ned");
    await mia.addMember("mia", "ned", "member");
    await ned.createProject({ name: "nedlab" });
    await ned.addMember("nedlab", "mia", "maintainer");
    await h.admin.deleteUser("mia");
    const left = (await h.started.store.range("portal/")).map((kv) => kv.key).filter((k) => /\/mia(\/|$)/.test(k));
    assert.deepEqual(left, [], "no key names the deleted user");
    assert.deepEqual(
      (await ned.members("nedlab")).map((m) => m.user),
      ["ned"],
    );

    // A new account of that name: a new personal project nobody else belongs to.
    const mia2 = await h.user("mia");
    await mia2.createExperiment("mia", { name: "exp", visibility: "private" });
    await mia2.push("mia", "exp", chainXir("exp", 2), "xir");
    await mia2.realize("mia", "exp", { name: "r1", accept: true });
    assert.ok(!(await ned.projects()).some((p) => p.name === "mia"));
    assert.deepEqual(
      (await ned.allRealizations()).filter((r) => r.project === "mia"),
      [],
    );
    const held = (await ned.resources()).flatMap((r) => r.holders).filter((x) => x.project === "mia");
    assert.deepEqual(held, []);
    assert.equal((await apiError(ned.experiment("mia", "exp"))).status, 404);
    await mia2.relinquish("mia", "exp", "r1");
  });
});

describe("visibility", () => {
  test("a plain member may update a protected experiment but not change its visibility (policy: visibility update)", async () => {
    const ola = await h.user("ola");
    const pia = await h.user("pia");
    const quin = await h.user("quin");
    await ola.createProject({ name: "lab", visibility: "protected" });
    await ola.addMember("lab", "pia", "member");
    await ola.addMember("lab", "quin", "maintainer");
    await ola.createExperiment("lab", { name: "exp", visibility: "protected" });
    assert.equal((await pia.updateExperiment("lab", "exp", { description: "notes" })).description, "notes");
    // Sending the visibility it already has is no change.
    await pia.updateExperiment("lab", "exp", { description: "more", visibility: "protected" });
    for (const v of ["public", "private"] as const) {
      const e = await apiError(pia.updateExperiment("lab", "exp", { visibility: v }));
      assert.equal(e.status, 403);
      assert.match(e.message, /may not change the visibility/);
    }
    assert.equal((await ola.experiment("lab", "exp")).visibility, "protected");
    assert.equal((await quin.updateExperiment("lab", "exp", { visibility: "public" })).visibility, "public");
    assert.equal((await ola.updateExperiment("lab", "exp", { visibility: "protected" })).visibility, "protected");
  });
});

test("the right password on a pending account and a wrong one are answered alike", async () => {
  await h.user("rae", { activate: false });
  const right = await apiError(h.anon.login("rae", "pw-rae-secret"));
  const wrong = await apiError(h.anon.login("rae", "wrong-password"));
  assert.deepEqual(answer(right), answer(wrong));
});

test("accounts stored before user ids get them at start; their tokens keep working; stray index entries go", async () => {
  const { store } = h.started;
  await h.user("old");
  const kv = (await store.get(keys.user("old"))) as { value: string };
  const { id: _id, generation: _g, generationAt: _a, ...before } = JSON.parse(kv.value) as User;
  await store.put(keys.user("old"), JSON.stringify(before));
  const secret = "S".repeat(43);
  const tokenId = "oldtoken0001";
  await store.put(
    keys.token(tokenId),
    JSON.stringify({
      id: tokenId,
      user: "old",
      name: "legacy",
      hash: createHash("sha256").update(secret).digest("hex"),
      created: new Date().toISOString(),
      expires: null,
    }),
  );
  await store.put(keys.membership("old", "ghostproject"), JSON.stringify({ project: "ghostproject", user: "old" }));
  await store.put(keys.member("ghostproject", "gone"), JSON.stringify({ project: "ghostproject", user: "gone" }));
  await upgradeAccounts(store);
  const after = JSON.parse(((await store.get(keys.user("old"))) as { value: string }).value) as User;
  assert.match(after.id, /^[a-z0-9]{16}$/);
  assert.equal(after.generation, 0);
  assert.equal((await new PortalClient(h.url, `mrg_${tokenId}.${secret}`).whoami()).name, "old");
  assert.equal(await store.get(keys.membership("old", "ghostproject")), undefined);
  assert.equal(await store.get(keys.member("ghostproject", "gone")), undefined);
});
