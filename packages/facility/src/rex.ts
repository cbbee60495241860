/**
 * Rex: the execution agent. A worker mirrors the task DAGs from the store (one
 * range, then one watch), and runs every runnable action with bounded
 * concurrency. An action is runnable when its task's dependencies are done, the
 * stages before its own are done, its task has no action in error, and nobody
 * holds a claim on it.
 *
 * Claims are compare-and-swap puts of `/cogs/claim/...` attached to the worker's
 * lease: two workers cannot both claim an action, and a dead worker's claims
 * vanish when its lease expires, so another worker retries the action (actions
 * are idempotent). An outcome is recorded only while the claim is still held.
 *
 * Teardown is made to finish without an operator where it can: a failed
 * teardown action is tried again (within its claim, a few times, backing off)
 * before its error is recorded; and teardown waits, up to a bound, for setup
 * actions that dematerialize withdrew but that are still running (their claims
 * are still held), so a half-finished setup step cannot re-create what teardown
 * has just removed.
 */
import { hostname } from "node:os";
import { type Compare, type Op, type Store, updateJSON, type Watch, type WatchEvent } from "@merge/store";
import { nodeTransition, parseActionSpec, performAction } from "./actions.ts";
import type { ActionContext, Backend, MzId, NodeState } from "./backend.ts";
import { discard, rangeAll } from "./driver.ts";
import {
  type Action,
  type ActionSpec,
  actionDone,
  actionNode,
  type Claim,
  keys,
  type MzInfo,
  type NodeRecord,
  parseKey,
  ROOT,
  type StoredAction,
  storedAction,
  type Task,
  type WorkerRecord,
} from "./task.ts";

export type RexEvent =
  | { type: "start" | "complete" | "lost"; key: string; worker: string; attempts: number }
  | { type: "error"; key: string; worker: string; attempts: number; error: string }
  | { type: "discarded"; mzid: MzId; worker: string };

export interface RexOptions {
  store: Store;
  backend: Backend;
  /** Worker id, shown in claims and as `completedBy`. */
  id?: string;
  /** Actions run at once by this worker. */
  concurrency?: number;
  /** Seconds a claim outlives a worker that stopped keeping its lease alive. */
  leaseTtl?: number;
  /** Outcome journal (tests, logs). */
  onEvent?: (e: RexEvent) => void;
  log?: (message: string) => void;
  /** Waits before the 2nd, 3rd, … try of a failed teardown action (default 500, 1,000 ms: three tries). */
  teardownRetryMs?: number[];
  /** Longest teardown waits for a withdrawn setup action that still runs (default 30 s). */
  withdrawnWaitMs?: number;
}

interface Cached<T> {
  value: T;
  rev: number;
}

interface MzCache {
  info?: Cached<MzInfo>;
  tasks: Map<string, Task>;
  /** task → stage → action key → action */
  actions: Map<string, Map<number, Map<string, Cached<Action>>>>;
}

/** Claims and outcomes per transaction: etcd allows 128 operations in one. */
const BATCH = 40;

type Outcome = { ok: true; info?: Partial<MzInfo> } | { ok: false; error: string };

interface Job {
  key: string;
  claimKey: string;
  claim: string;
  abort: AbortController;
  claimed: Action;
  node?: string;
  nodeRec?: NodeRecord;
  busy: boolean;
  transition?: { during: NodeState; target: NodeState };
  claimRev: number;
  compare: Compare[];
  ops: Op[];
}

interface Running {
  abort: AbortController;
  claim: string;
  claimKey: string;
}

export class Rex {
  readonly id: string;
  private readonly store: Store;
  private readonly backend: Backend;
  private readonly concurrency: number;
  private readonly ttl: number;
  private readonly mzs = new Map<MzId, MzCache>();
  private readonly claims = new Set<string>();
  /** Action key → what it does (kept apart from its often rewritten state). */
  private readonly specs = new Map<string, ActionSpec>();
  private readonly nodes = new Map<string, Cached<NodeRecord>>();
  private readonly running = new Map<string, Running>();
  private readonly dirty = new Set<MzId>();
  private readonly finalizing = new Set<MzId>();
  private watch?: Watch;
  private lease?: string;
  private keepAlive?: NodeJS.Timeout;
  private pumpScheduled = false;
  private stopped = false;
  private nonce = 0;
  private idleWaiters: (() => void)[] = [];
  private outcomes: { job: Job; outcome: Outcome }[] = [];
  private flushScheduled = false;
  /** Claimed action key → when this worker first saw it withdrawn (its action deleted) while the claim held. */
  private readonly withdrawn = new Map<string, number>();
  private readonly lingerTimers = new Map<MzId, NodeJS.Timeout>();
  private readonly retryMs: number[];
  private readonly withdrawnWait: number;

