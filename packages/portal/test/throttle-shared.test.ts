/**
 * The credential throttle across replicas: two portals on one real etcd, as a
 * balancer would spread a guesser's requests. Failures on either replica count
 * against one budget, a lock set by one is enforced by the other, a success on
 * one clears the count the other sees, the stored counts expire by themselves
 * and hold no user names or addresses, and with etcd gone each replica goes on
 * counting by itself without failing a request.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type KeyValue, openStore, type Store } from "@merge/store";
import { type EtcdServer, startEtcd } from "@merge/store/testing/etcd";
import { PortalClient } from "../src/client/index.ts";
import { type Started, startPortal } from "../src/main.ts";
import { THROTTLE_PREFIX } from "../src/throttle-sync.ts";
import { type Answer, requestFrom } from "./harness.ts";

const LOCK_MS = 1_500;
const WINDOW_MS = 3_000;
const TOKEN_FAILURES = 3;

let etcd: EtcdServer;
let dataDir: string;
let store: Store;
let a: Started;
let b: Started;

/** One request to `base` leaving from loopback address `from`, so the portal sees that client address. */
function call(base: string, path: string, from: string, o: { json?: unknown; bearer?: string } = {}): Promise<Answer> {
  const body = o.json === undefined ? undefined : JSON.stringify(o.json);
  const headers = {
    ...(body === undefined ? {} : { "content-type": "application/json" }),
    ...(o.bearer === undefined ? {} : { authorization: `Bearer ${o.bearer}` }),
  };
  return requestFrom(new URL(path, base), from, body === undefined ? "GET" : "POST", headers, body);
}

const login = (on: Started, username: string, password: string, from: string) =>
  call(on.url, "/login", from, { json: { username, password } });

/** The stored failure counts, read by a client of our own. */
async function counts(): Promise<KeyValue[]> {
  return store.range(THROTTLE_PREFIX);
}

/** Waits (up to 10 s) until `ok` holds for the stored counts; returns them. */
async function until(what: string, ok: (kvs: KeyValue[]) => boolean): Promise<KeyValue[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const kvs = await counts();
    if (ok(kvs)) return kvs;
    if (Date.now() > deadline) assert.fail(`${what}: store holds ${JSON.stringify(kvs.map((kv) => kv.value))}`);
    await sleep(20);
  }
}

const failures = (kv: KeyValue) => (JSON.parse(kv.value) as { failures: number }).failures;
/** Until every replica's mirror holds `n` failures against the account (watches deliver within milliseconds; polled, not slept). */
async function mirrored(account: string, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const seen = [a, b].map((r) => r.portal.ctx.identity.throttle.failuresOf("password", "account", account));
    if (seen.every((x) => x === n)) return;
    if (Date.now() > deadline) assert.fail(`replicas hold ${seen.join(" and ")} failures for ${account}, not ${n}`);
    await sleep(20);
  }
}

async function activeUser(name: string): Promise<string> {
  const admin = new PortalClient(
    a.url,
    (await new PortalClient(a.url).login("admin", a.admin.password as string)).token,
  );
  const password = `pw-${name}-right`;
  await new PortalClient(b.url).register({ name, email: `${name}@example.org`, password });
  await admin.setUserState(name, "active");
  return password;
}

before(async () => {
  etcd = await startEtcd();
  dataDir = await mkdtemp(join(tmpdir(), "merge-portal-throttle-shared-"));
  const throttle = {
    lockMs: LOCK_MS,
    maxLockMs: 2 * LOCK_MS,
    windowMs: WINDOW_MS,
    tokenAddressFailures: TOKEN_FAILURES,
  };
  [a, b] = (await Promise.all([
    startPortal({ dataDir, port: 0, storeUrl: etcd.url, throttle }),
    startPortal({ dataDir, port: 0, storeUrl: etcd.url, throttle }),
  ])) as [Started, Started];
  store = openStore(etcd.url);
});

