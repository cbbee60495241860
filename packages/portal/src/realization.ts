/**
 * The realization lifecycle. Realize: run the engine over a revision's XIR,
 * the resource internet and the allocation table read from the store, then
 * write the realization and its allocation records in one transaction, so a
 * crash never leaves a realization without its resources or the reverse.
 * A realization not accepted within the accept timeout is released by the
 * sweeper; an accepted one is held until relinquished (or until its hold
 * expires, when configured).
 *
 * The allocation table is stored per realization, not per allocation unit, so
 * a reservation costs the same few store operations whatever its size (etcd
 * allows 128 per transaction): a header key, the records compressed
 * (deflate, base64) in chunks of at most 256 KiB (chunked.ts, the layout
 * realization records and revision bodies share), and the allocation epoch,
 * which every reservation compares and bumps. Two reservations computed from
 * one table (in this process or in another portal replica) cannot both
 * commit: the loser re-reads and realizes again. Frees need no epoch: they
 * only make room, so a reservation computed while a free happened is still
 * safe.
 */
import { type AllocationRecord, AllocationTable } from "@merge/realize";
import { type Compare, type KeyValue, MAX_TXN_OPS, type Op, type Store } from "@merge/store";
import type {
  Interconnect,
  ResourceInternet,
  Experiment as XirExperiment,
  Realization as XirRealization,
} from "@merge/xir";
import {
  CHUNK_CHARS,
  type ChunkedBody,
  chunkPuts,
  decodeChunks,
  encodeChunks,
  type Locate,
  readChunked,
} from "./chunked.ts";
import { Batch, epochCompare, LOST_RACE, list, readDoc, retryBatch } from "./documents.ts";
import { conflict, notFound, PortalError } from "./errors.ts";
import { listFacilities } from "./facility-record.ts";
import { measuredRooms, readFacilityHosts, unusableResources, withoutUnusable } from "./host-state.ts";
import {
  type ExpiredRealization,
  keys,
  type RealizationRecord,
  type RealizationSummary,
  type StoredRealization,
} from "./objects.ts";
import { allowedResources, type Pool, restrictInternet } from "./pool.ts";
import { deleteRealization, putRealization, summarize } from "./realization-record.ts";
import { readRevisionBody } from "./revision-body.ts";

/** Characters per chunk (chunked.ts). */
export const ALLOCATION_CHUNK_CHARS = CHUNK_CHARS;
/** Chunks per realization: a transaction's 128 ops less the realize transaction's others (record, expiry, header, epoch) and a margin. */
export const MAX_ALLOCATION_CHUNKS = MAX_TXN_OPS - 8;

/** What `keys.allocation(id)` holds; the records themselves are in its chunks, written in the same transaction. */
export interface AllocationHeader extends ChunkedBody {
  realization: string;
  records: number;
}

/** A realization's allocation records as stored: a header and its chunks. */
export function encodeAllocation(
  realization: string,
  records: readonly AllocationRecord[],
): { header: AllocationHeader; chunks: string[] } {
  const { body, chunks } = encodeChunks(JSON.stringify(records));
  return { header: { realization, ...body, records: records.length }, chunks };
}

export function decodeAllocation(header: AllocationHeader, chunks: readonly string[]): AllocationRecord[] {
  return decodedRecords(header, decodeChunks(header, chunks, `allocation of ${header.realization}`));
}

const locateAllocation: Locate<AllocationHeader> = (h) => ({ body: h, prefix: keys.allocationChunks(h.realization) });

/**
 * The compares and ops that reserve `records` for `realization` on top of the table read at
 * `epoch`: the header and its chunks must not exist, the epoch must be unchanged; the epoch is
 * bumped. Callers add their own writes (the realization record) to the same transaction.
 */
export function reserveAllocationTxn(
  realization: string,
  records: readonly AllocationRecord[],
  epoch: KeyValue | undefined,
): { compare: Compare[]; ops: Op[] } {
  const { header, chunks } = encodeAllocation(realization, records);
  if (chunks.length > MAX_ALLOCATION_CHUNKS) {
    throw new PortalError(
      "unprocessable",
      `realization ${realization}: its ${records.length} allocation records take ${chunks.length} chunks of ${ALLOCATION_CHUNK_CHARS} characters compressed; at most ${MAX_ALLOCATION_CHUNKS} fit one transaction`,
    );
  }
  return {
    compare: [epochCompare(keys.allocationEpoch(), epoch), { key: keys.allocation(realization), target: "absent" }],
    ops: [
      { op: "put", key: keys.allocation(realization), value: JSON.stringify(header) },
      ...chunkPuts(keys.allocationChunks(realization), chunks),
      { op: "put", key: keys.allocationEpoch(), value: realization },
    ],
  };
}

