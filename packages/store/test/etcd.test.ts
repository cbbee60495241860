import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { openEtcdStore, StoreError } from "../src/index.ts";
import { type EtcdServer, startEtcd } from "../src/testing/etcd.ts";
import { conformance } from "./conformance.ts";

let etcd: EtcdServer | undefined;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd?.stop());

// etcd checks lease expiry every 500 ms.
conformance("etcd", async () => openEtcdStore({ endpoints: etcd!.endpoints }), { leaseSlackMs: 1500 });

// Too big is the caller's mistake (invalid), never "etcd unavailable": etcd itself refuses
// above --max-request-bytes (1.5 MiB by default), its gRPC server above 2 MiB.
test("etcd: a request over either size limit is invalid, and nothing is written", async () => {
  const store = openEtcdStore({ endpoints: etcd!.endpoints });
  try {
    for (const mib of [1.7, 2.5]) {
      await assert.rejects(store.put("/too-big", "x".repeat(mib * 2 ** 20)), (e: Error) => {
        assert.ok(e instanceof StoreError, String(e));
        assert.equal(e.code, "invalid", `${mib} MiB: ${e.message}`);
        return true;
      });
    }
    assert.equal(await store.get("/too-big"), undefined);
    await store.put("/after-too-big", "ok");
    assert.equal((await store.get("/after-too-big"))?.value, "ok", "the store still works");
  } finally {
    await store.close();
  }
});
