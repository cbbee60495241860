/**
 * Rex: the execution agent. A worker mirrors the task DAGs from the store (one
 * range, then one watch), and runs every runnable action with bounded
 * concurrency. An action is runnable when its task's dependencies are done, the
 * stages before its own are done, its task has no action in error, and nobody
 * holds a claim on it.
 *
 * A worker claims a batch of actions of one materialization in one
 * transaction: one claim key (`/cogs/claim/<mzid>/<nonce>`, listing the
 * actions) attached to the worker's lease, and each action rewritten (its
 * attempts) comparing its revision, or, an action with no key yet (pending
 * since its DAG was written: impliedAction), created comparing it absent and
 * its spec chunk unchanged. That compare-and-swap makes two claims of one
 * action exclusive; a dead worker's claims vanish when its lease expires,
 * so another worker retries the actions (actions are idempotent). An outcome is
 * recorded only while its claim is still held; the last outcome of a batch
 * deletes the claim.
 *
 * Teardown is made to finish without an operator where it can: a failed
 * teardown action is tried again (within its claim, a few times, backing off)
 * before its error is recorded; and teardown waits, up to a bound, for setup
 * actions that dematerialize withdrew but that are still running (their claims
 * are still held), so a half-finished setup step cannot re-create what teardown
 * has just removed.
 */
import { hostname } from "node:os";
import {
  type Compare,
  type KeyValue,
  type Op,
  type Store,
  StoreError,
  type TxnResult,
  updateJSON,
  type Watch,
  type WatchEvent,
} from "@merge/store";
import { nodeTransition, parseActionSpec, performAction } from "./actions.ts";
import type { ActionContext, Backend, MzId, NodeState } from "./backend.ts";
import { discard, rangeAll } from "./driver.ts";
import { decodeStageChunk } from "./spec-chunks.ts";
import {
  type Action,
  type ActionSpec,
  actionDone,
  actionNode,
  type Claim,
  claimedActions,
  impliedAction,
  impliedCount,
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
  /**
   * Of those, teardown actions at once (default: `concurrency`). Across hosts a high concurrency lets
   * agents fold a setup into few batches, but a teardown's actions each do their own work (stopping a
   * node, scanning its processes) and crowd each other out.
   */
  teardownConcurrency?: number;
  /** Seconds a claim outlives a worker that stopped keeping its lease alive. */
  leaseTtl?: number;
  /** Outcome journal (tests, logs). */
  onEvent?: (e: RexEvent) => void;
  log?: (message: string) => void;
  /** Waits before the 2nd, 3rd, … try of a failed teardown action (default 500, 1,000 ms: three tries). */
  teardownRetryMs?: number[];
  /** Longest teardown waits for a withdrawn setup action that still runs (default 30 s). */
  withdrawnWaitMs?: number;
  /**
   * How long a runnable action that another live worker owns (see `owner`) stays
   * unclaimed before this worker takes it anyway (default 1,000 ms): the owner may
   * be busy, stalled or dead with its lease not yet expired.
   */
  stealAfterMs?: number;
}

interface Cached<T> {
  value: T;
  rev: number;
}

/**
 * One stage of a task as the mirror holds it, with counts kept as actions
 * change: a pump looks at the pending actions of each task's current stage
 * only, never scanning every action of a materialization.
 */
interface StageCache {
  /** Action key → its state (the spec is kept apart: `Rex.specs`). */
  actions: Map<string, Cached<StoredAction>>;
  /** Actions not done (see actionDone). */
  notDone: number;
  /** Actions in error and not masked: the task is blocked. */
  errors: number;
  /** Keys of the actions pending, not masked and not claimed (by anyone), in the order they came. */
  pending: Set<string>;
}

interface MzCache {
  info?: Cached<MzInfo>;
  tasks: Map<string, Task>;
  /** task → stage → its actions */
  actions: Map<string, Map<number, StageCache>>;
}

function newStage(): StageCache {
  return { actions: new Map(), notDone: 0, errors: 0, pending: new Set() };
}

/** Set (or, without `to`, delete) an action of a stage, keeping its counts; `claimed`: a claim holds it. */
function stageSet(stage: StageCache, key: string, to: Cached<StoredAction> | undefined, claimed: boolean): void {
  const from = stage.actions.get(key)?.value;
  if (from) {
    if (!actionDone(from)) stage.notDone--;
    if (from.state === "error" && !from.masked) stage.errors--;
  }
  if (to) {
    stage.actions.set(key, to);
    const a = to.value;
    if (!actionDone(a)) stage.notDone++;
    if (a.state === "error" && !a.masked) stage.errors++;
    if (a.state === "pending" && !a.masked && !claimed) stage.pending.add(key);
    else stage.pending.delete(key);
  } else {
    stage.actions.delete(key);
    stage.pending.delete(key);
  }
}

/** Operations per claim or outcome transaction: etcd allows 128 in one. */
const TXN_OPS = 120;

/** The most actions a worker takes at a time from an owner that is busy, not stalled (see `share`). */
const STEAL_MAX = 8;

/** The largest next stage taken whole by the worker that finished the stage before it (see `finished`). */
const EAGER_MAX = 8;

/** How long a claim of ours that nothing of ours holds may stay (the watch may just be behind). */
const ORPHAN_MS = 2000;
/** How long a claim call of unknown fate may still commit (and is deleted when it shows). */
const UNSURE_MS = 60_000;

/** A node record as stored; one that does not parse counts as none (the action's outcome rewrites it). */
function parseNodeRecord(json: string): NodeRecord | undefined {
  try {
    return JSON.parse(json) as NodeRecord;
  } catch {
    return undefined;
  }
}

/** Between asks of a store that does not answer: 100 ms, doubling up to 1 s. */
function backoff(tried: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * 2 ** tried)));
}

/** FNV-1a with murmur3's finalizer (alone, FNV spreads near-equal keys poorly): the same in every worker. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The worker that claims an action first: the highest hash of (worker, action)
 * among the live workers (rendezvous hashing). Every worker computes the same
 * owner from the same worker set, so workers claim disjoint batches instead of
 * all racing for the same actions; a worker joining or leaving moves only its
 * own share.
 */
export function owner(actionKey: string, workers: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestHash = -1;
  for (const w of workers) {
    const h = hash(`${w}\0${actionKey}`);
    if (h > bestHash || (h === bestHash && best !== undefined && w < best)) {
      best = w;
      bestHash = h;
    }
  }
  return best;
}

type Outcome = { ok: true; info?: Partial<MzInfo> } | { ok: false; error: string };