/** Decoded records by header key, valid while the header's modRevision is unchanged (headers are never rewritten). */
export type AllocationCache = Map<string, { modRevision: number; records: AllocationRecord[] }>;

/**
 * The allocation table as stored now, and the epoch it was read at. The epoch is
 * read first: any reservation committed after that bumps it, so a transaction
 * comparing it fails if the table it was computed from is stale.
 */
export async function readAllocations(
  store: Store,
  cache: AllocationCache = new Map(),
): Promise<{ table: AllocationTable; epoch: KeyValue | undefined }> {
  const epoch = await store.get(keys.allocationEpoch());
  const headers = await store.range(keys.allocations());
  const table = new AllocationTable();
  const seen = new Set<string>();
  for (const kv of headers) {
    seen.add(kv.key);
    const records = await recordsOf(store, kv, cache);
    if (records === undefined) continue; // released since the range: nothing held
    const r = table.reserve(records);
    if (!r.ok) throw new Error(`allocation table: ${kv.key} conflicts with others: ${r.conflicts.join("; ")}`);
  }
  for (const k of cache.keys()) if (!seen.has(k)) cache.delete(k);
  return { table, epoch };
}

async function recordsOf(
  store: Store,
  header: KeyValue,
  cache: AllocationCache,
): Promise<AllocationRecord[] | undefined> {
  const hit = cache.get(header.key);
  if (hit?.modRevision === header.modRevision) return hit.records;
  const got = await readChunked(
    store,
    header,
    locateAllocation,
    `allocation of ${(JSON.parse(header.value) as AllocationHeader).realization}`,
  );
  if (got === undefined) return undefined; // released since the range: nothing held
  const records = decodedRecords(got.stored, got.json as string);
  cache.set(got.kv.key, { modRevision: got.kv.modRevision, records });
  return records;
}

function decodedRecords(header: AllocationHeader, json: string): AllocationRecord[] {
  const records = JSON.parse(json) as AllocationRecord[];
  if (records.length !== header.records) {
    throw new Error(`allocation of ${header.realization}: ${records.length} records, header says ${header.records}`);
  }
  return records;
}

export type EngineResult =
  | { ok: true; realization: XirRealization; records: AllocationRecord[] }
  | { ok: false; diagnostics: string[]; closest?: XirRealization };

/** The realization engine as the portal sees it (engine.ts adapts @merge/realize). */
export interface Engine {
  /** Prepares (indexes) a resource internet; the portal caches the result until a facility changes. */
  prepare(internet: ResourceInternet): unknown;
  realize(input: {
    id: string;
    experiment: XirExperiment;
    internet: ResourceInternet;
    prepared: unknown;
    table: AllocationTable;
    /** On failure, also the closest mapping found (with every unmet constraint in the diagnostics). */
    bestEffort?: boolean;
    /** What the facilities' host agents measured free (host-state.ts). */
    measured?: MeasuredRoom[];
  }): EngineResult | Promise<EngineResult>;
}

/** What a facility host's agent measured free, for the resources on that host (cores, bytes of memory and disk). */
export interface MeasuredRoom {
  facility: string;
  host: string;
  resources: string[];
  cores: number;
  memory: number;
  disk: number;
}

export interface RealizeRequest {
  project: string;
  experiment: string;
  name: string;
  revision: number;
  user: string;
  /** Accept at once (the CLI's --accept). */
  accept?: boolean;
  /** On failure, answer with the closest mapping found (never stored, never acceptable). */
  bestEffort?: boolean;
  /** The lease once accepted, seconds (checked against the policy by the caller; default: the hold). */
  leaseSeconds?: number;
}

const MAX_ATTEMPTS = 64;
/** How long asking for a realization that expired unaccepted says so, instead of "does not exist". */
export const EXPIRED_KEPT_SECONDS = 24 * 3600;

