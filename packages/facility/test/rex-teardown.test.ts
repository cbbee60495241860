// Teardown finishes without an operator where it can: a failing teardown action
// is tried again before its error is recorded (setup actions are not), and
// teardown waits, within a bound, for setup steps dematerialize withdrew that
// still run, so they cannot re-create what teardown removes.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openMemoryStore } from "@merge/store";
import type { ActionContext, NodeSpec } from "../src/backend.ts";
import { Driver } from "../src/driver.ts";
import { SimBackend } from "../src/sim/sim.ts";
import { startRex, statusIs, until } from "./fixture.ts";

const stores: { close(): Promise<void> }[] = [];
after(async () => {
  for (const s of stores) await s.close();
});

const ZERO = { imaging: 0, power: 0, network: 0, infrapod: 0 };

function setup(n: number, mzid: string) {
  const store = openMemoryStore();
  stores.push(store);
  const s = synthetic(n, { mzid, lanSize: 4 });
  return { store, driver: new Driver(store), fragments: fragmentsFor(s.realization, s.experiment, s.facility) };
}

/** A sim whose linkDestroy of one link fails `times` times; counts the calls. */
class FlakyTeardown extends SimBackend {
  calls = 0;
  constructor(
    private readonly link: string,
    private times: number,
  ) {
    super({ durations: ZERO });
  }
  override async linkDestroy(spec: Parameters<SimBackend["linkDestroy"]>[0], ctx: ActionContext): Promise<void> {
    if (spec.link === this.link) {
      this.calls++;
      if (this.times-- > 0) throw new Error(`ip -n node: batch killed while deleting ${spec.link}`);
    }
    return super.linkDestroy(spec, ctx);
  }
}

test("a teardown action that fails twice is tried again within its claim; the dematerialize completes", async () => {
  const { store, driver, fragments } = setup(8, "flaky.exp.proj");
  const sim = new FlakyTeardown("lan1", 2);
  const { rex, journal } = await startRex(store, sim, { teardownRetryMs: [20, 20] });
  await driver.materialize("flaky.exp.proj", fragments);
  await statusIs(driver, "flaky.exp.proj", "active");
  await driver.dematerialize("flaky.exp.proj");
  await statusIs(driver, "flaky.exp.proj", "dematerialized");
  await rex.stop();
  assert.equal(sim.calls, 3);
  assert.equal(journal.of("error").length, 0, "no error recorded");
  assert.equal(sim.links.size, 0);
});

test("a teardown action failing every time is an error after three tries, with its message", async () => {
  const { store, driver, fragments } = setup(8, "stuck.exp.proj");
  const sim = new FlakyTeardown("lan1", Number.POSITIVE_INFINITY);
  const { rex, journal } = await startRex(store, sim, { teardownRetryMs: [20, 20] });
  await driver.materialize("stuck.exp.proj", fragments);
  await statusIs(driver, "stuck.exp.proj", "active");
  await driver.dematerialize("stuck.exp.proj");
  const s = await statusIs(driver, "stuck.exp.proj", "error");
  await rex.idle();
  await rex.stop();
  assert.equal(sim.calls, 3);
  const bad = s.actions.filter((a) => a.state === "error");
  assert.deepEqual(
    bad.map((a) => [a.task, a.id, a.attempts, a.error]),
    [["teardown-network", "link-lan1", 1, "ip -n node: batch killed while deleting lan1"]],
  );
  assert.equal(journal.of("error").length, 1);
});

test("a failed setup action is not tried again (an operator decides)", async () => {
  const { store, driver, fragments } = setup(8, "once.exp.proj");
  const { rex, journal } = await startRex(
    store,
    { durations: ZERO, failures: [{ method: "linkCreate", target: "lan1", times: 1, message: "vlan refused" }] },
    { teardownRetryMs: [20, 20] },
  );
  await driver.materialize("once.exp.proj", fragments);
  await statusIs(driver, "once.exp.proj", "error");
  await rex.idle();
  await rex.stop();
  assert.equal(journal.of("start").filter((e) => "key" in e && e.key.endsWith("/link-lan1")).length, 1);
});

