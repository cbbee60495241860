/**
 * Credential-guessing throttle, against a real portal with short locks: wrong
 * passwords lock the account (429 + Retry-After), the right password is refused
 * during the lock and accepted after it, other accounts and other addresses go
 * on signing in, and API tokens, the OIDC sign-in page and device user codes
 * are throttled too. Different client addresses are real: requests leave from
 * 127.0.0.2 … 127.0.0.10 (all on loopback). The backoff arithmetic is checked on
 * the Throttle itself with a hand-driven clock.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { PortalClient } from "../src/client/index.ts";
import { type Started, startPortal } from "../src/main.ts";
import { CLI_CLIENT } from "../src/oidc.ts";
import { clientAddress, Throttle, Throttled } from "../src/throttle.ts";
import { type Answer, Browser, requestFrom } from "./harness.ts";

// Long enough that a sign-in (a password hash) on a loaded test box does not outlast the lock.
const LOCK_MS = 2000;
const ACCOUNT_FAILURES = 3;
const ADDRESS_FAILURES = 10;
const TOKEN_FAILURES = 5;

let dataDir: string;
let started: Started;
let url: string;
let admin: PortalClient;

/** One HTTP request leaving from `from` (a loopback address), so the portal sees that client address. */
function call(
  method: string,
  path: string,
  o: { from?: string; json?: unknown; form?: Record<string, string>; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const body =
    o.form !== undefined
      ? new URLSearchParams(o.form).toString()
      : o.json === undefined
        ? undefined
        : JSON.stringify(o.json);
  const type = o.form !== undefined ? "application/x-www-form-urlencoded" : "application/json";
  const headers = { ...(body ? { "content-type": type } : {}), ...o.headers };
  return requestFrom(new URL(path, url), o.from ?? "127.0.0.1", method, headers, body);
}

const login = (username: string, password: string, from?: string) =>
  call("POST", "/login", { from, json: { username, password } });

async function activeUser(name: string): Promise<string> {
  const password = `pw-${name}-right`;
  await new PortalClient(url).register({ name, email: `${name}@example.org`, password });
  await admin.setUserState(name, "active");
  return password;
}

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "merge-portal-throttle-"));
  started = await startPortal({
    dataDir,
    port: 0,
    throttle: {
      accountFailures: ACCOUNT_FAILURES,
      addressFailures: ADDRESS_FAILURES,
      tokenAddressFailures: TOKEN_FAILURES,
      lockMs: LOCK_MS,
      maxLockMs: 4 * LOCK_MS,
      windowMs: 60_000,
    },
  });
  url = started.url;
  admin = new PortalClient(url, (await new PortalClient(url).login("admin", started.admin.password as string)).token);
});

