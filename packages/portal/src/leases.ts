/**
 * Leases: every accepted realization holds its resources until its expiry.
 * The lease keeper decides how long (the policy's `lease` section, per
 * project and role: lease-policy.ts), extends within the maximum, warns
 * before expiry and, when a lease runs out, reclaims: a materialized
 * realization is dematerialized first (through the materialize room's hook),
 * then released, with an entry in its experiment's history and a notice to
 * its creator. Pending realizations whose accept window closed are released
 * here too (as the realizer's sweep always did).
 *
 * Every portal replica runs the keeper; each step is a compare-and-swap or an
 * absent-put of a marker, so two replicas sweeping at once do each thing once.
 */
import type { Store } from "@merge/store";
import { projectRoles } from "./access.ts";
import { Batch, LOST_RACE, read, readDoc, retryBatch } from "./documents.ts";
import { conflict, PortalError } from "./errors.ts";
import { type HistoryEntry, historyKey, historyPut } from "./history.ts";
import type { ActivityLog, ActivityProbe } from "./idle.ts";
import { formatDuration, type LeaseLimits, type LeaseTerms, leaseLimits } from "./lease-policy.ts";
import type { Notifier } from "./notifications.ts";
import {
  keys,
  type Member,
  type RealizationSummary,
  realizationId,
  type StoredRealization,
  type User,
} from "./objects.ts";
import type { Role } from "./policy.ts";
import type { Realizer } from "./realization.ts";
import { summarize } from "./realization-record.ts";

/** Asks the facilities to tear a materialization down (the materialize room registers it). */
export type Dematerialize = (project: string, experiment: string, realization: string) => Promise<void>;

/** Lease-warned markers outlive the expiry they mark by this much, then vanish. */
const WARNED_KEPT_SECONDS = 7 * 86_400;

export interface SweepResult {
  released: number;
  dematerializing: number;
  warned: number;
  /** Materializations newly flagged idle (and, when the policy reclaims, their leases shortened). */
  idle: number;
}

