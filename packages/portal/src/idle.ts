/**
 * Idle detection. A materialization counts as idle when nothing has used it
 * for longer than the policy's `lease.idle.after`: the activity the portal
 * sees is every exec, shell and copy session to one of its nodes (routes
 * under …/materialization/nodes/:node/exec|shell), recorded as the time of
 * the last one. The lease keeper flags an idle materialization once per idle
 * spell (history entry, notice to its creator); with `reclaim: true` it
 * shortens the lease to end `grace` after that notice, so the lease path
 * dematerializes and relinquishes it unless someone uses it (or extends it)
 * meanwhile. Every view shows the idleness and why (`why`).
 *
 * Not yet counted: activity the facility alone sees (CPU time, packets on
 * experiment interfaces, logins by ssh into nodes): the facility API has no
 * activity report yet. A materialization used only that way looks idle.
 */
import type { Store } from "@merge/store";
import type { FastifyInstance } from "fastify";
import { formatDuration } from "./duration.ts";
import type { IdleTerms } from "./lease-policy.ts";
import { keys } from "./objects.ts";

export interface Activity {
  /** Time of the last session. */
  last: string;
  kind: "exec" | "shell";
  /** Sessions counted on this record (approximate across replicas: a last-writer-wins counter). */
  sessions: number;
}

export interface Idleness {
  idleSeconds: number;
  flagged: boolean;
  /** Why it counts as idle (or not), for the experimenter. */
  why: string;
  /** The time activity was last seen (or the materialization began). */
  since: string;
}

const SESSION_ROUTES: Record<string, Activity["kind"]> = {
  "POST /projects/:project/experiments/:experiment/realizations/:realization/materialization/nodes/:node/exec": "exec",
  "GET /projects/:project/experiments/:experiment/realizations/:realization/materialization/nodes/:node/shell": "shell",
};

export class ActivityLog {
  constructor(private readonly store: Store) {}

  async touch(project: string, experiment: string, realization: string, kind: Activity["kind"], at = Date.now()) {
    const key = keys.activity(project, experiment, realization);
    const prev = await this.store.get(key);
    const sessions = prev ? (JSON.parse(prev.value) as Activity).sessions + 1 : 1;
    const a: Activity = { last: new Date(at).toISOString(), kind, sessions };
    await this.store.put(key, JSON.stringify(a));
  }

  async get(project: string, experiment: string, realization: string): Promise<Activity | undefined> {
    const kv = await this.store.get(keys.activity(project, experiment, realization));
    return kv ? (JSON.parse(kv.value) as Activity) : undefined;
  }

  /** How idle a materialization (begun at `created`) is now, under `terms`. */
  async idleness(
    mz: { project: string; experiment: string; realization: string; created: string },
    terms: IdleTerms,
    now = Date.now(),
  ): Promise<Idleness> {
    const a = await this.get(mz.project, mz.experiment, mz.realization);
    const begun = Date.parse(mz.created);
    const last = Math.max(begun, a ? Date.parse(a.last) : 0);
    const idleSeconds = Math.max(0, Math.round((now - last) / 1000));
    const flagged = terms.afterSeconds > 0 && idleSeconds >= terms.afterSeconds;
    const seen =
      a === undefined || Date.parse(a.last) < begun
        ? `no exec or shell session since it was materialized ${formatDuration(idleSeconds)} ago`
        : `last ${a.kind} session ${formatDuration(idleSeconds)} ago (${a.sessions} session${a.sessions === 1 ? "" : "s"} in all)`;
    const rule =
      terms.afterSeconds > 0
        ? `; the policy counts ${formatDuration(terms.afterSeconds)} without one as idle${terms.reclaim ? `, reclaimed ${formatDuration(terms.graceSeconds)} after the notice` : ""}`
        : "; the policy sets no idle limit";
    return { idleSeconds, flagged, why: `${seen}${rule}`, since: new Date(last).toISOString() };
  }

  /** Records every exec and shell session as activity of its materialization. */
  install(app: FastifyInstance): void {
    app.addHook("onResponse", async (req, reply) => {
      const kind = SESSION_ROUTES[`${req.method} ${req.routeOptions.url}`];
      if (kind === undefined || reply.statusCode >= 400) return;
      const p = req.params as { project: string; experiment: string; realization: string };
      await this.touch(p.project, p.experiment, p.realization, kind).catch(() => undefined);
    });
  }
}