  constructor(private readonly opts: RexOptions) {
    this.store = opts.store;
    this.backend = opts.backend;
    this.id = opts.id ?? `rex-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.concurrency = opts.concurrency ?? 64;
    this.ttl = opts.leaseTtl ?? 10;
    this.retryMs = opts.teardownRetryMs ?? [500, 1000];
    this.withdrawnWait = opts.withdrawnWaitMs ?? 30_000;
  }

  async start(): Promise<void> {
    this.lease = await this.store.grant(this.ttl);
    this.keepAlive = setInterval(() => void this.renew(), (this.ttl * 1000) / 3);
    this.keepAlive.unref();
    await this.announce();
    const rev = await this.store.revision();
    for (const kv of await rangeAll(this.store, ROOT)) {
      this.apply({ type: "put", kv, revision: kv.modRevision });
    }
    // The range may include writes after `rev`; the watch replays them in order, which converges.
    this.watch = await this.store.watch(ROOT, rev, (e) => this.apply(e));
    for (const mzid of this.mzs.keys()) this.dirty.add(mzid);
    this.schedule();
  }

  /** Stop taking work; wait for running actions (aborted after `graceMs`), then release claims. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    clearInterval(this.keepAlive);
    for (const t of this.lingerTimers.values()) clearTimeout(t);
    await this.watch?.cancel();
    const deadline = setTimeout(() => {
      for (const r of this.running.values()) r.abort.abort(new Error("rex stopping"));
    }, graceMs);
    while (this.running.size || this.finalizing.size) await new Promise((r) => setTimeout(r, 10));
    clearTimeout(deadline);
    if (this.lease) await this.store.revoke(this.lease).catch(() => {});
  }

  /** Resolves when nothing is runnable or running for this worker (tests, benchmarks). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return !this.running.size && !this.dirty.size && !this.pumpScheduled && !this.finalizing.size;
  }

  /** The worker record on the current lease (cog health lists the live ones). */
  private readonly started = new Date().toISOString();
  private async announce(): Promise<void> {
    const me: WorkerRecord = {
      id: this.id,
      pid: process.pid,
      host: hostname(),
      started: this.started,
      concurrency: this.concurrency,
    };
    await this.store.put(keys.worker(this.id), JSON.stringify(me), { lease: this.lease });
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    if (!this.lease) {
      // The last grant failed (store unreachable): try again; no claims are made meanwhile.
      this.lease = await this.store.grant(this.ttl).catch(() => undefined);
      if (this.lease) {
        await this.announce().catch(() => undefined);
        this.schedule();
      }
      return;
    }
    try {
      await this.store.keepAlive(this.lease);
    } catch (err) {
      // The lease expired (we were stalled): our claims are gone, so stop and take a new one.
      this.opts.log?.(`rex ${this.id}: lease lost (${(err as Error).message}); aborting running actions`);
      for (const r of this.running.values()) r.abort.abort(new Error("lease lost"));
      this.lease = await this.store.grant(this.ttl).catch(() => undefined);
    }
  }

  private mz(mzid: MzId): MzCache {
    let m = this.mzs.get(mzid);
    if (!m) {
      m = { tasks: new Map(), actions: new Map() };
      this.mzs.set(mzid, m);
    }
    return m;
  }

  private apply(e: WatchEvent): void {
    const k = parseKey(e.kv.key);
    const put = e.type === "put";
    switch (k.type) {
      case "info": {
        const m = this.mz(k.mzid);
        if (put) m.info = { value: JSON.parse(e.kv.value) as MzInfo, rev: e.kv.modRevision };
        else this.mzs.delete(k.mzid);
        this.dirty.add(k.mzid);
        break;
      }
      case "task": {
        const m = this.mz(k.mzid);
        if (put) m.tasks.set(k.task, JSON.parse(e.kv.value) as Task);
        else m.tasks.delete(k.task);
        this.dirty.add(k.mzid);
        break;
      }
      case "action": {
        const m = this.mz(k.mzid);
        let stages = m.actions.get(k.task);
        if (!stages) {
          stages = new Map();
          m.actions.set(k.task, stages);
        }
        let stage = stages.get(k.stage);
        if (!stage) {
          stage = new Map();
          stages.set(k.stage, stage);
        }
        if (put) {
          // Our own writes are applied as they commit; the watch may bring them again, later.
          if ((stage.get(k.key)?.rev ?? 0) < e.kv.modRevision) {
            const state = JSON.parse(e.kv.value) as StoredAction;
            // The spec may come later (a range returns action keys before spec keys).
            stage.set(k.key, { value: { ...state, spec: this.specs.get(k.key) as ActionSpec }, rev: e.kv.modRevision });
          }
        } else {
          stage.delete(k.key);
          // Dematerialize replaced the action: stop working on it.
          this.running.get(k.key)?.abort.abort(new Error("action withdrawn"));
        }
        this.dirty.add(k.mzid);
        break;
      }
      case "spec": {
        const actionKey = keys.actionOfSpec(e.kv.key);
        if (put) {
          const spec = parseActionSpec(e.kv.value);
          this.specs.set(actionKey, spec);
          const cached = this.mzs.get(k.mzid)?.actions.get(k.task)?.get(k.stage)?.get(actionKey);
          if (cached && !cached.value.spec) cached.value = { ...cached.value, spec };
          this.dirty.add(k.mzid);
        } else this.specs.delete(actionKey);
        break;
      }
      case "claim": {
        if (put) this.claims.add(k.actionKey);
        else {
          this.claims.delete(k.actionKey);
          this.withdrawn.delete(k.actionKey);
          const r = this.running.get(k.actionKey);
          // Our own claim vanished while running: the lease expired, someone else may take it.
          if (r && e.kv.key === r.claimKey && !r.abort.signal.aborted) r.abort.abort(new Error("claim lost"));
          const a = parseKey(k.actionKey);
          if (a.type === "action") this.dirty.add(a.mzid);
        }
        break;
      }
      case "node":
        if (put) this.nodes.set(k.resource, { value: JSON.parse(e.kv.value) as NodeRecord, rev: e.kv.modRevision });
        else this.nodes.delete(k.resource);
        break;
      default:
        break;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.pumpScheduled || this.stopped) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    // Without a lease a claim would never expire: claim nothing until there is one again.
    if (!this.lease) return;
    const picked: Cached<Action>[] = [];
    for (const mzid of [...this.dirty]) {
      if (this.running.size + picked.length >= this.concurrency) break;
      this.dirty.delete(mzid);
      const m = this.mzs.get(mzid);
      if (!m?.info || m.info.value.phase === "incoming") continue;
      let pending = false;
      let allDone = m.tasks.size > 0;
      let lingering: boolean | undefined;
      for (const task of m.tasks.values()) {
        const r = this.runnable(m, task);
        if (r === "done") continue;
        allDone = false;
        if (r === "blocked") continue;
        if (task.phase === "teardown") {
          lingering ??= this.lingering(mzid, m);
          if (lingering) continue;
        }
        const room = this.concurrency - this.running.size - picked.length;
        if (r.length > room) pending = true;
        picked.push(...r.slice(0, Math.max(0, room)));
      }
      if (pending) this.dirty.add(mzid);
      if (allDone && m.info.value.phase === "dematerializing" && !this.finalizing.has(mzid)) void this.finalize(mzid);
    }
    if (picked.length) void this.claim(picked);
    if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * Whether a withdrawn action of this materialization still runs somewhere:
   * its claim is held though its action is gone (dematerialize replaced it).
   * Teardown waits for it, but no longer than `withdrawnWaitMs` from when this
   * worker first saw it (a backend call may ignore its abort signal).
   */
  private lingering(mzid: MzId, m: MzCache): boolean {
    const now = Date.now();
    let soonest = Number.POSITIVE_INFINITY;
    for (const key of this.claims) {
      const k = parseKey(key);
      if (k.type !== "action" || k.mzid !== mzid || m.actions.get(k.task)?.get(k.stage)?.has(key)) continue;
      const since = this.withdrawn.get(key) ?? now;
      this.withdrawn.set(key, since);
      const left = since + this.withdrawnWait - now;
      if (left > 0) soonest = Math.min(soonest, left);
    }
    if (!Number.isFinite(soonest)) return false;
    // Look again once the bound has passed (the claim's deletion wakes us earlier).
    if (!this.lingerTimers.has(mzid)) {
      const t = setTimeout(() => {
        this.lingerTimers.delete(mzid);
        this.dirty.add(mzid);
        this.schedule();
      }, soonest + 1);
      t.unref();
      this.lingerTimers.set(mzid, t);
    }
    return true;
  }

  private taskDone(m: MzCache, taskId: string): boolean {
    const task = m.tasks.get(taskId);
    if (!task) return false;
    const stages = m.actions.get(taskId);
    if (!stages) return true;
    for (const stage of stages.values()) for (const a of stage.values()) if (!actionDone(a.value)) return false;
    return true;
  }

  /** The task's runnable actions now, or why there are none. */
  private runnable(m: MzCache, task: Task): Cached<Action>[] | "done" | "blocked" {
    const stages = m.actions.get(task.id);
    if (!stages) return "done";
    const order = [...stages.keys()].sort((a, b) => a - b);
    let current: Map<string, Cached<Action>> | undefined;
    for (const s of order) {
      const stage = stages.get(s)!;
      let done = true;
      for (const a of stage.values()) {
        if (a.value.state === "error" && !a.value.masked) return "blocked";
        if (!actionDone(a.value)) done = false;
      }
      if (!done && !current) current = stage;
    }
    if (!current) return "done";
    for (const d of task.deps) if (!this.taskDone(m, d)) return "blocked";
    const out: Cached<Action>[] = [];
    for (const [key, a] of current) {
      const free = !a.value.masked && !this.claims.has(key) && !this.running.has(key);
      if (a.value.state === "pending" && a.value.spec && free) out.push(a);
    }
    return out.length ? out : "blocked";
  }

  /** Prepare a claim: the compare-and-swap that takes the action, and the work to do once taken. */
  private prepare(cached: Cached<Action>): Job {
    const action = cached.value;
    const key = keys.action(action);
    const claimKey = keys.claim(key);
    const claim = JSON.stringify({
      worker: this.id,
      nonce: `${this.id}:${++this.nonce}`,
      at: new Date().toISOString(),
    } satisfies Claim);
    const abort = new AbortController();
    this.running.set(key, { abort, claim, claimKey });
    const node = actionNode(action.spec);
    const nodeRec = node ? this.nodes.get(node)?.value : undefined;
    const busy = !!(node && nodeRec?.mzid && nodeRec.mzid !== action.mzid && nodeRec.current !== "clean");
    const transition = node && !busy ? nodeTransition(action.spec) : undefined;
    const claimed: Action = { ...action, attempts: action.attempts + 1, updated: new Date().toISOString() };
    const ops: Op[] = [
      { op: "put", key: claimKey, value: claim, lease: this.lease },
      { op: "put", key, value: storedAction(claimed) },
    ];
    if (node && transition) {
      ops.push({
        op: "put",
        key: keys.node(node),
        value: JSON.stringify({
          resource: node,
          current: transition.during,
          target: transition.target,
          mzid: action.mzid,
          node: "node" in action.spec ? action.spec.node.node : nodeRec?.node,
          action: key,
          updated: new Date().toISOString(),
        } satisfies NodeRecord),
      });
    }
    return {
      key,
      claimKey,
      claim,
      abort,
      claimed,
      node,
      nodeRec,
      busy,
      transition,
      claimRev: 0,
      compare: [
        { key: claimKey, target: "absent" },
        { key, target: "modRevision", op: "==", value: cached.rev },
      ],
      ops,
    };
  }

  /**
   * Claim candidates in as few transactions as possible: one per batch when no
   * other worker competes, falling back to one per action when a batch conflicts.
   */
  private async claim(cands: Cached<Action>[]): Promise<void> {
    const jobs = cands.map((c) => this.prepare(c));
    for (let i = 0; i < jobs.length; i += BATCH) {
      const batch = jobs.slice(i, i + BATCH);
      let taken: Job[] = [];
      try {
        const r = await this.store.txn({
          compare: batch.flatMap((j) => j.compare),
          success: batch.flatMap((j) => j.ops),
        });
        if (r.succeeded) {
          for (const j of batch) j.claimRev = r.revision;
          taken = batch;
          for (const j of batch) this.local(j.claimed, r.revision);
        } else if (batch.length > 1) {
          for (const j of batch) {
            const r1 = await this.store.txn({ compare: j.compare, success: j.ops });
            if (r1.succeeded) {
              j.claimRev = r1.revision;
              taken.push(j);
              this.local(j.claimed, r1.revision);
            } else this.release(j);
          }
        } else this.release(batch[0]!);
      } catch (err) {
        // The store failed: whatever was claimed expires with the lease and is retried.
        this.opts.log?.(`rex ${this.id}: claim failed: ${(err as Error).message}`);
        for (const j of batch) if (!taken.includes(j)) this.release(j);
      }
      for (const j of taken) void this.execute(j);
    }
  }

  private release(j: Job): void {
    this.running.delete(j.key);
    this.dirty.add(j.claimed.mzid);
    this.schedule();
  }

  private async execute(j: Job): Promise<void> {
    const { claimed: action } = j;
    this.opts.onEvent?.({ type: "start", key: j.key, worker: this.id, attempts: action.attempts });
    let outcome: Outcome;
    try {
      if (j.busy) {
        if (action.spec.kind === "node.recycle")
          outcome = { ok: true }; // not ours any more: nothing to undo
        else throw new Error(`node ${j.node} is in materialization ${j.nodeRec?.mzid} (state ${j.nodeRec?.current})`);
      } else {
        outcome = { ok: true, info: await this.attempt(action, j.abort.signal) };
      }
    } catch (err) {
      outcome = { ok: false, error: (err as Error).message || String(err) };
    }
    if (j.abort.signal.aborted) {
      // Withdrawn, lost or stopping: record nothing; release the claim if it is still ours.
      try {
        await this.store.txn({
          compare: [{ key: j.claimKey, target: "value", op: "==", value: j.claim }],
          success: [{ op: "delete", key: j.claimKey }],
        });
      } catch {}
      this.opts.onEvent?.({ type: "lost", key: j.key, worker: this.id, attempts: action.attempts });
      this.release(j);
      return;
    }
    this.outcomes.push({ job: j, outcome });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  /** Record outcomes, batched like claims; each only while its claim is still held. */
  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const all = this.outcomes.splice(0);
    for (let i = 0; i < all.length; i += BATCH) {
      const batch = all.slice(i, i + BATCH).map((o) => ({ ...o, ...this.outcomeTxn(o.job, o.outcome) }));
      let recorded: typeof batch = [];
      try {
        const r = await this.store.txn({
          compare: batch.flatMap((b) => b.compare),
          success: batch.flatMap((b) => b.ops),
        });
        if (r.succeeded) {
          recorded = batch;
          for (const b of batch) this.local(b.done, r.revision);
        } else {
          for (const b of batch) {
            const r1 = await this.store.txn({ compare: b.compare, success: b.ops });
            if (r1.succeeded) {
              recorded.push(b);
              this.local(b.done, r1.revision);
            } else
              this.opts.onEvent?.({ type: "lost", key: b.job.key, worker: this.id, attempts: b.job.claimed.attempts });
          }
        }
      } catch (err) {
        this.opts.log?.(`rex ${this.id}: recording outcomes failed: ${(err as Error).message}`);
      }
      for (const b of recorded) {
        const { job: j, outcome } = b;
        const attempts = j.claimed.attempts;
        if (outcome.ok) {
          this.opts.onEvent?.({ type: "complete", key: j.key, worker: this.id, attempts });
          if (outcome.info) await this.updateInfo(j.claimed.mzid, outcome.info).catch(() => {});
        } else {
          this.opts.log?.(`rex ${this.id}: ${j.key}: ${outcome.error}`);
          this.opts.onEvent?.({ type: "error", key: j.key, worker: this.id, attempts, error: outcome.error });
        }
      }
      for (const b of batch) this.release(b.job);
    }
  }

  /** Apply our own committed write of an action to the mirror. */
  private local(a: Action, rev: number): void {
    const stage = this.mzs.get(a.mzid)?.actions.get(a.task)?.get(a.stage);
    const key = keys.action(a);
    if (stage && (stage.get(key)?.rev ?? 0) < rev) stage.set(key, { value: a, rev });
  }

  private outcomeTxn(j: Job, outcome: Outcome): { compare: Compare[]; ops: Op[]; done: Action } {
    const now = new Date().toISOString();
    const done: Action = outcome.ok
      ? { ...j.claimed, state: "complete", error: undefined, completedBy: this.id, updated: now }
      : { ...j.claimed, state: "error", error: outcome.error, updated: now };
    const ops: Op[] = [
      { op: "put", key: j.key, value: storedAction(done) },
      { op: "delete", key: j.claimKey },
    ];
    if (j.node && j.transition) {
      const toClean = j.transition.target === "clean";
      ops.push({
        op: "put",
        key: keys.node(j.node),
        value: JSON.stringify({
          resource: j.node,
          current: outcome.ok ? j.transition.target : j.transition.during,
          target: j.transition.target,
          mzid: toClean && outcome.ok ? undefined : j.claimed.mzid,
          node: toClean && outcome.ok ? undefined : "node" in j.claimed.spec ? j.claimed.spec.node.node : undefined,
          action: j.key,
          updated: now,
        } satisfies NodeRecord),
      });
    }
    return {
      compare: [
        { key: j.claimKey, target: "value", op: "==", value: j.claim },
        { key: j.key, target: "modRevision", op: "==", value: j.claimRev },
      ],
      ops,
      done,
    };
  }

  /** Perform an action; a teardown action (idempotent, and nothing may remain) is tried again a few times. */
  private async attempt(action: Action, signal: AbortSignal): Promise<Partial<MzInfo> | undefined> {
    const teardown = this.mzs.get(action.mzid)?.tasks.get(action.task)?.phase === "teardown";
    for (let tried = 0; ; tried++) {
      try {
        return await this.perform(action.spec, signal);
      } catch (err) {
        const wait = this.retryMs[tried];
        if (!teardown || wait === undefined || signal.aborted) throw err;
        this.opts.log?.(
          `rex ${this.id}: ${keys.action(action)} failed (try ${tried + 1}), trying again in ${wait} ms: ${(err as Error).message}`,
        );
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          signal.addEventListener(
            "abort",
            () => {
              clearTimeout(t);
              resolve();
            },
            { once: true },
          );
        });
        if (signal.aborted) throw err;
      }
    }
  }

  private perform(spec: ActionSpec, signal: AbortSignal): Promise<Partial<MzInfo> | undefined> {
    const ctx: ActionContext = { signal, log: (m) => this.opts.log?.(`rex ${this.id}: ${m}`) };
    return performAction(this.backend, spec, ctx);
  }

  /** Merge facts an action learnt into the materialization record (nothing when it is gone). */
  private async updateInfo(mzid: MzId, patch: Partial<MzInfo>): Promise<void> {
    // Profiles come one node at a time, from actions running side by side: merged by node.
    const merge = (cur: MzInfo): MzInfo =>
      patch.profiles ? { ...cur, ...patch, profiles: { ...cur.profiles, ...patch.profiles } } : { ...cur, ...patch };
    await updateJSON<MzInfo>(this.store, keys.info(mzid), (cur) => cur && merge(cur), {
      what: `materialization record of ${mzid}`,
    });
  }

  /** Teardown done: forget the materialization (several workers may race; discard is idempotent). */
  private async finalize(mzid: MzId): Promise<void> {
    this.finalizing.add(mzid);
    try {
      await discard(this.store, mzid);
      this.opts.onEvent?.({ type: "discarded", mzid, worker: this.id });
    } catch (err) {
      this.opts.log?.(`rex ${this.id}: discard ${mzid}: ${(err as Error).message}`);
      this.dirty.add(mzid);
    } finally {
      this.finalizing.delete(mzid);
      this.schedule();
    }
  }
}