export class Realizer {
  private cache: { epoch: number; internet: ResourceInternet; prepared: unknown } | undefined;
  /** Pool-restricted internets by allowed resource set, for the current `cache`. */
  private readonly pooled = new Map<string, { internet: ResourceInternet; prepared: unknown }>();
  /** Serializes realizations within this process so they do not race each other's CAS needlessly. */
  private queue: Promise<unknown> = Promise.resolve();
  private sweeper: NodeJS.Timeout | undefined;
  /** Realizations that lost a compare-and-swap race and were realized again (for tests and metrics). */
  retries = 0;

  constructor(
    private readonly store: Store,
    private readonly engine: Engine,
    private readonly acceptTimeoutMs: number,
    private readonly holdMs: number,
  ) {}

  /** The resource internet of all active facilities, prepared, cached until a facility changes. */
  async internet(): Promise<{ internet: ResourceInternet; prepared: unknown }> {
    const epochKv = await this.store.get(keys.facilityEpoch());
    const epoch = epochKv?.modRevision ?? 0;
    if (this.cache?.epoch === epoch) return this.cache;
    const facilities = (await listFacilities(this.store)).filter((f) => f.state === "active").map((f) => f.model);
    const active = new Set(facilities.map((f) => f.name));
    // An interconnect counts while both its facilities are active.
    const interconnects = (await list<Interconnect>(this.store, keys.interconnects())).filter(
      (ic) => active.has(ic.a.facility) && active.has(ic.b.facility),
    );
    const internet: ResourceInternet = { facilities, interconnects };
    this.cache = { epoch, internet, prepared: this.engine.prepare(internet) };
    this.pooled.clear();
    return this.cache;
  }

  /**
   * The resource internet as `project` may use it now: its resource pools,
   * without the resources of facility hosts that are drained or down
   * (`hosts`: why, for a failure's diagnostics); prepared and cached.
   */
  async internetFor(project: string): Promise<{
    internet: ResourceInternet;
    prepared: unknown;
    pooled: boolean;
    hosts: string[];
    measured: MeasuredRoom[];
  }> {
    const full = await this.internet();
    const allowed = allowedResources(await list<Pool>(this.store, keys.pools()), project);
    const reports = await readFacilityHosts(this.store);
    const unusable = unusableResources(reports);
    const measured = measuredRooms(reports);
    const pooled = allowed !== undefined;
    if (!pooled && unusable.excluded.size === 0) return { ...full, pooled, hosts: [], measured };
    const key = `${pooled ? [...allowed].sort().join(",") : "*"} | ${[...unusable.excluded].sort().join(",")}`;
    let hit = this.pooled.get(key);
    if (hit === undefined) {
      const usable = withoutUnusable(full.internet, unusable.excluded);
      const internet = pooled ? restrictInternet(usable, allowed) : usable;
      hit = { internet, prepared: this.engine.prepare(internet) };
      if (this.pooled.size > 256) this.pooled.clear();
      this.pooled.set(key, hit);
    }
    return { ...hit, pooled, hosts: unusable.reasons, measured };
  }

  /** Decoded allocation records of the realizations held, so each realize decodes only what is new. */
  private readonly decoded: AllocationCache = new Map();

  /** The allocation table as stored now. */
  async table(): Promise<AllocationTable> {
    return (await readAllocations(this.store, this.decoded)).table;
  }

