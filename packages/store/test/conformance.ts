/**
 * The store contract, as one suite every backend must pass. Each test works under
 * its own key prefix and checks revisions relative to what it observed, so the
 * suite can share one etcd (or one database) with other tests.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Store, StoreError, type WatchEvent } from "../src/index.ts";

export interface ConformanceOptions {
  /** How long past a lease's TTL its keys may linger (sweep interval + clock slack), ms. */
  leaseSlackMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Collects a watch's events; `until(n)` waits for at least n of them. */
export function collector() {
  const events: WatchEvent[] = [];
  return {
    events,
    onEvent: (e: WatchEvent) => void events.push(e),
    until: (n: number, timeoutMs = 5000) =>
      eventually(`${n} watch events (have ${events.length})`, async () => events.length >= n, timeoutMs),
  };
}

const brief = (e: WatchEvent) => ({ type: e.type, key: e.kv.key, value: e.kv.value, revision: e.revision });

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected StoreError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

let run = 0;

export function conformance(name: string, open: () => Promise<Store>, opts: ConformanceOptions = {}): void {
  const slack = opts.leaseSlackMs ?? 2500;
  describe(`store conformance: ${name}`, () => {
    let store: Store;
    const id = `${process.pid}-${Date.now().toString(36)}-${run++}`;
    let n = 0;
    /** A fresh prefix per test, so tests never see each other's keys. */
    const fresh = () => `conf/${id}/${n++}/`;

    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.deletePrefix(`conf/${id}/`).catch(() => undefined);
      await store?.close();
    });

    it("puts, gets and deletes, with create/mod revisions and versions", async () => {
      const p = fresh();
      assert.equal(await store.get(`${p}k`), undefined);
      const r1 = await store.put(`${p}k`, "one");
      assert.equal(await store.revision(), r1);
      assert.deepEqual(await store.get(`${p}k`), {
        key: `${p}k`,
        value: "one",
        createRevision: r1,
        modRevision: r1,
        version: 1,
      });
      const r2 = await store.put(`${p}k`, "two");
      assert.equal(r2, r1 + 1);
      assert.deepEqual(await store.get(`${p}k`), {
        key: `${p}k`,
        value: "two",
        createRevision: r1,
        modRevision: r2,
        version: 2,
      });
      // Writing the same value again is still a write.
      const r3 = await store.put(`${p}k`, "two");
      assert.equal(r3, r2 + 1);
      assert.equal((await store.get(`${p}k`))?.version, 3);
      assert.equal(await store.delete(`${p}k`), true);
      const afterDelete = await store.revision();
      assert.equal(afterDelete, r3 + 1);
      assert.equal(await store.get(`${p}k`), undefined);
      // Deleting what is not there changes nothing, not even the revision.
      assert.equal(await store.delete(`${p}k`), false);
      assert.equal(await store.revision(), afterDelete);
      // Re-created: a new createRevision, version back to 1.
      const r5 = await store.put(`${p}k`, "again");
      assert.deepEqual(await store.get(`${p}k`), {
        key: `${p}k`,
        value: "again",
        createRevision: r5,
        modRevision: r5,
        version: 1,
      });
      assert.equal(await store.put(`${p}empty`, ""), r5 + 1);
      assert.equal((await store.get(`${p}empty`))?.value, "");
    });

    it("ranges over a prefix in key order, with limit and after for paging", async () => {
      const p = fresh();
      for (const k of ["b", "a", "c/1", "c", "d", "ab"]) await store.put(`${p}x/${k}`, k);
      await store.put(`${p}x`, "the prefix itself is a key too");
      await store.put(`${p}y/a`, "other prefix");
      const keys = async (prefix: string, o?: { limit?: number; after?: string }) =>
        (await store.range(prefix, o)).map((kv) => kv.key.slice(p.length));
      assert.deepEqual(await keys(`${p}x/`), ["x/a", "x/ab", "x/b", "x/c", "x/c/1", "x/d"]);
      assert.deepEqual(await keys(`${p}x`), ["x", "x/a", "x/ab", "x/b", "x/c", "x/c/1", "x/d"]);
      assert.deepEqual(await keys(`${p}x/`, { limit: 2 }), ["x/a", "x/ab"]);
      assert.deepEqual(await keys(`${p}x/`, { limit: 2, after: `${p}x/ab` }), ["x/b", "x/c"]);
      assert.deepEqual(await keys(`${p}x/`, { after: `${p}x/c/1` }), ["x/d"]);
      assert.deepEqual(await keys(`${p}x/`, { after: `${p}x/d` }), []);
      assert.deepEqual(await keys(`${p}x/`, { after: `${p}a` }), ["x/a", "x/ab", "x/b", "x/c", "x/c/1", "x/d"]);
      assert.deepEqual(await keys(`${p}z/`), []);
      // Paging by `after` visits every key exactly once.
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await store.range(`${p}x/`, cursor === undefined ? { limit: 4 } : { limit: 4, after: cursor });
        if (page.length === 0) break;
        seen.push(...page.map((kv) => kv.key));
        cursor = page.at(-1)!.key;
      }
      assert.deepEqual(
        seen.map((k) => k.slice(p.length)),
        ["x/a", "x/ab", "x/b", "x/c", "x/c/1", "x/d"],
      );
      const [first] = await store.range(`${p}x/a`, { limit: 1 });
      assert.deepEqual(
        { ...first, createRevision: 0, modRevision: 0 },
        { key: `${p}x/a`, value: "a", createRevision: 0, modRevision: 0, version: 1 },
      );
    });

    it("deletes a prefix in one revision and says how many keys went", async () => {
      const p = fresh();
      for (const k of ["a", "b", "c"]) await store.put(`${p}d/${k}`, k);
      await store.put(`${p}keep`, "k");
      const before = await store.revision();
      assert.equal(await store.deletePrefix(`${p}d/`), 3);
      assert.equal(await store.revision(), before + 1);
      assert.deepEqual(await store.range(`${p}d/`), []);
      assert.equal((await store.get(`${p}keep`))?.value, "k");
      assert.equal(await store.deletePrefix(`${p}d/`), 0);
      assert.equal(await store.revision(), before + 1);
    });

    it("orders keys by UTF-8 bytes and keeps unicode keys and values intact", async () => {
      const p = fresh();
      const names = ["z", "é", "\uFFFD", "😀", "名前", "ключ/значение"];
      for (const k of names) await store.put(`${p}${k}`, `value of ${k} ✓`);
      const got = await store.range(p);
      // Code-point order: U+00E9 < U+0437 < U+540D < U+FFFD < U+1F600 (JS's default sort puts 😀 before U+FFFD).
      assert.deepEqual(
        got.map((kv) => kv.key.slice(p.length)),
        ["z", "é", "ключ/значение", "名前", "\uFFFD", "😀"],
      );
      for (const kv of got) assert.equal(kv.value, `value of ${kv.key.slice(p.length)} ✓`);
      assert.deepEqual(
        (await store.range(`${p}ключ/`)).map((kv) => kv.value),
        ["value of ключ/значение ✓"],
      );
      assert.equal((await store.get(`${p}😀`))?.value, "value of 😀 ✓");
    });

    it("stores 1 MB values", async () => {
      const p = fresh();
      const big = `${"x".repeat(1024 * 1024 - 10)}é✓😀`;
      const r = await store.put(`${p}big`, big);
      assert.equal((await store.get(`${p}big`))?.value, big);
      assert.equal((await store.range(p))[0]?.value, big);
      // Several of them in one read (5 MB: more than gRPC's default 4 MB message).
      for (let i = 0; i < 4; i++) await store.put(`${p}more/${i}`, big);
      const all = await store.range(`${p}more/`);
      assert.equal(all.length, 4);
      assert.ok(all.every((kv) => kv.value === big));
      const c = collector();
      const w = await store.watch(p, r - 1, c.onEvent);
      await c.until(1);
      await w.cancel();
      assert.equal(c.events[0]?.kv.value, big);
    });

    it("applies a transaction's ops at one new revision; gets see earlier ops of the branch", async () => {
      const p = fresh();
      const before = await store.revision();
      const r = await store.txn({
        compare: [],
        success: [
          { op: "put", key: `${p}a`, value: "1" },
          { op: "put", key: `${p}b`, value: "2" },
          { op: "get", key: `${p}a` },
          { op: "get", key: `${p}missing` },
        ],
      });
      assert.equal(r.succeeded, true);
      assert.equal(r.revision, before + 1);
      assert.equal(r.gets.length, 2);
      assert.equal(r.gets[0]?.value, "1");
      assert.equal(r.gets[0]?.modRevision, before + 1);
      assert.equal(r.gets[1], undefined);
      for (const k of ["a", "b"]) assert.equal((await store.get(`${p}${k}`))?.modRevision, before + 1);
      // A transaction that only reads does not move the revision.
      const ro = await store.txn({ compare: [], success: [{ op: "get", key: `${p}a` }] });
      assert.equal(ro.revision, before + 1);
      assert.equal(await store.revision(), before + 1);
    });

    it("compares on value, version, create and mod revision, absence and presence", async () => {
      const p = fresh();
      const k = `${p}k`;
      const r1 = await store.put(k, "v1");
      const r2 = await store.put(k, "v2");
      const check = async (compare: Parameters<Store["txn"]>[0]["compare"], expected: boolean, label: string) => {
        const r = await store.txn({
          compare,
          success: [{ op: "get", key: `${p}ok` }],
          failure: [{ op: "get", key: k }],
        });
        assert.equal(r.succeeded, expected, label);
        // Exactly the branch that ran returns its gets.
        assert.equal(r.gets.length, 1);
        assert.equal(r.gets[0]?.value, expected ? undefined : "v2", label);
      };
      await check([{ key: k, target: "value", op: "==", value: "v2" }], true, "value ==");
      await check([{ key: k, target: "value", op: "==", value: "v1" }], false, "value == stale");
      await check([{ key: k, target: "value", op: "!=", value: "v1" }], true, "value !=");
      await check([{ key: k, target: "version", op: "==", value: 2 }], true, "version ==");
      await check([{ key: k, target: "version", op: ">", value: 1 }], true, "version >");
      await check([{ key: k, target: "version", op: "<", value: 2 }], false, "version <");
      await check([{ key: k, target: "modRevision", op: "==", value: r2 }], true, "mod ==");
      await check([{ key: k, target: "modRevision", op: "==", value: r1 }], false, "mod == stale");
      await check([{ key: k, target: "modRevision", op: "!=", value: r1 }], true, "mod !=");
      await check([{ key: k, target: "createRevision", op: "==", value: r1 }], true, "create ==");
      await check([{ key: k, target: "createRevision", op: ">", value: r1 }], false, "create >");
      await check([{ key: k, target: "present" }], true, "present");
      await check([{ key: k, target: "absent" }], false, "absent on present key");
      await check([{ key: `${p}nope`, target: "absent" }], true, "absent");
      await check([{ key: `${p}nope`, target: "present" }], false, "present on absent key");
      // A missing key has version/revisions 0, and fails every value compare (as in etcd).
      await check([{ key: `${p}nope`, target: "version", op: "==", value: 0 }], true, "version of missing == 0");
      await check([{ key: `${p}nope`, target: "modRevision", op: "<", value: 1 }], true, "mod of missing < 1");
      await check([{ key: `${p}nope`, target: "value", op: "==", value: "" }], false, "value == on missing");
      await check([{ key: `${p}nope`, target: "value", op: "!=", value: "x" }], false, "value != on missing");
      // All compares must hold.
      await check(
        [
          { key: k, target: "value", op: "==", value: "v2" },
          { key: `${p}nope`, target: "present" },
        ],
        false,
        "conjunction",
      );
      // The failure branch can write, too.
      const f = await store.txn({
        compare: [{ key: k, target: "value", op: "==", value: "old" }],
        success: [{ op: "put", key: `${p}s`, value: "success" }],
        failure: [{ op: "put", key: `${p}f`, value: "failure" }],
      });
      assert.equal(f.succeeded, false);
      assert.equal(f.revision, r2 + 1);
      assert.equal(await store.get(`${p}s`), undefined);
      assert.equal((await store.get(`${p}f`))?.value, "failure");
    });

    it("applies all of a transaction or none of it", async () => {
      const p = fresh();
      await store.put(`${p}a`, "before");
      const before = await store.revision();
      const lease = await store.grant(60);
      await store.revoke(lease);
      // The second op fails (its lease is gone): the first must not be applied either.
      await rejectsWith(
        store.txn({
          compare: [],
          success: [
            { op: "put", key: `${p}a`, value: "after" },
            { op: "put", key: `${p}b`, value: "x", lease },
          ],
        }),
        "lease-not-found",
      );
      // A key written twice in one branch is refused, whole.
      await rejectsWith(
        store.txn({
          compare: [],
          success: [
            { op: "put", key: `${p}a`, value: "after" },
            { op: "put", key: `${p}a`, value: "again" },
          ],
        }),
        "invalid",
      );
      await rejectsWith(
        store.txn({
          compare: [],
          success: [
            { op: "deletePrefix", prefix: p },
            { op: "put", key: `${p}c`, value: "x" },
          ],
        }),
        "invalid",
      );
      assert.equal((await store.get(`${p}a`))?.value, "before");
      assert.equal(await store.get(`${p}b`), undefined);
      assert.equal(await store.get(`${p}c`), undefined);
      assert.equal(await store.revision(), before);
    });

    it("takes up to 128 ops per transaction branch, etcd's default limit, everywhere", async () => {
      const p = fresh();
      const ops = (n: number) =>
        Array.from({ length: n }, (_, i) => ({ op: "put" as const, key: `${p}${i}`, value: "v" }));
      const r = await store.txn({ compare: [], success: ops(128) });
      assert.equal((await store.range(p)).length, 128);
      assert.equal(r.succeeded, true);
      await rejectsWith(store.txn({ compare: [], success: ops(129) }), "invalid");
      await rejectsWith(store.txn({ compare: [], success: [], failure: ops(129) }), "invalid");
    });

    it("refuses malformed requests with a clear error", async () => {
      const p = fresh();
      await rejectsWith(store.put("", "v"), "invalid");
      await rejectsWith(store.get(""), "invalid");
      await rejectsWith(store.put(`${p}k`, 42 as unknown as string), "invalid");
      await rejectsWith(store.put(`${p}k`, "v", { lease: "not-a-lease" }), "invalid");
      await rejectsWith(store.put(`${p}bad\uD800`, "v"), "invalid");
      await rejectsWith(store.range(p, { limit: -1 }), "invalid");
      await rejectsWith(store.grant(0), "invalid");
      await rejectsWith(
        store.watch(p, -1, () => {}),
        "invalid",
      );
      await rejectsWith(
        store.txn({ compare: [{ key: `${p}k`, target: "version", op: "<=" as "<", value: 1 }], success: [] }),
        "invalid",
      );
      await rejectsWith(
        store.txn({ compare: [], success: [{ op: "frobnicate" } as unknown as { op: "get"; key: string }] }),
        "invalid",
      );
      assert.deepEqual(await store.range(p), []);
    });

    it("watches from a past revision deliver every event in order", async () => {
      const p = fresh();
      const start = await store.revision();
      const expected: { type: "put" | "delete"; key: string; value: string; revision: number }[] = [];
      const put = async (k: string, v: string) => {
        const r = await store.put(`${p}${k}`, v);
        expected.push({ type: "put", key: `${p}${k}`, value: v, revision: r });
      };
      await put("a", "1");
      await put("b", "1");
      await store.put(`${p.slice(0, -1)}-outside`, "not under the prefix");
      await put("a", "2");
      await store.delete(`${p}b`);
      expected.push({ type: "delete", key: `${p}b`, value: "", revision: await store.revision() });
      const t = await store.txn({
        compare: [],
        success: [
          { op: "put", key: `${p}c`, value: "t" },
          { op: "put", key: `${p}d`, value: "t" },
          { op: "delete", key: `${p}a` },
        ],
      });
      expected.push(
        { type: "put", key: `${p}c`, value: "t", revision: t.revision },
        { type: "put", key: `${p}d`, value: "t", revision: t.revision },
        { type: "delete", key: `${p}a`, value: "", revision: t.revision },
      );
      for (let i = 0; i < 30; i++) await put(`n/${i}`, String(i));
      const dp = await store.deletePrefix(`${p}n/`);
      assert.equal(dp, 30);
      const rev = await store.revision();
      for (let i = 0; i < 30; i++) expected.push({ type: "delete", key: `${p}n/${i}`, value: "", revision: rev });
      // Deletes of one prefix come in key order.
      expected.splice(
        -30,
        30,
        ...expected.slice(-30).sort((x, y) => (Buffer.from(x.key) < Buffer.from(y.key) ? -1 : 1)),
      );

      const c = collector();
      const w = await store.watch(p, start, c.onEvent);
      await c.until(expected.length);
      // And events written while the watch runs follow, still in order.
      await put("late", "x");
      await c.until(expected.length);
      await sleep(100);
      await w.cancel();
      assert.deepEqual(c.events.map(brief), expected);
      const del = c.events.find((e) => e.type === "delete")!;
      assert.deepEqual(del.kv, { key: `${p}b`, value: "", createRevision: 0, modRevision: del.revision, version: 0 });
      const upd = c.events.find((e) => e.kv.key === `${p}a` && e.kv.value === "2")!;
      assert.equal(upd.kv.version, 2);
      assert.equal(upd.kv.createRevision, expected[0]!.revision);

      // Watching from a later revision starts after it.
      const c2 = collector();
      const w2 = await store.watch(p, t.revision, c2.onEvent);
      const later = expected.filter((e) => e.revision > t.revision);
      await c2.until(later.length);
      await sleep(100);
      await w2.cancel();
      assert.deepEqual(c2.events.map(brief), later);
    });

    it("watches from now see only later changes, across store handles", async () => {
      const p = fresh();
      await store.put(`${p}old`, "old");
      const c = collector();
      const w = await store.watch(p, 0, c.onEvent);
      await sleep(100);
      assert.deepEqual(c.events, []);
      // A second handle on the same store (another client, another process's connection).
      const other = await open();
      try {
        const r = await other.put(`${p}new`, "new");
        await c.until(1);
        assert.deepEqual(c.events.map(brief), [{ type: "put", key: `${p}new`, value: "new", revision: r }]);
      } finally {
        await other.close();
      }
      await w.cancel();
    });

    it("a cancelled watch delivers nothing more", async () => {
      const p = fresh();
      const c = collector();
      const w = await store.watch(p, 0, c.onEvent);
      await store.put(`${p}1`, "1");
      await c.until(1);
      await w.cancel();
      await store.put(`${p}2`, "2");
      await sleep(300);
      assert.equal(c.events.length, 1);
    });

    it("refuses a watch from a compacted revision, and keeps current keys", async () => {
      const p = fresh();
      const r1 = await store.put(`${p}a`, "1");
      await store.put(`${p}a`, "2");
      const r3 = await store.put(`${p}b`, "3");
      await store.compact(r3);
      await rejectsWith(
        store.watch(p, r1, () => {}),
        "compacted",
      );
      assert.deepEqual(
        (await store.range(p)).map((kv) => kv.value),
        ["2", "3"],
      );
      // From the compaction point on, history is still there.
      const c = collector();
      const w = await store.watch(p, r3 - 1, c.onEvent);
      await c.until(1);
      await w.cancel();
      assert.deepEqual(c.events.map(brief), [{ type: "put", key: `${p}b`, value: "3", revision: r3 }]);
      await rejectsWith(store.compact((await store.revision()) + 10), "invalid");
    });

    it("leases: keys vanish on expiry and on revoke; keepAlive extends", async () => {
      const p = fresh();
      // Expiry.
      const l1 = await store.grant(1);
      await store.put(`${p}l1`, "x", { lease: l1 });
      await store.put(`${p}plain`, "y");
      assert.equal((await store.get(`${p}l1`))?.lease, l1);
      assert.equal((await store.get(`${p}plain`))?.lease, undefined);
      const c = collector();
      const w = await store.watch(p, 0, c.onEvent);
      await eventually(
        "the leased key to expire",
        async () => (await store.get(`${p}l1`)) === undefined,
        1000 + slack + 1000,
      );
      await c.until(1);
      assert.deepEqual(
        c.events.map((e) => [e.type, e.kv.key]),
        [["delete", `${p}l1`]],
      );
      await w.cancel();
      assert.equal((await store.get(`${p}plain`))?.value, "y");
      await rejectsWith(store.keepAlive(l1), "lease-not-found");
      await rejectsWith(store.put(`${p}l1`, "x", { lease: l1 }), "lease-not-found");

      // Revoke: every key of the lease goes at once.
      const l2 = await store.grant(60);
      await store.put(`${p}r/1`, "1", { lease: l2 });
      await store.put(`${p}r/2`, "2", { lease: l2 });
      await store.revoke(l2);
      assert.deepEqual(await store.range(`${p}r/`), []);
      await rejectsWith(store.revoke(l2), "lease-not-found");

      // keepAlive: alive well past its TTL while kept alive, gone after it stops.
      const l3 = await store.grant(2);
      await store.put(`${p}k`, "kept", { lease: l3 });
      const until = Date.now() + 3500;
      while (Date.now() < until) {
        await store.keepAlive(l3);
        await sleep(400);
      }
      assert.equal((await store.get(`${p}k`))?.value, "kept");
      await eventually(
        "the kept key to expire once no longer kept alive",
        async () => (await store.get(`${p}k`)) === undefined,
        2000 + slack + 1000,
      );
    });

    it("N concurrent compare-and-swap increments end at exactly N", async () => {
      const p = fresh();
      const key = `${p}counter`;
      await store.put(key, "0");
      const N = 40;
      let retries = 0;
      const increment = async () => {
        for (;;) {
          const cur = (await store.get(key))!;
          const r = await store.txn({
            compare: [{ key, target: "modRevision", op: "==", value: cur.modRevision }],
            success: [{ op: "put", key, value: String(Number(cur.value) + 1) }],
          });
          if (r.succeeded) return;
          retries++;
        }
      };
      await Promise.all(Array.from({ length: N }, increment));
      const final = (await store.get(key))!;
      assert.equal(final.value, String(N));
      assert.equal(final.version, N + 1);
      // With 40 writers racing, some must have lost and retried: the compare did its job.
      assert.ok(retries > 0, "expected contention");
    });
  });
}