after(async () => {
  try {
    await Promise.all([a?.stop(), b?.stop(), store?.close()]);
    await etcd?.stop();
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("five failures spread over two replicas lock the account on both; the stored counts name no one", async () => {
  const password = await activeUser("ann");
  for (let i = 0; i < 3; i++) assert.equal((await login(a, "ann", "wrong", "127.0.0.2")).status, 401, `on a, ${i}`);
  for (let i = 0; i < 2; i++) assert.equal((await login(b, "ann", "wrong", "127.0.0.3")).status, 401, `on b, ${i}`);
  // Each replica alone saw fewer than 5; the store merged all of them into one count.
  const kvs = await until("ann's 5 failures stored", (k) => k.some((kv) => failures(kv) === 5));
  await mirrored("ann", 5);
  for (const [on, from] of [
    [a, "127.0.0.2"],
    [b, "127.0.0.3"],
    [a, "127.0.0.4"],
    [b, "127.0.0.4"],
  ] as const) {
    const r = await login(on, "ann", password, from);
    assert.equal(r.status, 429, `right password on ${on === a ? "a" : "b"} from ${from}: ${r.body}`);
    assert.match(r.body, /for this account/);
    assert.ok(Number(r.headers["retry-after"]) >= 1);
  }
  const text = JSON.stringify(kvs);
  for (const secretish of ["ann", "127.0.0.2", "127.0.0.3", "wrong", password]) {
    assert.ok(!text.includes(secretish), `${secretish} appears in the store: ${text}`);
  }
  // After the lock both replicas let the right password in again.
  await sleep(LOCK_MS + 100);
  assert.equal((await login(b, "ann", password, "127.0.0.2")).status, 200);
});

test("a success on one replica clears the account's count on the other", async () => {
  const password = await activeUser("ben");
  for (let i = 0; i < 3; i++) assert.equal((await login(a, "ben", "wrong", "127.0.0.5")).status, 401);
  const account = (kv: KeyValue) => kv.key.startsWith(`${THROTTLE_PREFIX}password/account/`) && failures(kv) === 3;
  const address = (kv: KeyValue) => kv.key.startsWith(`${THROTTLE_PREFIX}password/address/`) && failures(kv) === 3;
  await until("ben's 3 failures stored", (k) => k.some(account) && k.some(address));
  await mirrored("ben", 3);
  assert.equal((await login(b, "ben", password, "127.0.0.6")).status, 200);
  // The account's key is gone from the store; the address's stays (a success never clears those).
  await until("ben's count cleared", (k) => !k.some(account) && k.some(address));
  await mirrored("ben", 0);
  // Had a kept its 3, four more would make 7 and lock; cleared, they make 4 and the right password works.
  for (let i = 0; i < 4; i++) assert.equal((await login(a, "ben", "wrong", "127.0.0.7")).status, 401, `${i}`);
  assert.equal((await login(a, "ben", password, "127.0.0.7")).status, 200);
});

test("stored counts expire by themselves after the window", async () => {
  const keysBefore = new Set((await counts()).map((kv) => kv.key));
  const failedAt = Date.now();
  assert.equal((await login(b, "nobody", "x", "127.0.0.8")).status, 401);
  const fresh = (kvs: KeyValue[]) => kvs.filter((kv) => !keysBefore.has(kv.key));
  // One key for the account, one for the address.
  const added = fresh(await until("the failure stored", (k) => fresh(k).length === 2));
  assert.ok(
    added.every((kv) => kv.lease !== undefined),
    "stored counts carry a lease",
  );
  await until("the counts expired", (k) => !k.some((kv) => added.some((x) => x.key === kv.key)));
  const lived = Date.now() - failedAt;
  assert.ok(lived >= WINDOW_MS, `expired after ${lived} ms, before the ${WINDOW_MS} ms window`);
});

test("with etcd stopped, failures are counted on each replica alone: no crash, one warning, no secrets logged", async () => {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    lines.push(String(chunk));
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    await etcd.stop();
    // Bogus bearer tokens are checked without the store: the replica answers as usual, counting locally.
    const bogus = "not-a-token-but-maybe-a-password";
    for (let i = 0; i < TOKEN_FAILURES; i++) {
      const r = await call(a.url, "/whoami", "127.0.0.9", { bearer: bogus });
      assert.equal(r.status, 401, r.body);
      await sleep(50);
    }
    const locked = await call(a.url, "/whoami", "127.0.0.9", { bearer: bogus });
    assert.equal(locked.status, 429, locked.body);
    // The other replica knows nothing of those (nothing could be shared) and still answers.
    assert.equal((await call(b.url, "/whoami", "127.0.0.9", { bearer: bogus })).status, 401);
    // The store writes give up (refused or timed out) and say so once.
    const deadline = Date.now() + 15_000;
    while (!lines.some((l) => l.includes("cannot share failure counts")) && Date.now() < deadline) await sleep(100);
    const warnings = lines.filter((l) => l.includes("cannot share failure counts"));
    assert.ok(warnings.length >= 1, `no warning in ${JSON.stringify(lines)}`);
    // More failures while it lasts add no more warnings: one per replica per outage.
    for (let i = 0; i < 2; i++)
      assert.equal((await call(a.url, "/whoami", "127.0.0.10", { bearer: bogus })).status, 401);
    await sleep(1_500);
    const all = lines.filter((l) => l.includes("cannot share failure counts"));
    assert.ok(all.length <= 2, JSON.stringify(all));
    for (const l of warnings) {
      assert.ok(!l.includes("127.0.0.9") && !l.includes(bogus), l);
    }
  } finally {
    process.stderr.write = write;
  }
});
