/** What only the sqlite backend promises: durability across reopen and crashes, and several processes on one file. */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { openSqliteStore, openStore, StoreError, type WatchEvent } from "../src/index.ts";

const root = mkdtempSync(join(tmpdir(), "merge-store-proc-"));
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const freshDir = () => join(root, String(n++));
const fixture = new URL("./fixtures/sqlite-child.ts", import.meta.url).pathname;

function child(...args: string[]): { proc: ChildProcess; exited: Promise<number | null>; firstLine: Promise<string> } {
  const proc = spawn(process.execPath, ["--import", "tsx", fixture, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.add(proc);
  const exited = new Promise<number | null>((resolve) =>
    proc.once("exit", (code) => {
      children.delete(proc);
      resolve(code);
    }),
  );
  const firstLine = new Promise<string>((resolve, reject) => {
    proc.stdout!.setEncoding("utf8");
    proc.stdout!.once("data", (s: string) => resolve(s.trim()));
    proc.once("exit", (code) => reject(new Error(`child exited (${code}) before writing`)));
  });
  firstLine.catch(() => {}); // only some callers wait for it
  return { proc, exited, firstLine };
}

describe("sqlite store: persistence and processes", () => {
  it("keeps data, revision and history across close and reopen", async () => {
    const dir = freshDir();
    const s1 = openStore(`sqlite://${dir}`);
    const r1 = await s1.put("k/a", "1");
    await s1.put("k/b", "2");
    await s1.delete("k/a");
    const lease = await s1.grant(3600);
    await s1.put("k/leased", "l", { lease });
    const rev = await s1.revision();
    await s1.close();
    await assert.rejects(s1.get("k/b"), (e: unknown) => e instanceof StoreError && e.code === "closed");

    const s2 = openSqliteStore({ dir });
    try {
      assert.equal(await s2.revision(), rev);
      assert.deepEqual(
        (await s2.range("k/")).map((kv) => [kv.key, kv.value]),
        [
          ["k/b", "2"],
          ["k/leased", "l"],
        ],
      );
      // The next write continues the same revision sequence.
      assert.equal(await s2.put("k/c", "3"), rev + 1);
      // History survives too: a watch from before the close replays it.
      const events: WatchEvent[] = [];
      const w = await s2.watch("k/", r1 - 1, (e) => events.push(e));
      const deadline = Date.now() + 3000;
      while (events.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await w.cancel();
      assert.deepEqual(
        events.map((e) => `${e.type} ${e.kv.key}`),
        ["put k/a", "put k/b", "delete k/a", "put k/leased", "put k/c"],
      );
      // And the lease is still in force.
      await s2.revoke(lease);
      assert.equal(await s2.get("k/leased"), undefined);
    } finally {
      await s2.close();
    }
  });

  it("a writer SIGKILLed mid-loop leaves no half-written transaction", async () => {
    for (const killAfterMs of [150, 400, 700]) {
      const dir = freshDir();
      const c = child("write-loop", dir);
      assert.equal(await c.firstLine, "writing");
      await new Promise((r) => setTimeout(r, killAfterMs));
      c.proc.kill("SIGKILL");
      await c.exited;

      const db = new Database(join(dir, "store.db"), { readonly: true });
      try {
        assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
      } finally {
        db.close();
      }
      const store = openSqliteStore({ dir });
      try {
        const a = await store.get("crash/a");
        const b = await store.get("crash/b");
        const counter = await store.get("crash/counter");
        const padding = await store.get("crash/padding");
        assert.ok(counter && a && b && padding, "at least the first transaction was committed");
        const i = counter.value;
        assert.ok(Number(i) >= 1);
        // Every key of the last transaction is from the same one.
        assert.equal(a.value, i);
        assert.equal(b.value, i);
        assert.ok(padding.value.endsWith(`p${i}`));
        assert.equal(new Set([a.modRevision, b.modRevision, counter.modRevision, padding.modRevision]).size, 1);
        assert.equal(counter.version, Number(i));
        assert.equal(await store.revision(), counter.modRevision);
        // The history agrees: the last revision holds exactly the transaction's four events.
        const events: WatchEvent[] = [];
        const w = await store.watch("crash/", counter.modRevision - 1, (e) => events.push(e));
        await new Promise((r) => setTimeout(r, 100));
        await w.cancel();
        assert.deepEqual(
          events.map((e) => e.kv.key),
          ["crash/a", "crash/padding", "crash/b", "crash/counter"],
        );
        // And the store goes on from there.
        assert.equal(await store.put("crash/after", "x"), counter.modRevision + 1);
      } finally {
        await store.close();
      }
    }
  });

  it("processes sharing one file: CAS increments add up and watchers see each other's writes", async () => {
    const dir = freshDir();
    const store = openSqliteStore({ dir });
    try {
      await store.put("multi/counter", "0");
      const events: WatchEvent[] = [];
      const w = await store.watch("multi/", 0, (e) => events.push(e));
      const M = 150;
      const kids = [child("increment", dir, String(M)), child("increment", dir, String(M))];
      const codes = await Promise.all(kids.map((k) => k.exited));
      assert.deepEqual(codes, [0, 0]);
      assert.equal((await store.get("multi/counter"))?.value, String(2 * M));
      const deadline = Date.now() + 3000;
      while (events.length < 2 * M && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await w.cancel();
      // Every increment, each exactly once, in order: the watcher polled the other processes' writes.
      assert.deepEqual(
        events.map((e) => e.kv.value),
        Array.from({ length: 2 * M }, (_, i) => String(i + 1)),
      );
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.revision > events[i - 1]!.revision);
    } finally {
      await store.close();
    }
  });

  it("compacts old history by itself, keeping the configured number of revisions", async () => {
    const dir = freshDir();
    const store = openSqliteStore({ dir, historyRevisions: 20, leaseSweepMs: 20 });
    try {
      const first = await store.put("h/k", "0");
      for (let i = 1; i <= 40; i++) await store.put("h/k", String(i));
      const head = await store.revision();
      const deadline = Date.now() + 3000;
      let refused = false;
      while (!refused && Date.now() < deadline) {
        try {
          const w = await store.watch("h/", first, () => {});
          await w.cancel();
          await new Promise((r) => setTimeout(r, 20));
        } catch (err) {
          assert.ok(err instanceof StoreError && err.code === "compacted", String(err));
          refused = true;
        }
      }
      assert.ok(refused, "old history was compacted");
      const events: WatchEvent[] = [];
      const w = await store.watch("h/", head - 10, (e) => events.push(e));
      await new Promise((r) => setTimeout(r, 100));
      await w.cancel();
      assert.equal(events.length, 10);
    } finally {
      await store.close();
    }
  });

  it("says which directory it could not open", () => {
    const file = join(root, "not-a-dir");
    writeFileSync(file, "x");
    assert.throws(
      () => openSqliteStore({ dir: file }),
      (e: unknown) => e instanceof Error && e.message.includes(file),
    );
  });
});
