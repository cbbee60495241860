/**
 * Lease expiry at scale, on a sqlite store: 1,000 accepted realizations whose
 * leases ran out (each holding one node, with its allocation header and
 * chunk), released by one lease-keeper sweep: each a compare-and-swap that
 * deletes the record, the allocation and the expiry entry, writes its history
 * entry and tombstone, and stores a notice for its creator.
 *
 *   expire-1000: ms to expire and clean all 1,000
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCase, defineBench } from "@merge/bench";
import { openStore } from "@merge/store";
import { realizeEngine } from "../src/engine.ts";
import { DEFAULT_LEASE } from "../src/lease-policy.ts";
import { LeaseKeeper } from "../src/leases.ts";
import { Notifier } from "../src/notifications.ts";
import { keys, type RealizationRecord } from "../src/objects.ts";
import { Realizer, readAllocations, reserveAllocationTxn } from "../src/realization.ts";
import { putRealization } from "../src/realization-record.ts";

function expire(count: number) {
  return benchCase(async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "merge-portal-bench-lease-"));
    const store = openStore({ backend: "sqlite", dir: dataDir });
    const now = Date.now();
    const expires = now - 1000;
    for (let i = 0; i < count; i++) {
      const name = `r${i}`;
      const id = `${name}.e.p`;
      const record: RealizationRecord = {
        name,
        experiment: "e",
        project: "p",
        revision: 1,
        state: "accepted",
        creator: "u",
        created: new Date(now - 3600_000).toISOString(),
        accepted: new Date(now - 3600_000).toISOString(),
        expires: new Date(expires).toISOString(),
        realization: null,
        diagnostics: [],
        resources: [`f/n${i}`],
      };
      const { epoch } = await readAllocations(store);
      const reserve = reserveAllocationTxn(
        id,
        [
          {
            kind: "node",
            realization: id,
            facility: "f",
            resource: `n${i}`,
            node: "a",
            mode: "virtual",
            cores: 1,
            memory: 1,
            disk: 0,
          },
        ],
        epoch,
      );
      await store.txn({
        compare: reserve.compare,
        success: [
          ...reserve.ops,
          ...putRealization(record),
          { op: "put", key: keys.expiry(expires, "p", "e", name), value: JSON.stringify({ id }) },
        ],
      });
    }
    const realizer = new Realizer(store, realizeEngine, 60_000, 0);
    const keeper = new LeaseKeeper(store, DEFAULT_LEASE, realizer, new Notifier(store));
    return {
      run: async () => {
        const out = await keeper.sweep();
        const left = (await store.range(keys.allocations())).length + (await store.range(keys.expiries())).length;
        if (out.released !== count || left !== 0)
          throw new Error(`released ${out.released} of ${count}; ${left} allocations or expiry entries left`);
        return out;
      },
      fields: (out) => ({
        realizations: count,
        released: out.released,
      }),
      cleanup: async () => {
        await store.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  });
}

export default defineBench({
  name: "lease",
  cases: { "expire-1000": expire(1000) },
});