/** A sim whose node setup takes `ms` and ignores its abort signal, like a backend step that cannot be cut short. */
class Stubborn extends SimBackend {
  readonly setupEnd = new Map<string, number>();
  readonly recycleStart = new Map<string, number>();
  constructor(private readonly ms: number) {
    super({ durations: ZERO, strict: false });
  }
  override async nodeSetup(spec: NodeSpec, ctx: ActionContext): Promise<void> {
    await new Promise((r) => setTimeout(r, this.ms));
    this.setupEnd.set(spec.resource, performance.now());
    await super.nodeSetup(spec, { ...ctx, signal: new AbortController().signal });
  }
  override async nodeRecycle(spec: NodeSpec, ctx: ActionContext): Promise<void> {
    this.recycleStart.set(spec.resource, performance.now());
    return super.nodeRecycle(spec, ctx);
  }
}

async function dematerializeDuringSetup(mzid: string, sim: Stubborn, withdrawnWaitMs: number) {
  const { store, driver, fragments } = setup(4, mzid);
  const { rex, journal } = await startRex(store, sim, { withdrawnWaitMs });
  await driver.materialize(mzid, fragments);
  await until("node setups running", async () =>
    journal.of("start").filter((e) => "key" in e && e.key.includes("/action/nodes/")).length === 4 ? true : undefined,
  );
  const t0 = performance.now();
  await driver.dematerialize(mzid);
  await statusIs(driver, mzid, "dematerialized");
  await rex.stop();
  return { t0, nodes: [...sim.recycleStart.keys()] };
}

test("teardown waits for withdrawn setup steps that still run before recycling their nodes", async () => {
  const sim = new Stubborn(300);
  const { nodes } = await dematerializeDuringSetup("wait.exp.proj", sim, 10_000);
  assert.equal(nodes.length, 4);
  for (const r of nodes) {
    const end = sim.setupEnd.get(r);
    assert.ok(end !== undefined, `${r}: its setup ran to its end`);
    assert.ok(sim.recycleStart.get(r)! >= end, `${r}: recycled after its withdrawn setup ended`);
  }
});

test("teardown waits for withdrawn setup steps only up to its bound", async () => {
  const sim = new Stubborn(1500);
  const { t0, nodes } = await dematerializeDuringSetup("bound.exp.proj", sim, 100);
  assert.equal(nodes.length, 4);
  for (const r of nodes) {
    const start = sim.recycleStart.get(r)!;
    assert.ok(start - t0 < 1000, `${r}: recycle started ${Math.round(start - t0)} ms after dematerialize`);
    assert.ok(start < (sim.setupEnd.get(r) ?? Number.POSITIVE_INFINITY), `${r}: before its setup ended`);
  }
});

/** A sim that counts its node setups and recycles in flight, each taking a moment. */
class CountingNodes extends SimBackend {
  setups = { now: 0, most: 0 };
  recycles = { now: 0, most: 0 };
  constructor() {
    super({ durations: ZERO });
  }
  private async counted<T>(c: { now: number; most: number }, work: () => Promise<T>): Promise<T> {
    c.most = Math.max(c.most, ++c.now);
    try {
      await new Promise((r) => setTimeout(r, 20));
      return await work();
    } finally {
      c.now--;
    }
  }
  override nodeSetup(spec: NodeSpec, ctx: ActionContext) {
    return this.counted(this.setups, () => super.nodeSetup(spec, ctx));
  }
  override nodeRecycle(spec: NodeSpec, ctx: ActionContext) {
    return this.counted(this.recycles, () => super.nodeRecycle(spec, ctx));
  }
}

test("teardownConcurrency bounds the teardown actions at once, not the setup's", async () => {
  const { store, driver, fragments } = setup(24, "bounded.exp.proj");
  const sim = new CountingNodes();
  const { rex } = await startRex(store, sim, { concurrency: 32, teardownConcurrency: 4 });
  await driver.materialize("bounded.exp.proj", fragments);
  await statusIs(driver, "bounded.exp.proj", "active");
  await driver.dematerialize("bounded.exp.proj");
  await statusIs(driver, "bounded.exp.proj", "dematerialized");
  await rex.stop();
  assert.ok(sim.setups.most > 4, `setups at once: ${sim.setups.most}`);
  assert.ok(sim.recycles.most >= 2 && sim.recycles.most <= 4, `recycles at once: ${sim.recycles.most}`);
});