  realize(req: RealizeRequest): Promise<RealizationRecord & { closest?: XirRealization }> {
    const run = this.queue.then(() => this.realizeNow(req));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async realizeNow(req: RealizeRequest): Promise<RealizationRecord & { closest?: XirRealization }> {
    const id = `${req.name}.${req.experiment}.${req.project}`;
    const rkey = keys.realization(req.project, req.experiment, req.name);
    const body = await readRevisionBody(this.store, req.project, req.experiment, req.revision);
    if (body === undefined) throw notFound("revision", `${req.revision} of ${req.experiment}.${req.project}`);
    if (body.xir === null) {
      throw new PortalError("unprocessable", `revision ${req.revision} did not compile; push a model that compiles`);
    }
    const xir = body.xir;
    type Realized = RealizationRecord & { closest?: XirRealization };
    // A lost race (another reservation committed since the table was read, or this name was taken): re-read and realize again.
    return retryBatch<Realized>(
      `realization ${id}: the allocation table kept changing; try again`,
      MAX_ATTEMPTS,
      async () => {
        if ((await this.store.get(rkey)) !== undefined) {
          throw conflict(`realization ${id} exists; pick another name or relinquish it first`);
        }
        const { table, epoch } = await readAllocations(this.store, this.decoded);
        const { internet, prepared, pooled, hosts, measured } = await this.internetFor(req.project);
        const engineResult = await this.engine.realize({
          id,
          experiment: xir,
          internet,
          prepared,
          table,
          bestEffort: req.bestEffort === true,
          ...(measured.length ? { measured } : {}),
        });
        const result: EngineResult = engineResult.ok
          ? engineResult
          : {
              ...engineResult,
              diagnostics: [
                ...engineResult.diagnostics,
                ...hosts,
                ...(pooled
                  ? [
                      `project ${req.project} may only use the nodes of its resource pools; an administrator can add it to more`,
                    ]
                  : []),
              ],
            };
        const now = Date.now();
        const base = {
          name: req.name,
          experiment: req.experiment,
          project: req.project,
          revision: req.revision,
          creator: req.user,
          created: new Date(now).toISOString(),
        };
        const b = new Batch().absent(rkey);
        let record: RealizationRecord;
        if (!result.ok) {
          record = {
            ...base,
            state: "failed",
            expires: null,
            realization: null,
            diagnostics: result.diagnostics,
            resources: [],
          };
          b.add(putRealization(record));
          // The closest mapping is an answer, not a realization: returned, never stored.
          if (await b.tryCommit(this.store)) return result.closest ? { ...record, closest: result.closest } : record;
          return LOST_RACE;
        }
        const accepted = req.accept === true;
        const leaseMs = req.leaseSeconds !== undefined ? req.leaseSeconds * 1000 : this.holdMs;
        const expiresAt = accepted ? (leaseMs > 0 ? now + leaseMs : null) : now + this.acceptTimeoutMs;
        const resources = new Set<string>();
        for (const r of result.records) {
          if (r.kind === "node" || r.kind === "infrapod") resources.add(`${r.facility}/${r.resource}`);
        }
        record = {
          ...base,
          state: accepted ? "accepted" : "pending",
          expires: expiresAt === null ? null : new Date(expiresAt).toISOString(),
          ...(accepted
            ? { accepted: base.created }
            : req.leaseSeconds !== undefined
              ? { leaseSeconds: req.leaseSeconds }
              : {}),
          realization: result.realization,
          diagnostics: [],
          resources: [...resources],
        };
        const reserve = reserveAllocationTxn(id, result.records, epoch);
        b.compare.push(...reserve.compare);
        b.ops.push(...reserve.ops);
        b.add(putRealization(record));
        if (expiresAt !== null) b.put(keys.expiry(expiresAt, req.project, req.experiment, req.name), { id });
        if (await b.tryCommitSized(this.store, `realization ${id}`)) return record;
        this.retries++;
        return LOST_RACE;
      },
    );
  }

  /** Accepts a pending realization: rewrites its record's small fields (its chunks, if any, stay as they are). */
  async accept(project: string, experiment: string, name: string): Promise<RealizationSummary> {
    const rkey = keys.realization(project, experiment, name);
    const doc = await readDoc<StoredRealization>(this.store, rkey);
    const id = `${name}.${experiment}.${project}`;
    if (doc === undefined) throw await this.missing(project, experiment, name);
    const r = doc.value;
    if (r.state === "accepted") return summarize(r);
    if (r.state === "failed")
      throw conflict(`realization ${id} failed; there is nothing to accept (see its diagnostics)`);
    const due = r.expires === null ? Number.POSITIVE_INFINITY : Date.parse(r.expires);
    if (due <= Date.now()) {
      await this.release(project, experiment, name, due);
      throw await this.missing(project, experiment, name);
    }
    const leaseMs = r.leaseSeconds !== undefined ? r.leaseSeconds * 1000 : this.holdMs;
    const now = Date.now();
    const expiresAt = leaseMs > 0 ? now + leaseMs : null;
    const { leaseSeconds: _asked, ...rest } = r;
    const next: StoredRealization = {
      ...rest,
      state: "accepted",
      accepted: new Date(now).toISOString(),
      expires: expiresAt === null ? null : new Date(expiresAt).toISOString(),
    };
    const b = new Batch().unchanged(rkey, doc.modRevision).put(rkey, next);
    if (r.expires !== null) b.delete(keys.expiry(Date.parse(r.expires), project, experiment, name));
    if (expiresAt !== null) b.put(keys.expiry(expiresAt, project, experiment, name), { id });
    await b.commit(this.store, `realization ${id} changed while accepting; try again`);
    return summarize(next);
  }

  /**
   * Why a realization is not there: it expired unaccepted (while its tombstone
   * lasts: when, and how long after it was realized), or it does not exist.
   */
  async missing(project: string, experiment: string, name: string): Promise<PortalError> {
    const id = `${name}.${experiment}.${project}`;
    const kv = await this.store.get(keys.expired(project, experiment, name));
    if (kv === undefined) return notFound("realization", id);
    const t = JSON.parse(kv.value) as ExpiredRealization;
    if (t.reason === "lease") {
      return new PortalError(
        "not_found",
        `${id} was relinquished by the portal when its lease ran out at ${t.expired.slice(0, 16).replace("T", " ")} UTC; its experiment's history says more (mrg show history ${experiment}.${project}); realize it again`,
      );
    }
    const after = Math.round((Date.parse(t.expired) - Date.parse(t.created)) / 1000);
    return new PortalError(
      "not_found",
      `${id} expired at ${t.expired.slice(11, 19)} UTC, ${after} s after it was realized, without being accepted; realize it again (with --accept, or accept within ${Math.round(this.acceptTimeoutMs / 1000)} s)`,
    );
  }

  /**
   * Reject, relinquish and expiry all end here: the realization and everything it holds go, atomically.
   * `dueAt`: released because its accept window closed at that time (the sweeper, a late accept);
   * such a pending realization leaves a tombstone that says so (`missing`).
   */
  async release(
    project: string,
    experiment: string,
    name: string,
    dueAt?: number,
    /** Ops to apply with the release when it is due to the lease (its history entry). */
    withLease?: readonly Op[],
  ): Promise<boolean> {
    const id = `${name}.${experiment}.${project}`;
    const rkey = keys.realization(project, experiment, name);
    const tombstone = keys.expired(project, experiment, name);
    let lease: string | undefined;
    return retryBatch(`realization ${id} kept changing while releasing; try again`, MAX_ATTEMPTS, async () => {
      const doc = await readDoc<StoredRealization>(this.store, rkey);
      if (doc === undefined) return false;
      const r = doc.value;
      // The sweeper releases only what is still due: an accept in between moved the expiry.
      if (dueAt !== undefined && (r.expires === null || Date.parse(r.expires) !== dueAt)) return false;
      const b = new Batch()
        .unchanged(rkey, doc.modRevision)
        .absent(keys.materialization(project, experiment, name))
        .add(deleteRealization(project, experiment, name));
      if (r.expires !== null) b.delete(keys.expiry(Date.parse(r.expires), project, experiment, name));
      // Frees leave the epoch alone: they only make room (see the top of this file).
      if (r.state !== "failed") b.delete(keys.allocation(id)).deletePrefix(keys.allocationChunks(id));
      if (dueAt !== undefined && (r.state === "pending" || withLease !== undefined)) {
        lease ??= await this.store.grant(EXPIRED_KEPT_SECONDS);
        const t: ExpiredRealization = {
          id,
          created: r.created,
          expired: new Date(dueAt).toISOString(),
          ...(r.state === "accepted" ? { reason: "lease" as const } : {}),
        };
        b.add([{ op: "put", key: tombstone, value: JSON.stringify(t), lease }]);
        if (r.state === "accepted" && withLease) b.add(withLease);
      } else b.delete(tombstone); // an older one's tombstone must not speak for this one
      if (await b.tryCommit(this.store)) return true;
      if ((await this.store.get(keys.materialization(project, experiment, name))) !== undefined) {
        throw conflict(`realization ${id} is materialized; dematerialize it first`);
      }
      return LOST_RACE;
    });
  }

  /** Releases every realization whose time is up. Returns how many. */
  async sweep(now = Date.now()): Promise<number> {
    const due = await this.store.range(keys.expiries());
    let n = 0;
    for (const kv of due) {
      const rest = kv.key.slice(keys.expiries().length);
      const [at, project, experiment, name] = rest.split("/") as [string, string, string, string];
      if (Number(at) > now) break;
      try {
        if (await this.release(project, experiment, name, Number(at))) n++;
        else await this.store.delete(kv.key);
      } catch {
        // Materialized (or busy): leave it for an operator or the next round.
      }
    }
    return n;
  }

  startSweeper(intervalMs = 1000): void {
    this.sweeper = setInterval(() => {
      this.sweep().catch(() => undefined);
    }, intervalMs);
    this.sweeper.unref();
  }

  stopSweeper(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
  }
}