export class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private dematerializer: Dematerialize | undefined;

  constructor(
    private readonly store: Store,
    readonly terms: LeaseTerms,
    private readonly realizer: Realizer,
    private readonly notifier: Notifier,
    /** Told of each expiry handled (metrics). */
    private readonly expired?: (outcome: "released" | "dematerializing") => void,
    /** Exec and shell sessions per materialization: idleness (idle.ts). */
    readonly activity?: ActivityLog,
  ) {}

  /** The materialize room tells the keeper how to dematerialize (absent: materialized realizations wait). */
  onDematerialize(fn: Dematerialize): void {
    this.dematerializer = fn;
  }

  /** The materialize room tells the keeper how to ask facilities what the nodes did (idle.ts). */
  onProbeActivity(probe: ActivityProbe): void {
    if (this.activity) this.activity.probe = probe;
  }

  /** The lease limits for `user` in `project` (their project role and admin bit). */
  async limits(project: string, user: string): Promise<LeaseLimits & { why: string }> {
    const roles: Role[] = [...projectRoles(await read<Member>(this.store, keys.member(project, user)))];
    if ((await read<User>(this.store, keys.user(user)))?.admin) roles.push("Portal.Admin");
    return leaseLimits(this.terms, project, roles);
  }

  /** The lease for a new realization: the asked duration if within the maximum, else the default. */
  async leaseFor(project: string, user: string, asked?: number): Promise<number> {
    const l = await this.limits(project, user);
    if (asked === undefined) return l.defaultSeconds;
    if (asked > l.maxSeconds) {
      throw new PortalError(
        "unprocessable",
        `a lease of ${formatDuration(asked)} is longer than the ${formatDuration(l.maxSeconds)} ${l.why} allows; ask for at most ${formatDuration(l.maxSeconds)}`,
        "durationSeconds",
      );
    }
    return asked;
  }

  /**
   * Extends an accepted realization's lease by `seconds`. Refused (422) when it would then be
   * held longer than the maximum counted from its accept, naming the most it can still get.
   */
  async extend(
    project: string,
    experiment: string,
    name: string,
    by: string,
    seconds: number,
  ): Promise<RealizationSummary> {
    const rkey = keys.realization(project, experiment, name);
    const id = `${name}.${experiment}.${project}`;
    return retryBatch(`realization ${id} kept changing while extending; try again`, 8, async () => {
      const doc = await readDoc<StoredRealization>(this.store, rkey);
      if (doc === undefined) throw await this.realizer.missing(project, experiment, name);
      const r = doc.value;
      if (r.state !== "accepted")
        throw conflict(`realization ${id} is ${r.state}; only an accepted realization has a lease to extend`);
      const l = await this.limits(project, r.creator === by ? by : r.creator);
      const mine = by === r.creator ? l : await this.limits(project, by);
      const max = Math.max(l.maxSeconds, mine.maxSeconds);
      const now = Date.now();
      const from = Date.parse(r.accepted ?? r.created);
      const current = r.expires === null ? Number.POSITIVE_INFINITY : Date.parse(r.expires);
      if (!Number.isFinite(current)) throw conflict(`realization ${id} has no expiry; there is nothing to extend`);
      const until = Math.max(current, now) + seconds * 1000;
      const limit = from + max * 1000;
      if (until > limit) {
        const room = Math.max(0, Math.floor((limit - Math.max(current, now)) / 1000));
        throw new PortalError(
          "unprocessable",
          `extending ${id} by ${formatDuration(seconds)} would hold it until ${iso(until)}, ${formatDuration((until - from) / 1000)} after it was accepted; ${mine.maxSeconds >= l.maxSeconds ? mine.why : l.why} allows at most ${formatDuration(max)}` +
            (room >= 60
              ? `: extend by at most ${formatDuration(room)}`
              : ": it cannot be extended further; realize it again when it expires"),
          "extendSeconds",
        );
      }
      const next: StoredRealization = { ...r, expires: new Date(until).toISOString() };
      const entry: HistoryEntry = {
        at: new Date(now).toISOString(),
        kind: "lease-extended",
        realization: id,
        by,
        message: `lease extended by ${formatDuration(seconds)} to ${iso(until)}`,
      };
      const b = new Batch()
        .unchanged(rkey, doc.modRevision)
        .put(rkey, next)
        .delete(keys.expiry(current, project, experiment, name))
        .put(keys.expiry(until, project, experiment, name), { id })
        .add([historyPut(project, experiment, entry, `extend-${until}`)]);
      return (await b.tryCommit(this.store)) ? summarize(next) : LOST_RACE;
    });
  }

  /** One pass: release or reclaim what is due, warn what is near. */
  sweep(now = Date.now()): Promise<SweepResult> {
    const run = this.running.then(() => this.sweepNow(now));
    this.running = run.catch(() => undefined);
    return run;
  }

  private async sweepNow(now: number): Promise<SweepResult> {
    const out: SweepResult = { released: 0, dematerializing: 0, warned: 0, idle: 0 };
    const horizon = now + (this.terms.warnSeconds[0] ?? 0) * 1000;
    const prefix = keys.expiries();
    for (const kv of await this.store.range(prefix)) {
      const [atText, project, experiment, name] = kv.key.slice(prefix.length).split("/") as [
        string,
        string,
        string,
        string,
      ];
      const at = Number(atText);
      if (at > horizon) break;
      try {
        if (at <= now) {
          const done = await this.due(project, experiment, name, at, now);
          if (done === "released") out.released++;
          else if (done === "dematerializing") out.dematerializing++;
          if (done !== "none") this.expired?.(done);
        } else if (await this.warn(project, experiment, name, at, now)) out.warned++;
      } catch (err) {
        // Busy or changed under us: the next pass tries again.
        process.stderr.write(`portal: lease of ${name}.${experiment}.${project}: ${(err as Error).message}\n`);
      }
    }
    if (this.activity && this.terms.idle.afterSeconds > 0) {
      for (const kv of await this.store.range(keys.allMaterializations())) {
        const m = JSON.parse(kv.value) as {
          project: string;
          experiment: string;
          realization: string;
          state: string;
          created: string;
        };
        if (m.state !== "materializing") continue;
        try {
          // What the facilities saw the nodes do (no more often than the log's probe interval).
          await this.activity.sample(m, now).catch((err: Error) => {
            process.stderr.write(
              `portal: activity of ${m.realization}.${m.experiment}.${m.project} from its facilities: ${err.message}\n`,
            );
          });
          if (await this.flagIdle(m, now)) out.idle++;
        } catch (err) {
          process.stderr.write(
            `portal: idleness of ${m.realization}.${m.experiment}.${m.project}: ${(err as Error).message}\n`,
          );
        }
      }
    }
    return out;
  }

  /**
   * Flags an idle materialization once per idle spell (a marker keyed by when the spell began):
   * a history entry and a notice; when the policy reclaims, its lease is shortened to end `grace`
   * from now, and the lease path does the rest unless it is used or extended meanwhile.
   */
  private async flagIdle(
    m: { project: string; experiment: string; realization: string; created: string },
    now: number,
  ): Promise<boolean> {
    const idle = this.terms.idle;
    const i = await (this.activity as ActivityLog).idleness(m, idle, now);
    if (!i.flagged) return false;
    const marker = keys.idleFlagged(m.project, m.experiment, m.realization, Date.parse(i.since));
    if ((await this.store.get(marker)) !== undefined) return false;
    const rkey = keys.realization(m.project, m.experiment, m.realization);
    const doc = await readDoc<StoredRealization>(this.store, rkey);
    if (doc === undefined || doc.value.state !== "accepted") return false;
    const r = doc.value;
    const id = realizationId(r);
    const current = r.expires === null ? Number.POSITIVE_INFINITY : Date.parse(r.expires);
    const until = now + idle.graceSeconds * 1000;
    const reclaim = idle.reclaim && until < current;
    const message = `${id} is idle: ${i.why}${reclaim ? `. It will be dematerialized and relinquished at ${iso(until)} unless used before then (an exec or shell session) or extended` : ""}`;
    const entry: HistoryEntry = {
      at: new Date(now).toISOString(),
      kind: reclaim ? "idle-reclaimed" : "idle",
      realization: id,
      by: "portal",
      message,
    };
    const b = new Batch()
      .absent(marker)
      .add([
        { op: "put", key: marker, value: "1", lease: await this.store.grant(WARNED_KEPT_SECONDS) },
        historyPut(m.project, m.experiment, entry, `idle-${Date.parse(i.since)}`),
      ]);
    if (reclaim) {
      b.unchanged(rkey, doc.modRevision)
        .put(rkey, { ...r, expires: new Date(until).toISOString() })
        .delete(keys.expiry(current, m.project, m.experiment, m.realization))
        .put(keys.expiry(until, m.project, m.experiment, m.realization), { id });
    }
    if (!(await b.tryCommit(this.store))) return false;
    await this.notifier.notify(r.creator, { kind: "idle", realization: id, message });
    return true;
  }

  private async due(
    project: string,
    experiment: string,
    name: string,
    at: number,
    now: number,
  ): Promise<"released" | "dematerializing" | "none"> {
    const r = await read<StoredRealization>(this.store, keys.realization(project, experiment, name));
    if (r === undefined || r.state !== "accepted") {
      // Pending (its accept window closed), or already gone: the realizer's release as before.
      if (await this.realizer.release(project, experiment, name, at)) return "released";
      if (r === undefined) await this.store.delete(keys.expiry(at, project, experiment, name));
      return "none";
    }
    if (r.expires === null || Date.parse(r.expires) !== at) {
      await this.store.delete(keys.expiry(at, project, experiment, name)); // extended meanwhile: a stale entry
      return "none";
    }
    const id = realizationId(r);
    if ((await this.store.get(keys.materialization(project, experiment, name))) !== undefined) {
      if (this.dematerializer === undefined) return "none";
      const entry: HistoryEntry = {
        at: new Date(at).toISOString(),
        kind: "lease-expired",
        realization: id,
        by: "portal",
        message: `lease ran out at ${iso(at)}: dematerializing, then relinquishing`,
      };
      // The marker entry is keyed by the expiry: written once, however many sweeps and replicas see it.
      const first = await this.store.txn({
        compare: [{ key: historyKey(project, experiment, at, `expired-${at}`), target: "absent" }],
        success: [historyPut(project, experiment, entry, `expired-${at}`)],
      });
      await this.dematerializer(project, experiment, name);
      if (first.succeeded)
        await this.notifier.notify(r.creator, { kind: "lease-expired", realization: id, message: entry.message });
      return "dematerializing";
    }
    const entry: HistoryEntry = {
      at: new Date(Math.max(now, at)).toISOString(),
      kind: "reclaimed",
      realization: id,
      by: "portal",
      message: `lease ran out at ${iso(at)}; relinquished (held ${formatDuration((at - Date.parse(r.accepted ?? r.created)) / 1000)} since its accept)`,
    };
    if (
      !(await this.realizer.release(project, experiment, name, at, [
        historyPut(project, experiment, entry, `reclaimed-${at}`),
      ]))
    )
      return "none";
    await this.notifier.notify(r.creator, { kind: "reclaimed", realization: id, message: `${id}: ${entry.message}` });
    return "released";
  }

  /** A notice for each warning threshold crossed (once per expiry and threshold). */
  private async warn(project: string, experiment: string, name: string, at: number, now: number): Promise<boolean> {
    const before = this.terms.warnSeconds.filter((w) => at - now <= w * 1000).at(-1);
    if (before === undefined) return false;
    const marker = keys.leaseWarned(project, experiment, name, at, before);
    if ((await this.store.get(marker)) !== undefined) return false;
    const r = await read<StoredRealization>(this.store, keys.realization(project, experiment, name));
    if (r === undefined || r.state !== "accepted" || r.expires === null || Date.parse(r.expires) !== at) return false;
    const id = realizationId(r);
    const materialized = (await this.store.get(keys.materialization(project, experiment, name))) !== undefined;
    const message = `${id} expires at ${iso(at)} (in ${formatDuration((at - now) / 1000)})${materialized ? ": it will be dematerialized and relinquished" : ": it will be relinquished"}; extend it with: mrg realization extend ${id} <duration>`;
    const entry: HistoryEntry = {
      at: new Date(now).toISOString(),
      kind: "lease-warning",
      realization: id,
      by: "portal",
      message,
    };
    const t = await this.store.txn({
      compare: [{ key: marker, target: "absent" }],
      success: [
        {
          op: "put",
          key: marker,
          value: "1",
          lease: await this.store.grant(Math.ceil((at - now) / 1000) + WARNED_KEPT_SECONDS),
        },
        historyPut(project, experiment, entry, `warn-${at}-${before}`),
      ],
    });
    if (!t.succeeded) return false;
    await this.notifier.notify(r.creator, { kind: "lease-warning", realization: id, message });
    return true;
  }

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => {
      this.sweep().catch(() => undefined);
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running;
  }
}

function iso(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}
