// The lean etcd codecs (etcd-wire.ts) against a real etcd: what they encode etcd reads as meant, and
// what etcd sends they decode as protobufjs would have (lease ids beyond 2^53, multi-byte lengths, UTF-8).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { encodeTxnRequest } from "../src/etcd-wire.ts";
import { openEtcdStore, type WatchEvent } from "../src/index.ts";
import { type EtcdServer, startEtcd } from "../src/testing/etcd.ts";

let etcd: EtcdServer | undefined;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd?.stop());

test("etcd wire: transactions with leases, compares and long UTF-8 values round-trip through txn, range and watch", async () => {
  const store = openEtcdStore({ endpoints: etcd!.endpoints });
  try {
    const lease = await store.grant(30);
    // etcd's lease ids are 63-bit: most are beyond a double's exact range.
    assert.ok(BigInt(lease) > 0n);
    const long = `ünïcödé ${"x".repeat(70_000)} ✓`;
    const events: WatchEvent[] = [];
    const rev = await store.revision();
    const watch = await store.watch("/wire/", rev, (e) => events.push(e));
    const r = await store.txn({
      compare: [
        { key: "/wire/a", target: "absent" },
        { key: "/wire/none", target: "modRevision", op: "==", value: 0 },
        { key: "/wire/none", target: "version", op: "<", value: 1 },
      ],
      success: [
        { op: "put", key: "/wire/a", value: long, lease },
        { op: "put", key: "/wire/b", value: "" },
        { op: "get", key: "/wire/none" },
      ],
      failure: [{ op: "get", key: "/wire/a" }],
    });
    assert.equal(r.succeeded, true);
    assert.equal(r.gets.length, 1);
    assert.equal(r.gets[0], undefined);
    const a = await store.get("/wire/a");
    assert.equal(a?.value, long);
    assert.equal(a?.lease, lease);
    assert.equal(a?.modRevision, r.revision);
    // The same compare now fails, and the failure branch's get brings the key back.
    const again = await store.txn({
      compare: [{ key: "/wire/a", target: "value", op: "==", value: "other" }],
      success: [{ op: "delete", key: "/wire/a" }],
      failure: [{ op: "get", key: "/wire/a" }],
    });
    assert.equal(again.succeeded, false);
    assert.equal(again.gets[0]?.value, long);
    assert.equal(again.gets[0]?.lease, lease);
    const range = await store.range("/wire/");
    assert.deepEqual(
      range.map((kv) => kv.key),
      ["/wire/a", "/wire/b"],
    );
    await store.txn({ compare: [], success: [{ op: "deletePrefix", prefix: "/wire/" }] });
    const deadline = Date.now() + 10_000;
    while (events.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await watch.cancel();
    assert.deepEqual(
      events.map((e) => [e.type, e.kv.key, e.kv.value.length, e.kv.lease]),
      [
        ["put", "/wire/a", long.length, lease],
        ["put", "/wire/b", 0, undefined],
        ["delete", "/wire/a", 0, undefined],
        ["delete", "/wire/b", 0, undefined],
      ],
    );
    assert.equal(events[0]!.revision, r.revision);
  } finally {
    await store.close();
  }
});

test("etcd wire: what the lean encoder does not handle (nested transactions, bad numbers) is left to protobufjs", () => {
  assert.equal(encodeTxnRequest({ success: [{ request_txn: {} }] }), undefined);
  assert.equal(encodeTxnRequest({ success: [{ request_put: { key: Buffer.from("k"), lease: "-5" } }] }), undefined);
  assert.equal(encodeTxnRequest({ compare: [{ key: Buffer.from("k"), target: 4, result: 0 }] }), undefined);
  assert.ok(encodeTxnRequest({ compare: [], success: [{ request_put: { key: Buffer.from("k"), lease: 0 } }] }));
});
