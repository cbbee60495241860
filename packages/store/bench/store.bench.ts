/**
 * Store write throughput per backend: `put` (one key per write) and `txn` (a
 * compare-and-swap increment on a per-writer counter plus a second key), with 16
 * writers in flight, as a server handling concurrent requests would issue them.
 *   npm run bench -- store
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCase, defineBench } from "@merge/bench";
import { openStore, type Store } from "../src/index.ts";
import { startEtcd } from "../src/testing/etcd.ts";

const WRITERS = 16;
const VALUE = JSON.stringify({ name: "node-0042", spec: "x".repeat(200) });

async function sqlite(): Promise<{ store: Store; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "merge-store-bench-"));
  const store = openStore({ backend: "sqlite", dir });
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function etcd(): Promise<{ store: Store; cleanup: () => Promise<void> }> {
  const server = await startEtcd();
  const store = openStore({ backend: "etcd", endpoints: server.endpoints });
  await store.put("bench/warmup", "x");
  return {
    store,
    cleanup: async () => {
      await store.close();
      await server.stop();
    },
  };
}

/** Runs `total` operations from WRITERS concurrent loops. */
async function writers(total: number, op: (writer: number, i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = next++; i < total; i = next++) await op(w, i);
    }),
  );
  return total;
}

function putCase(open: typeof sqlite, total: number) {
  return benchCase(async () => {
    const { store, cleanup } = await open();
    const start = performance.now();
    return {
      run: async () => {
        await writers(total, (_, i) => store.put(`bench/put/${i % 1000}`, VALUE));
        return { ops: total, ms: performance.now() - start };
      },
      fields: (r) => ({ ops: r.ops, writers: WRITERS, ops_per_s: Math.round((r.ops / r.ms) * 1000) }),
      cleanup,
    };
  });
}

function txnCase(open: typeof sqlite, total: number) {
  return benchCase(async () => {
    const { store, cleanup } = await open();
    for (let w = 0; w < WRITERS; w++) await store.put(`bench/txn/${w}/counter`, "0");
    const start = performance.now();
    return {
      run: async () => {
        let conflicts = 0;
        await writers(total, async (w) => {
          const key = `bench/txn/${w}/counter`;
          for (;;) {
            const cur = (await store.get(key))!;
            const r = await store.txn({
              compare: [{ key, target: "modRevision", op: "==", value: cur.modRevision }],
              success: [
                { op: "put", key, value: String(Number(cur.value) + 1) },
                { op: "put", key: `bench/txn/${w}/doc`, value: VALUE },
              ],
            });
            if (r.succeeded) return;
            conflicts++;
          }
        });
        return { ops: total, conflicts, ms: performance.now() - start };
      },
      // One op = a read plus a compare-and-swap transaction, as in every read-modify-write.
      fields: (r) => ({
        ops: r.ops,
        conflicts: r.conflicts,
        writers: WRITERS,
        ops_per_s: Math.round((r.ops / r.ms) * 1000),
      }),
      cleanup,
    };
  });
}

export default defineBench({
  name: "store",
  cases: {
    "sqlite-put": putCase(sqlite, 20_000),
    "sqlite-txn": txnCase(sqlite, 10_000),
    "etcd-put": putCase(etcd, 5_000),
    "etcd-txn": txnCase(etcd, 3_000),
  },
});
