/** A watch whose history is compacted before it could be delivered ends through onError (local backends). */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { openMemoryStore, openSqliteStore, type Store, StoreError, type WatchEvent } from "../src/index.ts";

const dir = mkdtempSync(join(tmpdir(), "merge-store-lag-"));
after(() => rmSync(dir, { recursive: true, force: true }));

for (const [name, open] of [
  ["memory", () => openMemoryStore()],
  ["sqlite", () => openSqliteStore({ dir })],
] as [string, () => Store][]) {
  it(`${name}: a watch overtaken by compaction reports "compacted" and delivers nothing after`, async () => {
    const store = open();
    try {
      const from = await store.revision();
      for (let i = 0; i < 10; i++) await store.put("lag/k", String(i));
      const events: WatchEvent[] = [];
      const errors: Error[] = [];
      // Its backlog is delivered asynchronously; compacting at once overtakes it.
      const w = await store.watch("lag/", from, (e) => events.push(e), { onError: (e) => errors.push(e) });
      await store.compact(await store.revision());
      await store.put("lag/k", "after");
      await new Promise((r) => setTimeout(r, 200));
      await w.cancel();
      assert.equal(events.length, 0);
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof StoreError && errors[0].code === "compacted", String(errors[0]));
    } finally {
      await store.close();
    }
  });

  it(`${name}: an onEvent that throws ends its watch through onError`, async () => {
    const store = open();
    try {
      const errors: Error[] = [];
      let calls = 0;
      const w = await store.watch(
        "boom/",
        0,
        () => {
          calls++;
          throw new Error("handler failed");
        },
        { onError: (e) => errors.push(e) },
      );
      await store.put("boom/1", "x");
      await store.put("boom/2", "x");
      await new Promise((r) => setTimeout(r, 200));
      await w.cancel();
      assert.equal(calls, 1);
      assert.deepEqual(
        errors.map((e) => e.message),
        ["handler failed"],
      );
    } finally {
      await store.close();
    }
  });
}