/** A claim we hold: a batch of actions of one materialization, under one key on our lease (the stored `Claim`), and its jobs. */
interface HeldClaim {
  mzid: MzId;
  key: string;
  value: string;
  /** Its jobs not yet settled (recorded, or let go): the claim is deleted when none is left. */
  jobs: Set<Job>;
}

interface Job {
  key: string;
  /** The claim this job is (being) taken in. */
  batch?: HeldClaim;
  abort: AbortController;
  claimed: Action;
  node?: string;
  nodeRec?: NodeRecord;
  busy: boolean;
  /** Why the action cannot run (its spec does not parse): it fails with this. */
  bad?: string;
  transition?: { during: NodeState; target: NodeState };
  claimRev: number;
  /** The action's revision when the claim was prepared (0: it has no key yet, see impliedAction). */
  rev: number;
  /** For an action with no key yet: its spec chunk as read, compared so a withdrawn DAG's action is not claimed. */
  chunk?: { key: string; rev: number };
  compare: Compare[];
  ops: Op[];
}

/** A task's spec chunk as a worker read it. */
interface SpecChunk {
  key: string;
  rev: number;
  specs: Record<string, string>;
}

interface Running {
  abort: AbortController;
  job: Job;
  teardown: boolean;
}

export class Rex {
  readonly id: string;
  private readonly store: Store;
  private readonly backend: Backend;
  private readonly concurrency: number;
  private readonly teardownConcurrency: number;
  private readonly ttl: number;
  private readonly mzs = new Map<MzId, MzCache>();
  /** Claimed action key → the claim key holding it (every worker's, as the store says). */
  private readonly claims = new Map<string, string>();
  /** Claim key → the actions it holds (a deletion carries no value). */
  private readonly claimed = new Map<string, string[]>();
  /**
   * What actions do, as stored (kept apart from their often rewritten state):
   * a spec is parsed only when this worker claims its action. Specs live
   * outside the watched range, in chunks per stage (spec-chunks.ts): a worker
   * reads a task's when it first sees the task (the driver writes a task only
   * once its actions and specs are stored), one range read instead of every
   * spec in its watch; kept here as decoded, by task (mzid\0task), stage and
   * action id, no key built for any (a worker claims a quarter of them).
   */
  private readonly chunks = new Map<string, Map<number, SpecChunk[]>>();
  /** Action key → its spec, of a DAG stored before chunks: one a key under `/cogs/`, brought by the watch. */
  private readonly specs = new Map<string, string>();
  /** Task (mzid\0task) → the read of its specs in flight (a token: a read the task's deletion overtook is dropped). */
  private readonly reading = new Map<string, number | "read">();
  private readToken = 0;
  private readsInFlight = 0;
  /** Task (mzid\0task) → why a chunk of its specs does not decode: its actions without a spec fail with it. */
  private readonly unreadable = new Map<string, string>();
  /** Set once the first range is in (see the "task" case of `apply`). */
  private watching = false;
  /** Node state id → its record as stored (parsed only when one of its actions is claimed here). */
  private readonly nodes = new Map<string, string>();
  private readonly running = new Map<string, Running>();
  /** How many of `running` are teardown actions. */
  private runningTeardown = 0;
  private readonly dirty = new Set<MzId>();
  private readonly finalizing = new Set<MzId>();
  private watch?: Watch;
  private lease?: string;
  private keepAlive?: NodeJS.Timeout;
  /** When the lease was last granted or kept alive (claims on it live at least a TTL from then). */
  private renewed = 0;
  private renewing = false;
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
  /**
   * Live workers as their lease-bound records say (this one always included):
   * their concurrency, the claims they hold now and when they last claimed or
   * finished something (to tell a busy owner from a stalled one).
   */
  private readonly workers = new Map<string, { concurrency: number; held: number; active: number }>();
  private workerList: string[] = [];
  /** Claimed action key → the worker holding the claim. */
  private readonly claimedBy = new Map<string, string>();
  /** Action key → its owner among `workerList` (cleared when the list changes). */
  private readonly owners = new Map<string, string>();
  /** Action key owned by another worker → when this worker first saw it runnable and unclaimed. */
  private readonly freeSince = new Map<string, number>();
  private readonly stealTimers = new Map<MzId, NodeJS.Timeout>();
  /**
   * Action key → the revision at which a claim of it failed: someone else got
   * there first and the watch has not told us yet. Not tried again until the
   * action or its claim changes (else a worker spins on failing claims).
   */
  private readonly contested = new Map<string, number>();
  private readonly stealAfter: number;
  /** Claim key → our claim whose call failed and that we let go (it may still commit): see `settle`. */
  private readonly unsure = new Map<string, { claim: string; at: number }>();
  /** Claims of ours no running action holds (claim key → value), released after ORPHAN_MS. */
  private readonly orphans = new Map<string, string>();
  private orphanTimer?: NodeJS.Timeout;
  /**
   * The latest revision the watch brought, and the latest of our own writes:
   * while the first is behind the second, this worker's view of others' claims
   * is stale, and it steals nothing (what looks free was likely taken).
   */
  private seenRev = 0;
  private wroteRev = 0;
  /** Tasks (mzid\0task) whose stage an outcome of ours just finished: see `finished`. */
  private readonly eager = new Set<string>();

