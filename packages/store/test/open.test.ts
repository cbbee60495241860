import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { openStore, parseStoreUrl, StoreError } from "../src/index.ts";
import { type EtcdServer, startEtcd } from "../src/testing/etcd.ts";

describe("store URLs", () => {
  it("parses the three forms", () => {
    assert.deepEqual(parseStoreUrl("memory:"), { backend: "memory" });
    assert.deepEqual(parseStoreUrl("sqlite:///var/lib/merge"), { backend: "sqlite", dir: "/var/lib/merge" });
    assert.deepEqual(parseStoreUrl("sqlite:data/store"), { backend: "sqlite", dir: "data/store" });
    assert.deepEqual(parseStoreUrl("sqlite:///srv/merge%20data?sync=full"), {
      backend: "sqlite",
      dir: "/srv/merge data",
      sync: "full",
    });
    assert.deepEqual(parseStoreUrl("etcd://127.0.0.1:2379"), { backend: "etcd", endpoints: ["http://127.0.0.1:2379"] });
    assert.deepEqual(parseStoreUrl("etcd://a.example:2379,b.example:2379,[::1]:2379"), {
      backend: "etcd",
      endpoints: ["http://a.example:2379", "http://b.example:2379", "http://[::1]:2379"],
    });
    assert.deepEqual(parseStoreUrl("etcd://127.0.0.1:2379?write_timeout_ms=2500"), {
      backend: "etcd",
      endpoints: ["http://127.0.0.1:2379"],
      writeTimeoutMs: 2500,
    });
  });

  it("refuses bad URLs saying what is valid", () => {
    for (const bad of [
      "",
      "postgres://x",
      "sqlite:",
      "sqlite://relative",
      "etcd:",
      "etcd://nohost",
      "memory:/x",
      "sqlite:///d?sync=maybe",
      "etcd://127.0.0.1:2379?write_timeout_ms=0",
      "etcd://127.0.0.1:2379?write_timeout_ms=soon",
    ]) {
      assert.throws(
        () => parseStoreUrl(bad),
        (e: unknown) => e instanceof StoreError && e.code === "invalid" && e.message.includes("expected sqlite:///"),
        bad,
      );
    }
    assert.throws(() => openStore({ backend: "redis" } as never), /sqlite, etcd or memory/);
  });

  describe("opens each backend from a URL", () => {
    const dir = mkdtempSync(join(tmpdir(), "merge-store-open-"));
    let etcd: EtcdServer | undefined;
    after(async () => {
      await etcd?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("memory, sqlite and etcd", async () => {
      etcd = await startEtcd();
      for (const url of ["memory:", `sqlite://${dir}`, etcd.url]) {
        const store = openStore(url);
        try {
          const r = await store.put("open/k", url);
          assert.equal((await store.get("open/k"))?.modRevision, r, url);
          assert.equal(store.backend, url.split(":")[0]);
        } finally {
          await store.close();
        }
      }
    });
  });
});