after(async () => {
  try {
    await started?.stop();
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("wrong passwords lock the account: 429 with Retry-After, the right password refused until the lock ends", async () => {
  const password = await activeUser("ann");
  const ben = await activeUser("ben");
  for (let i = 0; i < ACCOUNT_FAILURES; i++) {
    const r = await login("ann", "wrong", "127.0.0.2");
    assert.equal(r.status, 401, `attempt ${i + 1}: ${r.body}`);
  }
  const locked = await login("ann", password, "127.0.0.2");
  assert.equal(locked.status, 429, locked.body);
  assert.match(String(locked.headers["retry-after"]), /^[12]$/);
  const err = JSON.parse(locked.body) as { error: string; message: string };
  assert.equal(err.error, "too_many_requests");
  assert.match(err.message, /for this account; try again in [12] s \(after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)/);
  // The lock is the account's: another address with the right password is refused the same way (no oracle).
  assert.equal((await login("ann", password, "127.0.0.3")).status, 429);
  // Other accounts, even from the same address, are not affected.
  assert.equal((await login("ben", ben, "127.0.0.2")).status, 200);

  await sleep(LOCK_MS + 100);
  assert.equal((await login("ann", password, "127.0.0.2")).status, 200);
  // The success cleared the account's count: one more mistake is a plain 401 and does not lock again.
  assert.equal((await login("ann", "wrong", "127.0.0.2")).status, 401);
  assert.equal((await login("ann", password, "127.0.0.2")).status, 200);
});

test("unknown accounts lock like known ones, so a lock does not tell which names exist", async () => {
  for (let i = 0; i < ACCOUNT_FAILURES; i++) assert.equal((await login("nobody", "x", "127.0.0.4")).status, 401);
  const r = await login("nobody", "x", "127.0.0.4");
  assert.equal(r.status, 429);
  assert.match(r.body, /for this account/);
});

test("a flood from one address locks that address, not other addresses' sign-ins", async () => {
  const password = await activeUser("cat");
  // Distinct made-up names: no account reaches its own limit, the address reaches its own.
  for (let i = 0; i < ADDRESS_FAILURES; i++) {
    assert.equal((await login(`guess${i}`, "x", "127.0.0.5")).status, 401, `guess ${i}`);
  }
  const flooded = await login("cat", password, "127.0.0.5");
  assert.equal(flooded.status, 429, flooded.body);
  assert.match(flooded.body, /from this address/);
  assert.ok(Number(flooded.headers["retry-after"]) >= 1);
  assert.equal((await login("cat", password, "127.0.0.6")).status, 200);
  // Password guessing from that address does not block its API tokens (their own budget).
  const t = JSON.parse((await login("cat", password, "127.0.0.6")).body) as { token: string };
  const me = await call("GET", "/whoami", { from: "127.0.0.5", headers: { authorization: `Bearer ${t.token}` } });
  assert.equal(me.status, 200, me.body);
});

test("guessed API tokens lock the address for bearer tokens; other addresses keep working", async () => {
  const password = await activeUser("dan");
  const { token } = JSON.parse((await login("dan", password)).body) as { token: string };
  const bearer = (t: string, from: string) =>
    call("GET", "/whoami", { from, headers: { authorization: `Bearer ${t}` } });
  for (let i = 0; i < TOKEN_FAILURES; i++) {
    const fake = `mrg_${String(i).padStart(12, "x")}.${"A".repeat(43)}`;
    assert.equal((await bearer(fake, "127.0.0.7")).status, 401);
  }
  const locked = await bearer(token, "127.0.0.7");
  assert.equal(locked.status, 429, locked.body);
  assert.match(String(locked.headers["retry-after"]), /^[12]$/);
  assert.equal((await bearer(token, "127.0.0.8")).status, 200);
  await sleep(LOCK_MS + 100);
  assert.equal((await bearer(token, "127.0.0.7")).status, 200);
});

test("the OIDC sign-in page locks the account the same way, with a page saying when to retry", async () => {
  const password = await activeUser("eve");
  const b = new Browser();
  const start = async () => {
    const r = await fetch(`${url}/oidc/device/auth`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: CLI_CLIENT, scope: "openid api" }),
    });
    return (await r.json()) as { verification_uri_complete: string };
  };
  // Device flow: the code page auto-posts, the confirm page posts, then the sign-in page appears.
  const signInPage = async () => {
    const { verification_uri_complete } = await start();
    let p = await b.go(verification_uri_complete);
    for (let i = 0; i < 3 && !/action="[^"]+\/login"/.test(p.html); i++) {
      const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(p.html);
      assert.ok(form, p.html);
      const fields = Object.fromEntries(
        [...(form[2] as string).matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]),
      );
      p = await b.go(new URL(form[1] as string, url).href, { method: "POST", form: fields as Record<string, string> });
    }
    const action = /action="([^"]+\/login)"/.exec(p.html)?.[1];
    assert.ok(action, p.html);
    return new URL(action, url).href;
  };
  const action = await signInPage();
  for (let i = 0; i < ACCOUNT_FAILURES; i++) {
    const r = await b.go(action, { method: "POST", form: { username: "eve", password: "wrong" } });
    assert.equal(r.status, 401);
    assert.match(r.html, /Wrong user name or password/);
  }
  const locked = await b.go(action, { method: "POST", form: { username: "eve", password } });
  assert.equal(locked.status, 429);
  assert.match(locked.html, /too many failed attempts for this account; try again in [12] s/);
  await sleep(LOCK_MS + 100);
  const ok = await b.go(action, { method: "POST", form: { username: "eve", password } });
  assert.equal(ok.status, 200);
  assert.match(ok.html, /Signed in/);
});

