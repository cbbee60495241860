import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  createJSON,
  getDoc,
  getJSON,
  openMemoryStore,
  putJSON,
  rangeJSON,
  StoreError,
  updateJSON,
} from "../src/index.ts";

interface Account {
  name: string;
  balance: number;
}

const parseAccount = (raw: unknown): Account => {
  const a = raw as Partial<Account>;
  if (typeof a?.name !== "string" || typeof a.balance !== "number")
    throw new Error("expected {name: string, balance: number}");
  return a as Account;
};

describe("JSON documents", () => {
  const store = openMemoryStore();
  after(() => store.close());

  it("puts, gets and lists typed documents", async () => {
    const r = await putJSON(store, "acct/alice", { name: "alice", balance: 10 });
    assert.deepEqual(await getJSON<Account>(store, "acct/alice"), { name: "alice", balance: 10 });
    assert.deepEqual(await getDoc<Account>(store, "acct/alice"), {
      key: "acct/alice",
      value: { name: "alice", balance: 10 },
      modRevision: r,
      createRevision: r,
      version: 1,
    });
    await putJSON(store, "acct/bob", { name: "bob", balance: 5 });
    assert.deepEqual(
      (await rangeJSON(store, "acct/", { parse: parseAccount })).map((d) => d.value.name),
      ["alice", "bob"],
    );
    assert.deepEqual(
      (await rangeJSON<Account>(store, "acct/", { after: "acct/alice" })).map((d) => d.key),
      ["acct/bob"],
    );
    assert.equal(await getJSON(store, "acct/nobody"), undefined);
  });

  it("creates only when absent", async () => {
    const r = await createJSON(store, "once", { n: 1 });
    assert.equal(typeof r, "number");
    assert.equal(await createJSON(store, "once", { n: 2 }), undefined);
    assert.deepEqual(await getJSON(store, "once"), { n: 1 });
  });

  it("reports documents that are not JSON, or not the expected shape, naming the key", async () => {
    await store.put("bad/text", "{not json");
    await putJSON(store, "bad/shape", { name: 3 });
    await assert.rejects(
      getJSON(store, "bad/text"),
      (e: unknown) => e instanceof StoreError && e.code === "corrupt" && e.message.includes("bad/text"),
    );
    await assert.rejects(
      getJSON(store, "bad/shape", parseAccount),
      (e: unknown) =>
        e instanceof StoreError &&
        e.code === "corrupt" &&
        e.message.includes("bad/shape") &&
        e.message.includes("expected"),
    );
    await assert.rejects(
      putJSON(store, "bad/undefined", undefined),
      (e: unknown) => e instanceof StoreError && e.code === "invalid",
    );
  });

  it("updateJSON: concurrent read-modify-writes never lose an update", async () => {
    await putJSON(store, "acct/carol", { name: "carol", balance: 0 });
    let calls = 0;
    await Promise.all(
      Array.from({ length: 50 }, () =>
        updateJSON<Account>(
          store,
          "acct/carol",
          async (a) => {
            calls++;
            await new Promise((r) => setImmediate(r)); // let others interleave between read and write
            return { ...a!, balance: a!.balance + 1 };
          },
          { parse: parseAccount },
        ),
      ),
    );
    assert.equal((await getJSON<Account>(store, "acct/carol"))?.balance, 50);
    assert.ok(calls > 50, "some updates lost a race and were retried");
  });

  it("updateJSON: creates when absent, and writes nothing when fn returns undefined", async () => {
    const created = await updateJSON<number>(store, "count", (n) => (n ?? 0) + 1);
    assert.deepEqual({ value: created.value, written: created.written }, { value: 1, written: true });
    const rev = await store.revision();
    const same = await updateJSON<number>(store, "count", () => undefined);
    assert.deepEqual(same, { value: 1, revision: created.revision, written: false });
    assert.equal(await store.revision(), rev);
  });

  it("updateJSON gives up with a conflict error when it can never win", async () => {
    await putJSON(store, "hot", 0);
    await assert.rejects(
      updateJSON<number>(
        store,
        "hot",
        async (n) => {
          await putJSON(store, "hot", -1); // a rival write between every read and write
          return (n ?? 0) + 1;
        },
        { maxAttempts: 3, what: "the hot counter" },
      ),
      (e: unknown) =>
        e instanceof StoreError &&
        e.code === "conflict" &&
        /^the hot counter: gave up after 3 attempts: other writers kept changing it \(revision \d+ to \d+ while updating\)$/.test(
          e.message,
        ),
    );
  });
});
