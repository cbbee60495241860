/**
 * The credential throttle's cost.
 *
 *   check:        1,000,000 `check()` calls (address + account, 5,000 accounts seen before) against a
 *                 shared throttle holding 10,000 counts: what every sign-in and bearer request pays
 *   check-new:    the same with an account never seen before each time (a salted hash each)
 *   fail-sqlite:  2,000 failures (distinct accounts, one address) merged into a sqlite store
 *   fail-etcd:    the same into a real etcd
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCase, defineBench } from "@merge/bench";
import { openStore, type Store } from "@merge/store";
import { startEtcd } from "@merge/store/testing/etcd";
import { Throttle } from "../src/throttle.ts";
import { shareThrottle } from "../src/throttle-sync.ts";

const CHECKS = 1_000_000;
const FAILURES = 2_000;

async function checks(account: (i: number) => string) {
  const store = openStore({ backend: "memory" });
  const throttle = new Throttle({ addressFailures: 1_000_000 });
  const shared = await shareThrottle(store, throttle);
  for (let i = 0; i < 10_000; i++) throttle.fail("password", "10.0.0.1", `user${i}`);
  await shared.settled();
  return {
    run: () => {
      for (let i = 0; i < CHECKS; i++) throttle.check("password", "10.0.0.2", account(i));
      return CHECKS;
    },
    fields: (n: number) => ({ checks: n, keys: throttle.size }),
    cleanup: async () => {
      await shared.close();
      await store.close();
    },
  };
}

async function failures(store: Store, cleanup: () => Promise<void>) {
  const throttle = new Throttle({ addressFailures: 1_000_000 });
  const shared = await shareThrottle(store, throttle);
  return {
    run: async () => {
      for (let i = 0; i < FAILURES; i++) throttle.fail("password", "10.0.0.1", `user${i}`);
      await shared.settled();
      return shared.isDegraded;
    },
    fields: (degraded: boolean) => ({ failures: FAILURES, degraded }),
    cleanup: async () => {
      await shared.close();
      await store.close();
      await cleanup();
    },
  };
}

export default defineBench({
  name: "throttle",
  cases: {
    check: benchCase(() => checks((i) => `user${i % 5_000}`)),
    "check-new": benchCase(() => checks((i) => `new${i}`)),
    "fail-sqlite": benchCase(async () => {
      const dir = await mkdtemp(join(tmpdir(), "merge-portal-bench-throttle-"));
      return failures(openStore({ backend: "sqlite", dir }), () => rm(dir, { recursive: true, force: true }));
    }),
    "fail-etcd": benchCase(async () => {
      const etcd = await startEtcd();
      return failures(openStore(etcd.url), () => etcd.stop());
    }),
  },
});