test("guessing device user codes locks the address's code page", async () => {
  const b = new Browser();
  const guess = async (code: string) => {
    const page = await b.go(`${url}/oidc/device`);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.html)?.[1];
    assert.ok(xsrf, page.html);
    return b.go(`${url}/oidc/device`, { method: "POST", form: { xsrf, user_code: code } });
  };
  for (let i = 0; i < ADDRESS_FAILURES; i++) {
    const r = await guess("BCDF-GHJK");
    assert.equal(r.status, 200);
    assert.match(r.html, /That code is not valid/);
  }
  const locked = await guess("BCDF-GHJK");
  assert.equal(locked.status, 429);
  assert.match(locked.html, /too many failed attempts from this address/);
});

test("wrong device codes at the token endpoint lock the address there; pending polls do not count", async () => {
  const grant = (device_code: string, from: string) =>
    call("POST", "/oidc/token", {
      from,
      form: { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code, client_id: CLI_CLIENT },
    });
  const auth = await call("POST", "/oidc/device/auth", {
    from: "127.0.0.9",
    form: { client_id: CLI_CLIENT, scope: "openid api" },
  });
  const { device_code } = JSON.parse(auth.body) as { device_code: string };
  for (let i = 0; i < TOKEN_FAILURES + 2; i++) {
    const r = await grant(device_code, "127.0.0.9");
    assert.equal(JSON.parse(r.body).error, "authorization_pending", r.body);
  }
  for (let i = 0; i < TOKEN_FAILURES; i++) {
    const r = await grant(`made-up-${i}`, "127.0.0.9");
    assert.equal(JSON.parse(r.body).error, "invalid_grant", r.body);
  }
  const locked = await grant(device_code, "127.0.0.9");
  assert.equal(locked.status, 429, locked.body);
  assert.match(String(locked.headers["retry-after"]), /^[12]$/);
  assert.equal(JSON.parse(locked.body).error, "too_many_requests");
  assert.equal(JSON.parse((await grant(device_code, "127.0.0.10")).body).error, "authorization_pending");
});

test("backoff doubles per failure past the limit up to the ceiling; failures are forgotten after the window", () => {
  let now = 1_000_000;
  const t = new Throttle(
    { accountFailures: 2, addressFailures: 100, lockMs: 1000, maxLockMs: 8000, windowMs: 60_000 },
    () => now,
  );
  const lockOf = () => {
    try {
      t.check("password", "10.0.0.1", "u");
      return 0;
    } catch (e) {
      assert.ok(e instanceof Throttled);
      return e.retryAfterSeconds;
    }
  };
  t.fail("password", "10.0.0.1", "u");
  assert.equal(lockOf(), 0);
  const locks: number[] = [];
  for (let i = 0; i < 5; i++) {
    t.fail("password", "10.0.0.1", "u");
    locks.push(lockOf());
    now += 10_000;
  }
  assert.deepEqual(locks, [1, 2, 4, 8, 8]);
  // Last failure long ago: the count starts over.
  now += 61_000;
  t.fail("password", "10.0.0.1", "u");
  assert.equal(lockOf(), 0);
  assert.throws(() => new Throttle({ lockMs: 0 }), /throttle.lockMs: 0 is not valid/);
});

test("the throttle keeps at most maxKeys keys, and drops unlocked ones before locks", () => {
  const now = 1_000_000;
  const t = new Throttle({ accountFailures: 1, addressFailures: 1000, maxKeys: 10 }, () => now);
  t.fail("password", "10.0.0.9", "target"); // locks "target" (and keeps an unlocked count for the address)
  for (let i = 0; i < 50; i++) t.fail("password", `10.1.0.${i}`);
  assert.ok(t.size <= 10, `${t.size} keys`);
  assert.throws(() => t.check("password", "10.2.0.1", "target"), Throttled);
});

test("client addresses: IPv4-mapped IPv6 is IPv4, IPv6 is kept per /64", () => {
  assert.equal(clientAddress("::ffff:127.0.0.2"), "127.0.0.2");
  assert.equal(clientAddress("10.1.2.3"), "10.1.2.3");
  assert.equal(clientAddress("2001:db8:1:2:a:b:c:d"), "2001:db8:1:2::/64");
  assert.equal(clientAddress("2001:db8:1:2::5"), "2001:db8:1:2::/64");
  assert.equal(clientAddress("::1"), "0:0:0:0::/64");
});