  constructor(private readonly opts: RexOptions) {
    this.store = opts.store;
    this.backend = opts.backend;
    this.id = opts.id ?? `rex-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.concurrency = opts.concurrency ?? 64;
    this.teardownConcurrency = Math.min(opts.teardownConcurrency ?? this.concurrency, this.concurrency);
    this.ttl = opts.leaseTtl ?? 10;
    this.retryMs = opts.teardownRetryMs ?? [500, 1000];
    this.withdrawnWait = opts.withdrawnWaitMs ?? 30_000;
    this.stealAfter = opts.stealAfterMs ?? 1000;
    this.workers.set(this.id, { concurrency: this.concurrency, held: 0, active: Date.now() });
    this.workerList = [this.id];
  }

  /** A worker record came or went (its lease ended): ownership is computed anew. */
  private worker(id: string, rec: WorkerRecord | undefined): void {
    if (id === this.id) return;
    if (rec) {
      const w = this.workers.get(id);
      if (w) w.concurrency = rec.concurrency;
      else this.workers.set(id, { concurrency: rec.concurrency, held: 0, active: Date.now() });
    } else this.workers.delete(id);
    this.workerList = [...this.workers.keys()].sort();
    this.owners.clear();
    // A worker left: its share is ours to look at now.
    if (!rec) for (const mzid of this.mzs.keys()) this.dirty.add(mzid);
  }

  /** Claims seen being taken and let go, counted per worker. */
  private claimSeen(actionKey: string, worker: string | undefined): void {
    const prev = this.claimedBy.get(actionKey);
    const now = Date.now();
    if (prev !== undefined) {
      const w = this.workers.get(prev);
      if (w) {
        w.held = Math.max(0, w.held - 1);
        w.active = now;
      }
      this.claimedBy.delete(actionKey);
    }
    if (worker !== undefined) {
      this.claimedBy.set(actionKey, worker);
      const w = this.workers.get(worker);
      if (w) {
        w.held++;
        w.active = now;
      }
    }
  }

  private ownerOf(actionKey: string): string {
    let o = this.owners.get(actionKey);
    if (o === undefined) {
      o = owner(actionKey, this.workerList) ?? this.id;
      this.owners.set(actionKey, o);
    }
    return o;
  }

  async start(): Promise<void> {
    this.lease = await this.store.grant(this.ttl);
    this.renewed = Date.now();
    this.keepAlive = setInterval(() => void this.renew(), (this.ttl * 1000) / 3);
    this.keepAlive.unref();
    await this.announce();
    const rev = await this.store.revision();
    for (const kv of await rangeAll(this.store, ROOT)) {
      this.apply({ type: "put", kv, revision: kv.modRevision });
    }
    // The range may include writes after `rev`; the watch replays them in order, which converges.
    // One watch over all of ROOT, node records included: a claim key and its actions' rewrites, written in one
    // transaction, must reach the mirror together. With a watch per prefix (tried: claims apart from actions)
    // a pump can run between the two, see an action rewritten but not its claim, and claim it on top: its
    // revision compare passes, and two workers complete it.
    this.watching = true;
    this.watch = await this.store.watch(ROOT, rev, (e) => this.apply(e));
    for (const mzid of this.mzs.keys()) this.dirty.add(mzid);
    this.schedule();
  }

  /** Stop taking work; wait for running actions (aborted after `graceMs`), then release claims. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    clearInterval(this.keepAlive);
    for (const t of this.lingerTimers.values()) clearTimeout(t);
    for (const t of this.stealTimers.values()) clearTimeout(t);
    clearTimeout(this.orphanTimer);
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
    return (
      !this.running.size && !this.dirty.size && !this.pumpScheduled && !this.finalizing.size && !this.readsInFlight
    );
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
    if (this.stopped || this.renewing) return;
    this.renewing = true;
    try {
      await this.renewNow();
    } finally {
      this.renewing = false;
    }
  }

  private async renewNow(): Promise<void> {
    if (!this.lease) {
      // The last grant failed (store unreachable): try again; no claims are made meanwhile.
      this.lease = await this.store.grant(this.ttl).catch(() => undefined);
      if (this.lease) {
        this.renewed = Date.now();
        await this.announce().catch(() => undefined);
        this.schedule();
      }
      return;
    }
    for (;;) {
      try {
        await this.store.keepAlive(this.lease);
        this.renewed = Date.now();
        return;
      } catch (err) {
        const gone = err instanceof StoreError && err.code === "lease-not-found";
        // The store did not answer (a member down, an election): the lease lives on
        // in etcd until its TTL runs out, so ask again rather than drop our claims.
        const left = this.renewed + this.ttl * 1000 - Date.now();
        if (!gone && left > 1000 && !this.stopped) {
          this.opts.log?.(`rex ${this.id}: lease keep-alive failed (${(err as Error).message}); trying again`);
          await backoff(1);
          continue;
        }
        if (this.stopped) return;
        // The lease expired (we were stalled): our claims are gone, so stop and take a new one.
        this.opts.log?.(`rex ${this.id}: lease lost (${(err as Error).message}); aborting running actions`);
        for (const r of this.running.values()) r.abort.abort(new Error("lease lost"));
        this.lease = undefined;
        await this.renewNow();
        return;
      }
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
    const put = e.type === "put";
    if (e.revision > this.seenRev) this.seenRev = e.revision;
    if (e.kv.key.startsWith(keys.workers)) {
      this.worker(
        decodeURIComponent(e.kv.key.slice(keys.workers.length)),
        put ? (JSON.parse(e.kv.value) as WorkerRecord) : undefined,
      );
      this.schedule();
      return;
    }
    const k = parseKey(e.kv.key);
    switch (k.type) {
      case "info": {
        const m = this.mz(k.mzid);
        if (put) m.info = { value: JSON.parse(e.kv.value) as MzInfo, rev: e.kv.modRevision };
        else {
          this.mzs.delete(k.mzid);
          const prefix = keys.mz(k.mzid);
          for (const m of [this.freeSince, this.contested])
            for (const key of m.keys()) if (key.startsWith(prefix)) m.delete(key);
          for (const key of this.eager) if (key.startsWith(`${k.mzid}\0`)) this.eager.delete(key);
        }
        this.dirty.add(k.mzid);
        break;
      }
      case "task": {
        const m = this.mz(k.mzid);
        const t = `${k.mzid}\0${k.task}`;
        if (put) {
          m.tasks.set(k.task, JSON.parse(e.kv.value) as Task);
          // A task that appears now is about to run: its specs are read at once (those the first range
          // brings, perhaps long done, only when they have something to run: see `runnable`).
          if (this.watching && !this.reading.has(t)) void this.readSpecs(k.mzid, k.task);
        } else {
          m.tasks.delete(k.task);
          // Its specs go with it (a teardown DAG may reuse the task's name): a read in flight is dropped.
          this.reading.delete(t);
          this.unreadable.delete(t);
          this.chunks.delete(t);
          // Its actions with no key go too (those with one are deleted with it, each an event).
          for (const stage of m.actions.get(k.task)?.values() ?? [])
            for (const [key, a] of stage.actions) if (!a.rev) stageSet(stage, key, undefined, false);
          if (this.specs.size) {
            const prefix = `${keys.actions(k.mzid)}${encodeURIComponent(k.task)}/`;
            for (const key of this.specs.keys()) if (key.startsWith(prefix)) this.specs.delete(key);
          }
        }
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
          stage = newStage();
          stages.set(k.stage, stage);
        }
        if (put) {
          // Our own writes are applied as they commit; the watch may bring them again, later.
          if ((stage.actions.get(k.key)?.rev ?? 0) < e.kv.modRevision)
            stageSet(
              stage,
              k.key,
              { value: JSON.parse(e.kv.value) as StoredAction, rev: e.kv.modRevision },
              this.claims.has(k.key),
            );
        } else {
          stageSet(stage, k.key, undefined, false);
          this.contested.delete(k.key);
          // A DAG written anew (dematerialize) may reuse the key with another spec.
          this.specs.delete(k.key);
          // Dematerialize replaced the action: stop working on it.
          this.running.get(k.key)?.abort.abort(new Error("action withdrawn"));
        }
        this.dirty.add(k.mzid);
        break;
      }
      case "spec": {
        const actionKey = keys.actionOfSpec(e.kv.key);
        if (put) {
          // The spec may come after its state (a range returns action keys before spec keys).
          this.specs.set(actionKey, e.kv.value);
          this.dirty.add(k.mzid);
        } else this.specs.delete(actionKey);
        break;
      }
      case "claim": {
        this.orphans.delete(e.kv.key);
        if (put) {
          const claim = JSON.parse(e.kv.value) as Claim;
          const actions = claimedActions(k.mzid, claim);
          this.claimed.set(e.kv.key, actions);
          for (const a of actions) {
            this.freeSince.delete(a);
            this.contested.delete(a);
            this.claimSeen(a, claim.worker);
            this.claims.set(a, e.kv.key);
            this.stageOf(a)?.pending.delete(a);
          }
          if (this.unsure.get(e.kv.key)?.claim === e.kv.value) this.orphan(e.kv.key, e.kv.value);
        } else {
          for (const a of this.claimed.get(e.kv.key) ?? []) {
            if (this.claims.get(a) !== e.kv.key) continue;
            this.freeSince.delete(a);
            this.contested.delete(a);
            this.claimSeen(a, undefined);
            this.claims.delete(a);
            this.withdrawn.delete(a);
            const stage = this.stageOf(a);
            const state = stage?.actions.get(a)?.value;
            if (state?.state === "pending" && !state.masked) stage!.pending.add(a);
            const r = this.running.get(a);
            // Our own claim vanished while running: the lease expired, someone else may take it.
            if (r && r.job.batch?.key === e.kv.key && !r.abort.signal.aborted) r.abort.abort(new Error("claim lost"));
          }
          this.claimed.delete(e.kv.key);
          this.dirty.add(k.mzid);
        }
        break;
      }
      case "node":
        if (put) this.nodes.set(k.resource, e.kv.value);
        else this.nodes.delete(k.resource);
        break;
      default:
        break;
    }
    this.schedule();
  }

  /**
   * Read a task's specs (its chunks, one range), asked again until the store
   * answers: its actions are not claimed until then. A chunk that does not
   * decode leaves its actions without a spec: they fail naming why.
   */
  private async readSpecs(mzid: MzId, task: string): Promise<void> {
    const t = `${mzid}\0${task}`;
    const token = ++this.readToken;
    this.reading.set(t, token);
    this.readsInFlight++;
    try {
      for (let tried = 0; !this.stopped; tried++) {
        let found: KeyValue[];
        try {
          found = await rangeAll(this.store, keys.taskSpecs(mzid, task));
        } catch (err) {
          this.opts.log?.(
            `rex ${this.id}: reading the specs of ${mzid} task ${task} failed: ${(err as Error).message}`,
          );
          await backoff(tried);
          continue;
        }
        // The task was deleted (and perhaps written anew) meanwhile: these are not its specs.
        if (this.reading.get(t) !== token) return;
        const stages = new Map<number, SpecChunk[]>();
        for (const kv of found) {
          try {
            const { stage, specs } = decodeStageChunk(kv.key, kv.value);
            const chunk: SpecChunk = { key: kv.key, rev: kv.modRevision, specs };
            const list = stages.get(stage.stage);
            if (list) list.push(chunk);
            else stages.set(stage.stage, [chunk]);
          } catch (err) {
            // Its actions cannot even be named (those with no key yet): the chunk is the error, and the task
            // waits (see `whole`) for an operator to dematerialize.
            const error = (err as Error).message;
            this.opts.log?.(`rex ${this.id}: ${error}`);
            this.unreadable.set(t, error);
            this.opts.onEvent?.({ type: "error", key: kv.key, worker: this.id, attempts: 0, error });
          }
        }
        this.chunks.set(t, stages);
        this.reading.set(t, "read");
        this.imply(mzid, task, stages);
        return;
      }
    } finally {
      this.readsInFlight--;
      this.dirty.add(mzid);
      this.schedule();
    }
  }

  /**
   * The task's actions its chunks name and the mirror has no key for: pending,
   * untried (impliedAction), at revision 0 until a claim creates their key.
   */
  private imply(mzid: MzId, task: string, stages: Map<number, SpecChunk[]>): void {
    const m = this.mzs.get(mzid);
    if (!m) return;
    const written = m.tasks.get(task)?.written;
    let byStage = m.actions.get(task);
    if (!byStage) {
      byStage = new Map();
      m.actions.set(task, byStage);
    }
    for (const [s, chunks] of stages) {
      let stage = byStage.get(s);
      if (!stage) {
        stage = newStage();
        byStage.set(s, stage);
      }
      for (const chunk of chunks) {
        for (const id in chunk.specs) {
          const a = { mzid, task, stage: s, id };
          const key = keys.action(a);
          if (!stage.actions.has(key))
            stageSet(stage, key, { value: impliedAction(a, written), rev: 0 }, this.claims.has(key));
        }
      }
    }
  }

  /** The stage an action key is in, in the mirror. */
  private stageOf(actionKey: string): StageCache | undefined {
    const k = parseKey(actionKey);
    return k.type === "action" ? this.mzs.get(k.mzid)?.actions.get(k.task)?.get(k.stage) : undefined;
  }

  /**
   * A claim of ours that no running action holds: a claim whose call failed
   * (e.g. "request timed out" in an election) can still commit after we asked
   * and found it absent, and a lost action's release can fail. On our live
   * lease it would block the action for good, so it is deleted (after a
   * moment: the watch may just not have brought its deletion yet).
   */
  private orphan(claimKey: string, value: string): void {
    this.orphans.set(claimKey, value);
    this.armOrphanSweep();
  }

  private armOrphanSweep(): void {
    if (this.orphanTimer || this.stopped) return;
    this.orphanTimer = setTimeout(() => {
      this.orphanTimer = undefined;
      // A claim call whose fate was unknown can commit late (the client retries it after an election),
      // and the watch may bring that late or, across a member's death, not at all: its claim is deleted
      // whenever it shows, until its fate is surely settled (etcd's request timeout is seconds).
      const now = Date.now();
      for (const [key, u] of this.unsure) {
        if (now - u.at > UNSURE_MS) this.unsure.delete(key);
        else this.orphans.set(key, u.claim);
      }
      const found = [...this.orphans];
      this.orphans.clear();
      for (const [key, claim] of found) {
        void this.store
          .txn({
            compare: [{ key, target: "value", op: "==", value: claim }],
            success: [{ op: "delete", key }],
          })
          .then((r) => {
            if (r.succeeded)
              this.opts.log?.(`rex ${this.id}: released ${key}, a claim of ours no action of ours holds`);
          })
          .catch(() => {
            if (!this.stopped) this.orphan(key, claim);
          });
      }
      if (this.unsure.size) this.armOrphanSweep();
    }, ORPHAN_MS);
    this.orphanTimer.unref();
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
    const picked: Cached<StoredAction>[] = [];
    // Others' actions, claimed apart: a steal that collides with the owner fails only its own small claim.
    const stolen: Cached<StoredAction>[] = [];
    let pickedTeardown = 0;
    for (const mzid of [...this.dirty]) {
      if (this.running.size + picked.length + stolen.length >= this.concurrency) break;
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
        let room = Math.max(0, this.concurrency - this.running.size - picked.length - stolen.length);
        if (task.phase === "teardown")
          room = Math.min(room, Math.max(0, this.teardownConcurrency - this.runningTeardown - pickedTeardown));
        const share = this.share(mzid, task.id, r, room);
        if (share.more || share.mine.length + share.stolen.length > room) pending = true;
        const took = Math.min(room, share.mine.length + share.stolen.length);
        if (task.phase === "teardown") pickedTeardown += took;
        picked.push(...share.mine.slice(0, room));
        stolen.push(...share.stolen.slice(0, Math.max(0, room - share.mine.length)));
      }
      if (pending) this.dirty.add(mzid);
      if (allDone && m.info.value.phase === "dematerializing" && !this.finalizing.has(mzid)) void this.finalize(mzid);
    }
    if (picked.length) void this.claim(picked);
    if (stolen.length) void this.claim(stolen);
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
    for (const key of this.claims.keys()) {
      const k = parseKey(key);
      if (k.type !== "action" || k.mzid !== mzid || m.actions.get(k.task)?.get(k.stage)?.actions.has(key)) continue;
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

  /**
   * Of a task's free actions, those this worker claims now: its own, and
   * others' that stayed unclaimed for `stealAfterMs` (a timer looks again then):
   * all of a stalled owner's (nothing claimed or finished for as long), but of
   * an owner that is merely full only a few (STEAL_MAX), and only by a worker
   * with none of its own to do and room to spare: the owner takes them as its
   * actions finish, and a thief that takes many collides with it.
   */
  private share(
    mzid: MzId,
    task: string,
    stage: StageCache,
    room: number,
  ): { mine: Cached<StoredAction>[]; stolen: Cached<StoredAction>[]; more: boolean } {
    // A look at as many as are taken now (and one more, to know there are more), not the whole stage on
    // every pump: a stage of a thousand pending, looked at whole a few hundred times by each worker, was
    // a tenth of a worker's CPU. Those further on are looked at (their owners too) once room is left.
    const all = () => {
      const mine: Cached<StoredAction>[] = [];
      for (const [, a] of this.free(stage)) {
        if (mine.length > room) return { mine, stolen: [], more: true };
        mine.push(a);
      }
      return { mine, stolen: [], more: false };
    };
    if (this.workerList.length < 2) return all();
    if (this.eager.delete(`${mzid}\0${task}`) && stage.pending.size <= EAGER_MAX) return all();
    const now = Date.now();
    const mine: Cached<StoredAction>[] = [];
    const stolen: Cached<StoredAction>[] = [];
    const fromFull: Cached<StoredAction>[] = [];
    let soonest = Number.POSITIVE_INFINITY;
    let more = false;
    for (const [key, a] of this.free(stage)) {
      if (mine.length + stolen.length > room) {
        more = true;
        break;
      }
      const owner = this.ownerOf(key);
      if (owner === this.id) {
        mine.push(a);
        continue;
      }
      const since = this.freeSince.get(key) ?? now;
      if (since === now) this.freeSince.set(key, now);
      const o = this.workers.get(owner);
      const waited = since + this.stealAfter;
      const stalled = o ? Math.max(waited, o.active + this.stealAfter) : waited;
      const full = !!o && o.held >= o.concurrency;
      if (stalled <= now) stolen.push(a);
      else if (full && waited <= now) fromFull.push(a);
      else soonest = Math.min(soonest, (full ? waited : stalled) - now);
    }
    if ((stolen.length || fromFull.length) && this.seenRev < this.wroteRev) {
      // The watch is behind our own writes, so behind others' claims too: what looks free likely is not.
      stolen.length = 0;
      soonest = Math.min(soonest, this.stealAfter / 4);
    } else if (fromFull.length) {
      // A full owner's: taken only with nothing of ours to do and room to spare; looked at again later.
      if (!mine.length && this.running.size < this.concurrency / 2) stolen.push(...fromFull.slice(-STEAL_MAX));
      soonest = Math.min(soonest, this.stealAfter);
    }
    if (Number.isFinite(soonest) && !this.stealTimers.has(mzid)) {
      const t = setTimeout(() => {
        this.stealTimers.delete(mzid);
        this.dirty.add(mzid);
        this.schedule();
      }, Math.max(0, soonest) + 1);
      t.unref();
      this.stealTimers.set(mzid, t);
    }
    // Taken from the far end of the owner's list: the owner claims from the near end, so the two rarely collide.
    return { mine, stolen: stolen.reverse(), more };
  }

  private taskDone(m: MzCache, taskId: string): boolean {
    const task = m.tasks.get(taskId);
    if (!task || !this.whole(m, task)) return false;
    for (const stage of m.actions.get(taskId)?.values() ?? []) if (stage.notDone) return false;
    return true;
  }

  /**
   * Whether the mirror holds every action of the task: those with a key, and
   * the others once its chunks are read (impliedAction). Until then the
   * chunks' read is started and the task counts as not done.
   */
  private whole(m: MzCache, task: Task): boolean {
    const t = `${task.mzid}\0${task.id}`;
    const specs = this.reading.get(t);
    if (specs === "read" && !this.unreadable.has(t)) return true;
    let keyed = 0;
    for (const stage of m.actions.get(task.id)?.values() ?? []) keyed += stage.actions.size;
    if (!impliedCount(task, keyed)) return true;
    // A chunk that does not decode hides actions for good: the task never counts as done.
    if (specs === undefined) void this.readSpecs(task.mzid, task.id);
    return false;
  }

  /** The task's stage whose pending actions may run now (see `free`), or why there is none. */
  private runnable(m: MzCache, task: Task): StageCache | "done" | "blocked" {
    if (!this.whole(m, task)) return "blocked";
    const stages = m.actions.get(task.id);
    if (!stages) return "done";
    let current: StageCache | undefined;
    let at = Number.POSITIVE_INFINITY;
    for (const [s, stage] of stages) {
      if (stage.errors) return "blocked";
      if (stage.notDone && s < at) [current, at] = [stage, s];
    }
    if (!current) return "done";
    for (const d of task.deps) if (!this.taskDone(m, d)) return "blocked";
    // Its specs are not read yet: nothing of it can be claimed (the read's end looks again).
    const specs = this.reading.get(`${task.mzid}\0${task.id}`);
    if (specs === undefined) void this.readSpecs(task.mzid, task.id);
    if (specs !== "read") return "blocked";
    return current;
  }

  /** A stage's pending actions that may be claimed now: not running here, not lost to a claim unseen yet. */
  private *free(stage: StageCache): Generator<[string, Cached<StoredAction>]> {
    for (const key of stage.pending) {
      if (this.running.has(key)) continue;
      const a = stage.actions.get(key)!;
      if (this.contested.get(key) !== a.rev) yield [key, a];
    }
  }

  /** The chunk of its task's that holds an action's spec, if one does. */
  private chunkOf(a: StoredAction): SpecChunk | undefined {
    for (const chunk of this.chunks.get(`${a.mzid}\0${a.task}`)?.get(a.stage) ?? [])
      if (Object.hasOwn(chunk.specs, a.id)) return chunk;
    return undefined;
  }

  /** Prepare a claim: the compare-and-swap that takes the action, and the work to do once taken. */
  private prepare(cached: Cached<StoredAction>): Job {
    const key = keys.action(cached.value);
    // An action whose spec is missing or does not parse is claimed all the same, and fails naming why (`bad`).
    let bad: string | undefined;
    let spec: ActionSpec = { kind: "node.power", resource: "", power: "on" };
    const { mzid, task } = cached.value;
    const chunk = this.chunkOf(cached.value);
    const stored = chunk ? chunk.specs[cached.value.id] : this.specs.get(key);
    if (stored === undefined) {
      const why = this.unreadable.get(`${mzid}\0${task}`);
      bad = why
        ? `the action's spec cannot be read: ${why}`
        : `the action's spec is missing (in neither ${keys.taskSpecs(mzid, task)} nor ${keys.legacySpecs(mzid)})`;
    } else {
      try {
        spec = parseActionSpec(stored);
      } catch (err) {
        bad = `the action's spec does not parse: ${(err as Error).message}`;
      }
    }
    const action: Action = { ...cached.value, spec };
    const abort = new AbortController();
    const node = bad ? undefined : actionNode(action.spec);
    const record = node ? this.nodes.get(node) : undefined;
    const nodeRec = record ? parseNodeRecord(record) : undefined;
    const busy = !!(node && nodeRec?.mzid && nodeRec.mzid !== action.mzid && nodeRec.current !== "clean");
    const transition = node && !busy ? nodeTransition(action.spec) : undefined;
    const claimed: Action = { ...action, attempts: action.attempts + 1, updated: new Date().toISOString() };
    this.contested.delete(key);
    const ops: Op[] = [{ op: "put", key, value: storedAction(claimed) }];
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
    const job: Job = {
      key,
      abort,
      claimed,
      node,
      nodeRec,
      busy,
      bad,
      transition,
      claimRev: 0,
      // No key yet: the claim creates it, so a second claim finds it there (exclusive as a revision compare).
      compare: [cached.rev ? { key, target: "modRevision", op: "==", value: cached.rev } : { key, target: "absent" }],
      ops,
      rev: cached.rev,
      chunk: !cached.rev && chunk ? { key: chunk.key, rev: chunk.rev } : undefined,
    };
    const teardown = this.mzs.get(claimed.mzid)?.tasks.get(claimed.task)?.phase === "teardown";
    if (teardown) this.runningTeardown++;
    this.running.set(key, { abort, job, teardown });
    return job;
  }

  /** A new claim of these jobs (one materialization's), its value listing them. */
  private batch(jobs: Job[]): HeldClaim {
    const mzid = jobs[0]!.claimed.mzid;
    const nonce = `${this.id}:${++this.nonce}`;
    const base = keys.actions(mzid);
    const value = JSON.stringify({
      worker: this.id,
      nonce,
      at: new Date().toISOString(),
      actions: jobs.map((j) => j.key.slice(base.length)),
    } satisfies Claim);
    const b: HeldClaim = { mzid, key: keys.claim(mzid, nonce), value, jobs: new Set(jobs) };
    for (const j of jobs) j.batch = b;
    return b;
  }

  /**
   * Claim candidates in as few transactions as possible: per materialization,
   * as many actions as a transaction holds (TXN_OPS), the transactions sent at
   * once (one round trip, not one per batch).
   */
  private async claim(cands: Cached<StoredAction>[]): Promise<void> {
    const byMz = new Map<MzId, Job[]>();
    for (const c of cands) {
      const j = this.prepare(c);
      const list = byMz.get(j.claimed.mzid);
      if (list) list.push(j);
      else byMz.set(j.claimed.mzid, [j]);
    }
    const batches: Job[][] = [];
    for (const jobs of byMz.values()) {
      let cur: Job[] = [];
      let ops = 1;
      // Compares (and the failure branch's gets): the claim key's, each action's, each chunk's once.
      let compares = 1;
      let chunks = new Set<string>();
      for (const j of jobs) {
        const more = j.chunk && !chunks.has(j.chunk.key) ? 2 : 1;
        if (cur.length && (ops + j.ops.length > TXN_OPS || compares + more > TXN_OPS)) {
          batches.push(cur);
          [cur, ops, compares, chunks] = [[], 1, 1, new Set()];
        }
        cur.push(j);
        ops += j.ops.length;
        compares += j.chunk && !chunks.has(j.chunk.key) ? 2 : 1;
        if (j.chunk) chunks.add(j.chunk.key);
      }
      if (cur.length) batches.push(cur);
    }
    await Promise.all(batches.map((b) => this.claimBatch(b)));
  }

  /**
   * One transaction for the batch: its claim key and every action rewritten,
   * each comparing its revision. When it conflicts (another worker took one of
   * its actions first), the same round trip brings the claim key and every
   * action back: those unchanged are claimed again together in a new claim
   * (a few times, then one by one), the others are left to whoever took them.
   * A call that failed after it committed (the client retried it across an
   * election, and the retry's compares failed on our own writes) shows our
   * own claim: the batch is ours.
   */
  private async claimBatch(jobs: Job[], tries = 3): Promise<void> {
    const b = this.batch(jobs);
    const chunks = new Map<string, number>();
    for (const j of jobs) if (j.chunk) chunks.set(j.chunk.key, j.chunk.rev);
    let r: TxnResult;
    try {
      r = await this.store.txn({
        compare: [
          { key: b.key, target: "absent" },
          ...jobs.flatMap((j) => j.compare),
          ...[...chunks].map(([key, rev]): Compare => ({ key, target: "modRevision", op: "==", value: rev })),
        ],
        success: [{ op: "put", key: b.key, value: b.value, lease: this.lease }, ...jobs.flatMap((j) => j.ops)],
        failure: [
          { op: "get", key: b.key },
          ...jobs.map((j): Op => ({ op: "get", key: j.key })),
          ...[...chunks.keys()].map((key): Op => ({ op: "get", key })),
        ],
      });
    } catch (err) {
      this.opts.log?.(`rex ${this.id}: claim failed: ${(err as Error).message}`);
      await this.settle(b);
      return;
    }
    if (r.succeeded) {
      for (const j of jobs) this.took(j, r.revision);
      return;
    }
    if (r.gets[0]?.value === b.value) {
      this.ours(b, r.gets.slice(1));
      return;
    }
    // Chunks as read back: one that changed (the DAG withdrawn) leaves its actions to whoever sees why.
    const chunkNow = new Map([...chunks.keys()].map((key, i) => [key, r.gets[jobs.length + 1 + i]?.modRevision ?? 0]));
    const free = jobs.filter((j, i) => {
      const chunkSame = !j.chunk || chunkNow.get(j.chunk.key) === j.chunk.rev;
      if ((r.gets[i + 1]?.modRevision ?? 0) === j.rev && chunkSame) return true;
      this.contested.set(j.key, j.rev);
      this.release(j);
      return false;
    });
    if (!free.length) return;
    if (tries > 1) await this.claimBatch(free, tries - 1);
    else await Promise.all(free.map((j) => this.claimBatch([j], 1)));
  }

  private took(j: Job, revision: number): void {
    j.claimRev = revision;
    if (revision > this.wroteRev) this.wroteRev = revision;
    this.local(j.claimed, revision);
    void this.execute(j);
  }

  /**
   * A claim whose fate is unknown (the store failed mid-call, e.g. a leader
   * election): it may have committed, and then nobody else will ever take its
   * actions while our lease lives. Ask until the store answers (or we stop):
   * run them if the claim is ours, else let them go (the claim is deleted if it
   * ever shows: see `unsure`).
   */
  private async settle(b: HeldClaim): Promise<void> {
    const read = await this.readBack([b.key, ...[...b.jobs].map((j) => j.key)]);
    if (read && read[0]?.value === b.value) this.ours(b, read.slice(1));
    else this.letGo(b);
  }

  /** The claim committed (read back): its jobs run, each from its action as read (`actions`, in job order). */
  private ours(b: HeldClaim, actions: (KeyValue | undefined)[]): void {
    [...b.jobs].forEach((j, i) => {
      const action = actions[i];
      if (action) this.took(j, action.modRevision);
      else this.settled(j); // withdrawn meanwhile
    });
  }

  /** A claim that did not commit, or may commit yet: its jobs are let go, the claim deleted if it shows. */
  private letGo(b: HeldClaim): void {
    this.unsure.set(b.key, { claim: b.value, at: Date.now() });
    this.armOrphanSweep();
    for (const j of b.jobs) this.release(j);
    b.jobs.clear();
  }

  /** Done with a job that holds no claim (it was not taken). */
  private release(j: Job): void {
    if (this.running.get(j.key)?.teardown) this.runningTeardown--;
    this.running.delete(j.key);
    this.dirty.add(j.claimed.mzid);
    this.schedule();
  }

  /**
   * Done with a claimed job (its outcome recorded, or not to be): when it was
   * the last of its claim, the claim is deleted (if still ours).
   */
  private settled(j: Job): void {
    this.release(j);
    const b = j.batch;
    if (!b?.jobs.delete(j) || b.jobs.size) return;
    void this.store
      .txn({
        compare: [{ key: b.key, target: "value", op: "==", value: b.value }],
        success: [{ op: "delete", key: b.key }],
      })
      .catch(() => this.letGo(b));
  }

  private async execute(j: Job): Promise<void> {
    const { claimed: action } = j;
    this.opts.onEvent?.({ type: "start", key: j.key, worker: this.id, attempts: action.attempts });
    let outcome: Outcome;
    try {
      if (j.bad) throw new Error(j.bad);
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
      // Withdrawn, lost or stopping: record nothing; the claim goes with the batch's last job.
      this.opts.onEvent?.({ type: "lost", key: j.key, worker: this.id, attempts: action.attempts });
      this.settled(j);
      return;
    }
    this.outcomes.push({ job: j, outcome });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  /**
   * Record outcomes, as many to a transaction as it holds (TXN_OPS), the
   * transactions sent at once; each outcome only while its claim is still held.
   * A claim whose every job left is recorded here is deleted in the same transaction.
   */
  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const all = this.outcomes.splice(0).map((o) => ({ ...o, ...this.outcomeTxn(o.job, o.outcome) }));
    const txns: (typeof all)[] = [];
    let cur: typeof all = [];
    let ops = 0;
    let claims = new Set<HeldClaim | undefined>();
    for (const o of all) {
      // Room for the outcome, and for comparing and deleting its claim if it is the first of its claim here
      // (etcd counts a transaction's compares and its ops each against the limit).
      const first = claims.has(o.job.batch) ? 0 : 1;
      if (cur.length && (ops + o.ops.length + first > TXN_OPS || cur.length + claims.size + 1 + first > TXN_OPS)) {
        txns.push(cur);
        [cur, ops, claims] = [[], 0, new Set()];
      }
      ops += o.ops.length + (claims.has(o.job.batch) ? 0 : 1);
      cur.push(o);
      claims.add(o.job.batch);
    }
    if (cur.length) txns.push(cur);
    await Promise.all(txns.map((t) => this.record(t)));
  }

  private async record(batch: { job: Job; outcome: Outcome; ops: Op[]; done: Action }[]): Promise<void> {
    const claims = new Map<HeldClaim, number>();
    for (const { job } of batch) if (job.batch) claims.set(job.batch, (claims.get(job.batch) ?? 0) + 1);
    // Claims whose every job still unsettled is here: deleted with the outcomes.
    const ending = [...claims].filter(([b, n]) => b.jobs.size === n).map(([b]) => b);
    let recorded: typeof batch = [];
    let ended = false;
    const written = (revision: number) => {
      recorded = batch;
      ended = true;
      if (revision > this.wroteRev) this.wroteRev = revision;
      for (const b of batch) this.local(b.done, revision);
      this.finished(batch.map((b) => b.done));
    };
    for (let tried = 0; ; tried++) {
      try {
        const r = await this.store.txn({
          compare: [
            ...[...claims.keys()].map((b): Compare => ({ key: b.key, target: "value", op: "==", value: b.value })),
            ...batch.map((b): Compare => ({ key: b.job.key, target: "modRevision", op: "==", value: b.job.claimRev })),
          ],
          success: [...batch.flatMap((b) => b.ops), ...ending.map((b): Op => ({ op: "delete", key: b.key }))],
          failure: batch.map((b): Op => ({ op: "get", key: b.job.key })),
        });
        if (r.succeeded) written(r.revision);
        // Some may be written already: the client can retry a call that had committed (across an election).
        else recorded = await this.recordRest(batch, r.gets);
        break;
      } catch (err) {
        // Unknown whether it committed (e.g. a leader election). A transaction is all or nothing: read back
        // (asked until the store answers), the batch is written, or untouched and asked again whole, or
        // changed under us (withdrawn, or a call that committed late): then each is settled on its own.
        // Each on its own at once, as before, was hundreds of transactions into an election (a 5 s stall).
        this.opts.log?.(`rex ${this.id}: recording outcomes failed: ${(err as Error).message}`);
        const read = await this.readBack(batch.map((b) => b.job.key));
        if (!read) break; // stopping: nothing recorded; the claims go with the lease
        if (batch.every((b, i) => read[i]?.value === storedAction(b.done))) {
          written(read[0]!.modRevision);
          break;
        }
        // Changed under us, or refused whole though the store answers (3 tries): each on its own.
        if (tried >= 2 || batch.some((b, i) => (read[i]?.modRevision ?? 0) !== b.job.claimRev)) {
          recorded = await this.recordRest(batch, read);
          break;
        }
        await backoff(tried);
      }
    }
    if (ended) for (const b of ending) b.jobs.clear();
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
    // Recorded or not (the action changed under us, or the call's fate stayed unknown), the job is done
    // with; its claim is deleted when its last job is (on our live lease it would block the actions for good).
    for (const b of batch) this.settled(b.job);
  }

  /** The keys as stored (in order), asked until the store answers; undefined when this worker stops first. */
  private async readBack(keys: string[]): Promise<(KeyValue | undefined)[] | undefined> {
    for (let tried = 0; !this.stopped; tried++) {
      try {
        return (await this.store.txn({ compare: [], success: keys.map((key): Op => ({ op: "get", key })) })).gets;
      } catch {
        await backoff(tried);
      }
    }
    return undefined;
  }

  /**
   * Outcomes of a transaction that failed: those whose action reads back
   * exactly as written (`read`, in order) are recorded; the others are tried
   * one by one. Resolves to those recorded.
   */
  private async recordRest<T extends { job: Job; ops: Op[]; done: Action }>(
    batch: T[],
    read: (KeyValue | undefined)[],
  ): Promise<T[]> {
    const each = await Promise.all(
      batch.map((b, i) => {
        const kv = read[i];
        if (kv?.value !== storedAction(b.done)) return this.recordOne(b, true);
        this.local(b.done, kv.modRevision);
        return true;
      }),
    );
    return batch.filter((_, i) => each[i]);
  }

  /**
   * Record one outcome on its own; true when it is recorded. After a failed
   * call (`retry`) the write may already have committed: the action then reads
   * back exactly as written, which counts as recorded. The store is asked until
   * it answers (while the claim lives, nobody else runs the action).
   */
  private async recordOne(b: { job: Job; ops: Op[]; done: Action }, retry = false): Promise<boolean> {
    const written = storedAction(b.done);
    const claim = b.job.batch!;
    for (let tried = 0; !this.stopped; tried++) {
      try {
        const r = await this.store.txn({
          compare: [
            { key: claim.key, target: "value", op: "==", value: claim.value },
            { key: b.job.key, target: "modRevision", op: "==", value: b.job.claimRev },
          ],
          success: b.ops,
          failure: [{ op: "get", key: b.job.key }],
        });
        if (r.succeeded || (retry && r.gets[0]?.value === written)) {
          this.local(b.done, r.succeeded ? r.revision : r.gets[0]!.modRevision);
          return true;
        }
        this.opts.onEvent?.({ type: "lost", key: b.job.key, worker: this.id, attempts: b.job.claimed.attempts });
        return false;
      } catch {
        retry = true;
        await backoff(tried);
      }
    }
    return false;
  }

  /**
   * Outcomes of ours just recorded: where one of them was the last of its stage
   * in our mirror, the task's next (small) stage is ours to claim at once. Its
   * owner would learn of the stage's end only from the watch, a hop later, and
   * a few such hops in a row (infrapod stages, emulation after links) are what
   * a materialization waits on.
   */
  private finished(done: Action[]): void {
    const seen = new Set<string>();
    for (const a of done) {
      const k = `${a.mzid}\0${a.task}\0${a.stage}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const stage = this.mzs.get(a.mzid)?.actions.get(a.task)?.get(a.stage);
      if (stage && !stage.notDone) this.eager.add(`${a.mzid}\0${a.task}`);
    }
  }

  /** Apply our own committed write of an action to the mirror. */
  private local(a: Action, rev: number): void {
    const stage = this.mzs.get(a.mzid)?.actions.get(a.task)?.get(a.stage);
    const key = keys.action(a);
    if (!stage || (stage.actions.get(key)?.rev ?? 0) >= rev) return;
    const { spec: _spec, ...state } = a;
    stageSet(stage, key, { value: state, rev }, this.claims.has(key));
  }

  private outcomeTxn(j: Job, outcome: Outcome): { ops: Op[]; done: Action } {
    const now = new Date().toISOString();
    const done: Action = outcome.ok
      ? { ...j.claimed, state: "complete", error: undefined, completedBy: this.id, updated: now }
      : { ...j.claimed, state: "error", error: outcome.error, updated: now };
    const ops: Op[] = [{ op: "put", key: j.key, value: storedAction(done) }];
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
    return { ops, done };
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
    const merge = (cur: MzInfo): MzInfo => ({
      ...cur,
      ...patch,
      ...(patch.profiles ? { profiles: { ...cur.profiles, ...patch.profiles } } : {}),
      // Gateway ends come one external link at a time: merged by peer.
      ...(patch.gateways ? { gateways: { ...cur.gateways, ...patch.gateways } } : {}),
      ...(patch.controls ? { controls: { ...cur.controls, ...patch.controls } } : {}),
    });
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
