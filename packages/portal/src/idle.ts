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
 * What the facility alone sees counts too: the lease keeper asks the
 * facilities (the materialize room's probe, their Activity call) at most every
 * `probeEveryMs` for each node's counters (CPU seconds, packets on its
 * experiment interfaces, ssh logins open now) and keeps the last sample; an
 * ssh login open, or counters grown past a little noise since the last sample
 * (`facilityUse`), is activity like a session, with what it was.
 */
import type { Store } from "@merge/store";
import type { FastifyInstance } from "fastify";
import { formatDuration } from "./duration.ts";
import type { IdleTerms } from "./lease-policy.ts";
import { keys } from "./objects.ts";

export interface Activity {
  /** Time of the last session or activity the facility saw. */
  last: string;
  /** A session through the portal, or what the facility saw (traffic between nodes, CPU use, an ssh login). */
  kind: "exec" | "shell" | "traffic" | "cpu" | "ssh";
  /** Sessions counted on this record (approximate across replicas: a last-writer-wins counter). */
  sessions: number;
  /** What the facility saw, e.g. "traffic on experiment interfaces: a +40, c +40 packets". */
  detail?: string;
}

/** What a facility says a node did so far (its Activity call). */
export interface NodeSample {
  node: string;
  cpuSeconds: number;
  rxPackets: number;
  txPackets: number;
  sshSessions: number;
  /** What the facility does not measure, and why. */
  unmeasured?: string;
}

/** The materialize room's way to ask a materialization's facilities (undefined: none answered). */
export type ActivityProbe = (mz: {
  project: string;
  experiment: string;
  realization: string;
}) => Promise<NodeSample[] | undefined>;

/** The last sample kept, per node. */
interface KeptSample {
  at: string;
  nodes: Record<string, { cpu: number; packets: number }>;
  /** Why nodes are not measured (distinct reasons), when none is. */
  unmeasured?: string;
}

/**
 * Between two samples, this much counts as use: packets on a node's experiment
 * interfaces, its CPU seconds. (A node's first seconds send about a dozen packets
 * of neighbour discovery: the sample after it is materialized may count them, while
 * it is far from any idle limit anyway.)
 */
const NOISE = { packets: 10, cpuSeconds: 1 };

/**
 * Whether the facility's counters show use since the last sample: an ssh
 * login open now, traffic between nodes, or CPU time (a counter that went
 * down is a restarted node: a new baseline, not use).
 */
export function facilityUse(
  prev: KeptSample | undefined,
  nodes: NodeSample[],
): { kind: "ssh" | "traffic" | "cpu"; detail: string } | undefined {
  const ssh = nodes.filter((n) => n.sshSessions > 0);
  if (ssh.length) return { kind: "ssh", detail: `ssh login open on ${ssh.map((n) => n.node).join(", ")}` };
  if (!prev) return undefined;
  const traffic: string[] = [];
  const cpu: string[] = [];
  for (const n of nodes) {
    const before = prev.nodes[n.node];
    if (!before) continue;
    const packets = n.rxPackets + n.txPackets - before.packets;
    const seconds = n.cpuSeconds - before.cpu;
    if (packets >= NOISE.packets) traffic.push(`${n.node} +${packets}`);
    if (seconds >= NOISE.cpuSeconds) cpu.push(`${n.node} +${seconds.toFixed(1)} s`);
  }
  if (traffic.length)
    return { kind: "traffic", detail: `traffic on experiment interfaces: ${traffic.join(", ")} packets` };
  if (cpu.length) return { kind: "cpu", detail: `CPU use: ${cpu.join(", ")}` };
  return undefined;
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
  /** Set by the materialize room: how to ask the facilities. */
  probe: ActivityProbe | undefined;

  constructor(
    private readonly store: Store,
    /** How often a materialization's facilities are asked, at most (tests set it lower). */
    public probeEveryMs = 30_000,
  ) {}

  async touch(
    project: string,
    experiment: string,
    realization: string,
    kind: Activity["kind"],
    at = Date.now(),
    detail?: string,
  ) {
    const key = keys.activity(project, experiment, realization);
    const prev = await this.store.get(key);
    const before = prev ? (JSON.parse(prev.value) as Activity).sessions : 0;
    const session = kind === "exec" || kind === "shell";
    const a: Activity = {
      last: new Date(at).toISOString(),
      kind,
      sessions: session ? before + 1 : before,
      ...(detail ? { detail } : {}),
    };
    await this.store.put(key, JSON.stringify(a));
  }

  /**
   * Ask the facilities what the nodes did (at most every `probeEveryMs`), keep
   * the sample, and count use since the last one as activity.
   */
  async sample(mz: { project: string; experiment: string; realization: string }, now = Date.now()): Promise<void> {
    if (!this.probe) return;
    const key = keys.facilityActivity(mz.project, mz.experiment, mz.realization);
    const kv = await this.store.get(key);
    const prev = kv ? (JSON.parse(kv.value) as KeptSample) : undefined;
    if (prev && now - Date.parse(prev.at) < this.probeEveryMs) return;
    const nodes = await this.probe(mz);
    if (!nodes) return;
    const unmeasured = [...new Set(nodes.flatMap((n) => (n.unmeasured ? [n.unmeasured] : [])))];
    const kept: KeptSample = {
      at: new Date(now).toISOString(),
      nodes: Object.fromEntries(nodes.map((n) => [n.node, { cpu: n.cpuSeconds, packets: n.rxPackets + n.txPackets }])),
      // Only when no node is measured does the view say so (then nothing can look used).
      ...(nodes.length && nodes.every((n) => n.unmeasured) ? { unmeasured: unmeasured.join("; ") } : {}),
    };
    await this.store.put(key, JSON.stringify(kept));
    const use = facilityUse(prev, nodes);
    if (use) await this.touch(mz.project, mz.experiment, mz.realization, use.kind, now, use.detail);
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
    const kv = await this.store.get(keys.facilityActivity(mz.project, mz.experiment, mz.realization));
    const sampled = kv ? (JSON.parse(kv.value) as KeptSample) : undefined;
    const begun = Date.parse(mz.created);
    const last = Math.max(begun, a ? Date.parse(a.last) : 0);
    const idleSeconds = Math.max(0, Math.round((now - last) / 1000));
    const flagged = terms.afterSeconds > 0 && idleSeconds >= terms.afterSeconds;
    // What the facility could see, when it was asked.
    const facility =
      sampled === undefined
        ? ""
        : sampled.unmeasured
          ? ` (the facility measures no node activity: ${sampled.unmeasured})`
          : ", traffic between nodes, CPU use or ssh login";
    const seen =
      a === undefined || Date.parse(a.last) < begun
        ? `no exec or shell session${facility} since it was materialized ${formatDuration(idleSeconds)} ago`
        : a.kind === "exec" || a.kind === "shell"
          ? `last ${a.kind} session ${formatDuration(idleSeconds)} ago (${a.sessions} session${a.sessions === 1 ? "" : "s"} in all)`
          : `last activity the facility saw ${formatDuration(idleSeconds)} ago: ${a.detail ?? a.kind}`;
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
