import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { it } from "node:test";
import { openStore, StoreError } from "../src/index.ts";
import { startEtcd } from "../src/testing/etcd.ts";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it("startEtcd runs a private etcd and stop() removes every trace of it", async () => {
  const [a, b] = await Promise.all([startEtcd(), startEtcd()]);
  try {
    assert.notEqual(a.endpoints[0], b.endpoints[0]);
    assert.ok(alive(a.pid) && existsSync(a.dataDir));
    // Two separate clusters: a write to one is not in the other.
    const sa = openStore(a.url);
    const sb = openStore(b.url);
    await sa.put("harness/k", "a");
    assert.equal(await sb.get("harness/k"), undefined);
    await sa.close();
    await sb.close();
  } finally {
    await a.stop();
    await b.stop();
  }
  assert.ok(!alive(a.pid) && !alive(b.pid), "etcd processes are gone");
  assert.ok(!existsSync(a.dataDir) && !existsSync(b.dataDir), "data directories are removed");
  // A stopped etcd is reported as unavailable, not as a hang.
  const gone = openStore({ backend: "etcd", endpoints: a.endpoints, dialTimeoutMs: 500 });
  try {
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("hung")), 15_000);
    });
    await assert.rejects(
      Promise.race([gone.get("harness/k"), hung]),
      (e: unknown) => e instanceof StoreError && e.code === "unavailable",
    );
    clearTimeout(timer);
  } finally {
    await gone.close();
  }
});
