// Shared test scaffolding: a store, a driver, rex workers on the sim backend, and
// a journal of rex outcomes to assert on.
import { rmSync } from "node:fs";
import type { Store } from "@merge/store";
import type { Driver } from "../src/driver.ts";
import { Rex, type RexEvent, type RexOptions } from "../src/rex.ts";
import { SimBackend, type SimOptions } from "../src/sim/sim.ts";

export interface Journal {
  events: (RexEvent & { t: number })[];
  of(type: RexEvent["type"]): (RexEvent & { t: number })[];
}

export function journal(): Journal & { push: (e: RexEvent) => void } {
  const events: (RexEvent & { t: number })[] = [];
  return {
    events,
    push: (e) => events.push({ ...e, t: performance.now() }),
    of: (type) => events.filter((e) => e.type === type),
  };
}

export async function startRex(
  store: Store,
  sim: SimOptions | SimBackend = {},
  opts: Partial<RexOptions> = {},
): Promise<{ rex: Rex; backend: SimBackend; journal: ReturnType<typeof journal> }> {
  const backend = sim instanceof SimBackend ? sim : new SimBackend(sim);
  const j = journal();
  const log = process.env.REX_DEBUG ? (m: string) => console.error(m) : undefined;
  const rex = new Rex({ store, backend, onEvent: j.push, leaseTtl: 2, log, ...opts });
  await rex.start();
  return { rex, backend, journal: j };
}

/** Polls `check` until it returns a value (not undefined) or the time runs out. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function statusIs(driver: Driver, mzid: string, status: string, timeoutMs?: number) {
  return until(
    `${mzid} ${status}`,
    async () => {
      const s = await driver.status(mzid);
      return s.summary.status === status ? s : undefined;
    },
    timeoutMs,
  );
}

type Closable = { close(): Promise<unknown> } | { stop(): Promise<unknown> };

/**
 * A suite's `after`: closes (or stops) what it started, in order, each even
 * when an earlier one failed, then removes its temp dir; the first failure is
 * thrown at the end. What did not start is undefined, skipped.
 */
export async function closeThenRemove(dir: string | undefined, ...started: (Closable | undefined)[]): Promise<void> {
  const failures: unknown[] = [];
  for (const s of started) {
    try {
      if (s) await ("close" in s ? s.close() : s.stop());
    } catch (e) {
      failures.push(e);
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (failures.length) throw failures[0];
}
