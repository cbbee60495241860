/**
 * A three-member etcd cluster on loopback (Debian's etcd, one process per
 * member): the store's status shows members, leader and sizes; a killed leader
 * is replaced and the store keeps working through the survivors; a killed
 * follower comes back and catches up. Also the sqlite store's status.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openStore, type Store } from "../src/index.ts";
import { type EtcdCluster, startEtcdCluster } from "../src/testing/etcd.ts";

let cluster: EtcdCluster;
let store: Store;
before(async () => {
  cluster = await startEtcdCluster(3);
  store = openStore(cluster.url);
});
after(async () => {
  await store?.close();
  await cluster?.stop();
});

/** Retries `fn` while the cluster elects (a request in flight to a killed member fails once). */
async function eventually<T>(fn: () => Promise<T>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

test("status: three members, one leader, database sizes", async () => {
  await store.put("k/a", "1");
  const s = await store.status();
  assert.equal(s.backend, "etcd");
  assert.equal(s.members?.length, 3);
  assert.ok(s.members?.every((m) => m.reachable && (m.dbBytes ?? 0) > 0 && m.clientUrls.length === 1));
  assert.equal(s.members?.filter((m) => m.leader).length, 1);
  const leader = await cluster.leader();
  assert.equal(s.leader, cluster.members[leader]?.name);
});

test("the leader killed: a new one is elected, writes go on; a follower down and back catches up", async () => {
  const old = await cluster.leader();
  assert.ok(old >= 0);
  await cluster.kill(old);
  await eventually(() => store.put("k/after-leader", "2"));
  let now = -1;
  for (let i = 0; i < 100 && (now < 0 || now === old); i++) {
    now = await cluster.leader();
    if (now < 0 || now === old) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(now >= 0 && now !== old, "another member leads");
  const s = await eventually(() => store.status());
  // By name: etcd lists its members in its own order (by member id), not the order they were started in.
  assert.deepEqual(
    Object.fromEntries((s.members ?? []).map((m) => [m.name, m.reachable])),
    Object.fromEntries(cluster.members.map((m, i) => [m.name, i !== old])),
  );
  assert.equal(s.members?.find((m) => !m.reachable)?.name, cluster.members[old]?.name);
  // A follower down as well would lose the quorum; instead the old leader comes back and catches up.
  await cluster.restart(old);
  const alone = openStore({ backend: "etcd", endpoints: [cluster.members[old]!.endpoint] });
  try {
    const v = await eventually(async () => {
      const kv = await alone.get("k/after-leader");
      if (kv === undefined) throw new Error("not yet");
      return kv.value;
    });
    assert.equal(v, "2");
  } finally {
    await alone.close();
  }
  // A follower killed for a while: the two others keep the quorum; writes made meanwhile reach it when back.
  const follower = cluster.members.findIndex((_, i) => i !== now);
  await cluster.kill(follower);
  for (let i = 0; i < 20; i++) await eventually(() => store.put(`k/while-down/${i}`, String(i)));
  await cluster.restart(follower);
  const back = openStore({ backend: "etcd", endpoints: [cluster.members[follower]!.endpoint] });
  try {
    const got = await eventually(async () => {
      const r = await back.range("k/while-down/");
      if (r.length !== 20) throw new Error(`${r.length} of 20 so far`);
      return r;
    });
    assert.equal(got.length, 20);
  } finally {
    await back.close();
  }
  assert.ok((await store.status()).members?.every((m) => m.reachable));
});

test("sqlite status: the file and its size", async () => {
  const dir = mkdtempSync(join(tmpdir(), "merge-store-status-"));
  const s = openStore({ backend: "sqlite", dir });
  try {
    await s.put("a", "x".repeat(10_000));
    const st = await s.status();
    assert.equal(st.backend, "sqlite");
    assert.equal(st.file, join(dir, "store.db"));
    assert.ok((st.bytes ?? 0) >= 10_000);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
