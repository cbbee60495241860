/**
 * The store side of the shared throttle, with two Throttles on two clients of
 * one store (two replicas without the HTTP around them): concurrent failures on
 * both are all counted (compare-and-swap merge) on etcd and on one sqlite file,
 * a watch overtaken by compaction is restarted by reading the counts again, and
 * a stored value that is not a count is ignored and then overwritten.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { openStore, type Store } from "@merge/store";
import { type EtcdServer, startEtcd } from "@merge/store/testing/etcd";
import { Throttle, Throttled } from "../src/throttle.ts";
import { shareThrottle, THROTTLE_PREFIX } from "../src/throttle-sync.ts";

let etcd: EtcdServer;
let dir: string;

before(async () => {
  etcd = await startEtcd();
  dir = await mkdtemp(join(tmpdir(), "merge-portal-throttle-sync-"));
});
after(async () => {
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

const locked = (t: Throttle, account: string) => {
  try {
    t.check("password", "10.9.9.9", account);
    return false;
  } catch (e) {
    assert.ok(e instanceof Throttled);
    return true;
  }
};

/** Two replicas' throttles, each on its own client of one store. */
async function pair(open: () => Store, warnings: string[] = []) {
  const stores = [open(), open()] as const;
  const throttles = [new Throttle(), new Throttle()] as const;
  const shared = await Promise.all(
    stores.map((s, i) => shareThrottle(s, throttles[i] as Throttle, { warn: (m) => warnings.push(m) })),
  );
  return {
    stores,
    throttles,
    shared,
    async close() {
      for (const s of shared) await s.close();
      for (const s of stores) await s.close();
    },
  };
}

for (const backend of ["etcd", "sqlite"] as const) {
  test(`${backend}: concurrent failures on two replicas are all counted, and both see the lock`, async () => {
    const p = await pair(() =>
      backend === "etcd" ? openStore(etcd.url) : openStore({ backend: "sqlite", dir: join(dir, "concurrent") }),
    );
    try {
      const [t1, t2] = p.throttles;
      // 12 failures on each at the same time, from different addresses, against one account.
      for (let i = 0; i < 12; i++) {
        t1.fail("password", `10.1.0.${i}`, "target");
        t2.fail("password", `10.2.0.${i}`, "target");
      }
      await Promise.all(p.shared.map((s) => s.settled()));
      const kvs = await (p.stores[0] as Store).range(`${THROTTLE_PREFIX}password/account/`);
      assert.equal(kvs.length, 1);
      assert.equal(JSON.parse((kvs[0] as { value: string }).value).failures, 24, "every failure counted once");
      // Each replica mirrors the merged count (24, not its own 12).
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        if (p.throttles.every((t) => locked(t, "target"))) break;
        await sleep(20);
      }
      assert.ok(locked(t1, "target") && locked(t2, "target"));
      assert.ok(!locked(t1, "someone-else"));
      assert.ok(p.shared.every((s) => !s.isDegraded));
    } finally {
      await p.close();
    }
  });
}

test("a watch overtaken by compaction is restarted by reading the stored counts again", async () => {
  const warnings: string[] = [];
  // Replica 1 polls the shared sqlite file only once a second, so replica 2's writes and compaction outrun it.
  const slow = openStore({ backend: "sqlite", dir: join(dir, "compaction"), pollMs: 1_000 });
  const fast = openStore({ backend: "sqlite", dir: join(dir, "compaction") });
  const t1 = new Throttle();
  const t2 = new Throttle();
  const s1 = await shareThrottle(slow, t1, { warn: (m) => warnings.push(m) });
  const s2 = await shareThrottle(fast, t2, { warn: (m) => warnings.push(m) });
  try {
    for (let i = 0; i < 5; i++) t2.fail("password", "10.3.0.1", "victim");
    await s2.settled();
    await fast.compact(await fast.revision());
    const deadline = Date.now() + 10_000;
    while (!locked(t1, "victim") && Date.now() < deadline) await sleep(50);
    assert.ok(locked(t1, "victim"), "replica 1 sees the lock after re-reading");
    assert.ok(
      warnings.some((w) => /watch on the shared failure counts ended .*compacted/i.test(w)),
      JSON.stringify(warnings),
    );
    // And it watches again: a success on replica 2 clears the lock on replica 1.
    t2.succeed("password", "victim");
    await s2.settled();
    const cleared = Date.now() + 10_000;
    while (locked(t1, "victim") && Date.now() < cleared) await sleep(50);
    assert.ok(!locked(t1, "victim"));
  } finally {
    await s1.close();
    await s2.close();
    await slow.close();
    await fast.close();
  }
});

test("a stored value that is not a count is ignored by the mirror and overwritten by the next failure", async () => {
  const store = openStore({ backend: "sqlite", dir: join(dir, "corrupt") });
  const t = new Throttle({ accountFailures: 2 });
  const s = await shareThrottle(store, t, { warn: () => undefined });
  try {
    t.fail("password", "10.4.0.1", "carl");
    await s.settled();
    const [key] = (await store.range(`${THROTTLE_PREFIX}password/account/`)).map((kv) => kv.key);
    assert.ok(key);
    await store.put(key, "not json");
    await sleep(100);
    // The mirror ignores it (no crash, no bogus lock); the next failure replaces it with a fresh count.
    assert.ok(!locked(t, "carl"));
    t.fail("password", "10.4.0.1", "carl");
    await s.settled();
    assert.equal(JSON.parse((await store.get(key))?.value ?? "").failures, 1);
  } finally {
    await s.close();
    await store.close();
  }
});
