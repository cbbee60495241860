/**
 * The portal's side of materialization: at most one materialization per
 * realization; requests delivered to each facility's commander in the
 * background, retried with backoff, never blocking the caller or other work;
 * status read live from the facilities, with unreachable ones shown as such;
 * dematerialize always completes (see packages/facility/docs/failure-model.md).
 *
 * The plan (`@merge/materialize`) is computed once, when the materialization
 * is created, and stored with it (plan-record.ts); delivery, retries, status,
 * node operations and dematerialize read it. `work` reconciles what the plan
 * wants with what each facility reports (reconcile.ts).
 */
import { create } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import {
  actionStateName,
  emulationParamsFromPb,
  emulationParamsToPb,
  fragmentToPb,
  type GatewayEndSpec,
  linkPlacement,
  type MaterializationPlan,
  mzStatusName,
  type NodeAccounts,
  type NodeAction,
  nodePlacement,
  nodeProfileFromPb,
  nodeStateName,
  PlanError,
  planFacilities,
  planMaterialization,
  planNames,
  planNodeAddresses,
  powerActionToPb,
} from "@merge/materialize";
import * as pb from "@merge/proto";
import { type Store, updateJSON } from "@merge/store";
import type { EmulationValues, Facility } from "@merge/xir";
import {
  apiEmulation,
  type FacilityStatus,
  type MaterializationStatus,
  type NodeProfile,
} from "../client/materialization.ts";
import { PortalError } from "../errors.ts";
import { readFacility } from "../facility-record.ts";
import type { NodeSample } from "../idle.ts";
import type { FacilityRecord } from "../objects.ts";
import { realizationId } from "../objects.ts";
import { readRealization } from "../realization-record.ts";
import { readRevisionBody } from "../revision-body.ts";
import { listInterconnects } from "../routes/interconnects.ts";
import { idKeys, projectAccounts, unixId } from "../xdc/ids.ts";
import { gatewayHandovers, gatewayNeeds, gatewaysHanded, sameEnds } from "./gateways.ts";
import { deletePlan, putPlan, readPlan } from "./plan-record.ts";
import { needsObservation, nextStep } from "./reconcile.ts";

export type FacilityClient = Client<typeof pb.FacilityService>;
/** How the portal reaches a facility's commander (mutual TLS credentials are the connector's business). */
export type Connect = (facility: Pick<FacilityRecord, "name" | "endpoint">) => FacilityClient;

/** What the portal wants of one facility, and how delivering it is going. */
export interface FacilityPart {
  facility: string;
  /** The request to deliver: materialize, or dematerialize. */
  want: "materialize" | "dematerialize";
  /** The facility accepted the request for `want`. */
  delivered: boolean;
  attempts: number;
  lastError?: string;
  /** ISO time of the next delivery attempt while undelivered. */
  nextAttempt?: string;
  resources: string[];
  fragments: number;
  /**
   * The peer facilities' gateway ends the portal handed this facility (public
   * parts only), kept so a restarted portal knows them; dropped when its part
   * is materialized anew (its tunnels with it).
   */
  gatewayPeers?: GatewayEndSpec[];
}

export type MaterializationState = "materializing" | "dematerializing";

export interface MaterializationRecord {
  id: string;
  project: string;
  experiment: string;
  realization: string;
  state: MaterializationState;
  creator: string;
  created: string;
  updated: string;
  /** When dematerialize was asked for. */
  dematerializeAt?: string;
  facilities: FacilityPart[];
}

export type { FacilityStatus, MaterializationStatus } from "../client/materialization.ts";

/** One chunk of a command's output, or its end. */
export type ExecOutput = { stdout: Uint8Array } | { stderr: Uint8Array } | { exit: number };

/** What a shell's caller sends. */
export type ShellInput = { stdin: Uint8Array } | { resize: { rows: number; cols: number } } | { eof: true };

/** Where a node or link of a materialization lives: its facility and the resource requests route by. */
interface Placement {
  m: MaterializationRecord;
  client: FacilityClient;
  resource: string;
}

export interface MaterializerOptions {
  store: Store;
  connect: Connect;
  /** First retry after this many ms, doubling to `maxBackoffMs` (defaults 1,000 and 60,000). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Deadline for one call to a facility, ms (default 5,000). */
  callTimeoutMs?: number;
  /**
   * Give up delivering a dematerialize after this long (default 24 h): the portal
   * forgets the materialization and leaves an orphan note for operators
   * (`portal/mz-orphans/<id>`); the facility's `cog dematerialize` finishes it.
   */
  teardownGiveUpMs?: number;
  log?: (m: string) => void;
  /** A member's merge key (xdc/merge-key.ts), authorized on the nodes beside the keys they gave. */
  mergeKeyOf?: (user: string, uid: number) => Promise<string | undefined>;
}

const P = "portal/materializations/";
export const mzKeys = {
  record: (p: string, e: string, r: string) => `${P}${p}/${e}/${r}`,
  all: () => P,
  orphan: (id: string) => `portal/mz-orphans/${id}`,
};

export class Materializer {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly working = new Set<string>();
  private closed = false;
  private readonly backoff: number;
  private readonly maxBackoff: number;
  private readonly timeout: number;
  private readonly giveUp: number;
  /** Stored plans by record key and creation revision: a plan never changes while its materialization lives. */
  private readonly plans = new Map<string, MaterializationPlan>();

  constructor(private readonly opts: MaterializerOptions) {
    this.backoff = opts.backoffMs ?? 1000;
    this.maxBackoff = opts.maxBackoffMs ?? 60_000;
    this.timeout = opts.callTimeoutMs ?? 5000;
    this.giveUp = opts.teardownGiveUpMs ?? 24 * 3600_000;
  }

  private get store(): Store {
    return this.opts.store;
  }

  private async read<T>(key: string): Promise<{ value: T; rev: number } | undefined> {
    const kv = await this.store.get(key);
    return kv ? { value: JSON.parse(kv.value) as T, rev: kv.modRevision } : undefined;
  }

  /** A facility with its model, as `read` gives other records. */
  private async facility(name: string): Promise<{ value: FacilityRecord; rev: number } | undefined> {
    const f = await readFacility(this.store, name);
    return f && { value: f.record, rev: f.modRevision };
  }

  /**
   * The plan of a realization as it is now: its embedding, its revision's XIR
   * and the models of the facilities it uses. Refusals name what is missing.
   */
  private async computePlan(project: string, experiment: string, realization: string): Promise<MaterializationPlan> {
    const rec = await readRealization(this.store, project, experiment, realization);
    if (!rec) {
      throw new PortalError("not_found", `realization '${realization}.${experiment}.${project}' does not exist`);
    }
    const r = rec.record;
    const id = realizationId(r);
    if (r.state !== "accepted" || !r.realization) {
      throw new PortalError(
        "conflict",
        `realization ${id} is ${r.state}; only an accepted realization can be materialized (accept it first)`,
      );
    }
    const body = await readRevisionBody(this.store, project, experiment, r.revision);
    const xp = body?.xir;
    if (!xp) throw new PortalError("unprocessable", `revision ${r.revision} of ${experiment} has no compiled XIR`);
    const models: Facility[] = [];
    for (const name of planFacilities(r.realization)) {
      const f = await this.facility(name);
      if (!f)
        throw new PortalError("unprocessable", `realization ${id} uses facility '${name}', which is not registered`);
      models.push(f.value.model as Facility);
    }
    try {
      const interconnects = await listInterconnects({ store: this.store });
      return withAccounts(
        planMaterialization(r.realization, xp, models, interconnects),
        await nodeAccounts(this.store, project, this.opts.mergeKeyOf),
      );
    } catch (err) {
      if (err instanceof PlanError) throw new PortalError("unprocessable", err.message);
      throw err;
    }
  }

  /**
   * A materialization's stored plan. A record written before plans were
   * stored gets its plan computed now and stored beside it.
   */
  private async planOf(m: MaterializationRecord): Promise<MaterializationPlan> {
    const key = mzKeys.record(m.project, m.experiment, m.realization);
    const cacheKey = `${key} ${m.created}`;
    const cached = this.plans.get(cacheKey);
    if (cached) return cached;
    let plan = await readPlan(this.store, m.project, m.experiment, m.realization);
    if (!plan) {
      plan = await this.computePlan(m.project, m.experiment, m.realization);
      await this.store.txn({
        compare: [{ key, target: "present" }],
        success: putPlan(m.project, m.experiment, m.realization, plan),
      });
    }
    // Bounded: plans are re-read from the store when evicted.
    if (this.plans.size >= 64) this.plans.delete(this.plans.keys().next().value as string);
    this.plans.set(cacheKey, plan);
    return plan;
  }

  /** Start materializing an accepted realization. Returns at once; delivery happens in the background. */
  async create(
    project: string,
    experiment: string,
    realization: string,
    creator: string,
  ): Promise<MaterializationRecord> {
    const plan = await this.computePlan(project, experiment, realization);
    const id = plan.mzid;
    const parts: FacilityPart[] = plan.facilities.map((fp) => ({
      facility: fp.facility,
      want: "materialize",
      delivered: false,
      attempts: 0,
      resources: fp.resources,
      fragments: fp.fragments.length,
    }));
    const now = new Date().toISOString();
    const mz: MaterializationRecord = {
      id,
      project,
      experiment,
      realization,
      state: "materializing",
      creator,
      created: now,
      updated: now,
      facilities: parts,
    };
    const key = mzKeys.record(project, experiment, realization);
    const t = await this.store.txn({
      compare: [{ key, target: "absent" }],
      success: [{ op: "put", key, value: JSON.stringify(mz) }, ...putPlan(project, experiment, realization, plan)],
      failure: [{ op: "get", key }],
    });
    if (!t.succeeded) {
      const cur = JSON.parse(t.gets[0]!.value) as MaterializationRecord;
      throw new PortalError(
        "conflict",
        cur.state === "dematerializing"
          ? `${id} is still being dematerialized; materialize it again once that is done`
          : `${id} is materialized already (at most one materialization per realization)`,
      );
    }
    this.kick(key, 0);
    return mz;
  }

  /** Ask for teardown. Returns at once; the portal delivers it until the facilities confirm. */
  async dematerialize(project: string, experiment: string, realization: string): Promise<MaterializationRecord> {
    const key = mzKeys.record(project, experiment, realization);
    const next = await this.update(key, (m) =>
      m.state === "dematerializing"
        ? undefined
        : {
            ...m,
            state: "dematerializing",
            dematerializeAt: new Date().toISOString(),
            facilities: m.facilities.map((f) => ({
              ...f,
              want: "dematerialize" as const,
              delivered: false,
              attempts: 0,
              lastError: undefined,
              nextAttempt: undefined,
            })),
          },
    );
    if (!next) throw new PortalError("not_found", `${realization}.${experiment}.${project} is not materialized`);
    this.kick(key, 0);
    return next;
  }

  async get(project: string, experiment: string, realization: string): Promise<MaterializationRecord | undefined> {
    return (await this.read<MaterializationRecord>(mzKeys.record(project, experiment, realization)))?.value;
  }

  async list(): Promise<MaterializationRecord[]> {
    return (await this.store.range(mzKeys.all())).map((kv) => JSON.parse(kv.value) as MaterializationRecord);
  }

  /**
   * What each node did so far, as its facilities measure it (their Activity
   * call), for idle detection; undefined when no facility answered.
   */
  async activity(project: string, experiment: string, realization: string): Promise<NodeSample[] | undefined> {
    const m = await this.get(project, experiment, realization);
    if (!m) return undefined;
    let answered = false;
    const nodes: NodeSample[] = [];
    await Promise.all(
      m.facilities.map(async (part) => {
        try {
          const r = await (await this.client(part.facility)).activity(
            { mzid: m.id, resources: part.resources },
            { timeoutMs: this.timeout },
          );
          answered = true;
          for (const n of r.nodes)
            nodes.push({
              node: n.node,
              cpuSeconds: n.cpuSeconds,
              rxPackets: Number(n.rxPackets),
              txPackets: Number(n.txPackets),
              sshSessions: n.sshSessions,
              ...(n.unmeasured ? { unmeasured: n.unmeasured } : {}),
            });
        } catch {
          // unreachable or too old to report activity: this facility says nothing this time
        }
      }),
    );
    return answered ? nodes : undefined;
  }

  /** Status with per-node and per-link detail, read live from each facility. */
  async status(project: string, experiment: string, realization: string): Promise<MaterializationStatus> {
    const m = await this.get(project, experiment, realization);
    if (!m) throw new PortalError("not_found", `${realization}.${experiment}.${project} is not materialized`);
    const out: MaterializationStatus = {
      id: m.id,
      project,
      experiment,
      realization,
      status: m.state,
      actions: 0,
      complete: 0,
      facilities: [],
      nodes: [],
      links: [],
    };
    const facilities = await Promise.all(
      m.facilities.map(async (part): Promise<[FacilityStatus, pb.StatusResponse | undefined]> => {
        const base = { facility: part.facility, attempts: part.attempts, nextAttempt: part.nextAttempt };
        const empty = { actions: 0, complete: 0, errors: 0, masked: 0, failed: [] };
        try {
          const s = await (await this.client(part.facility)).status(
            { mzid: m.id, resources: part.resources },
            { timeoutMs: this.timeout },
          );
          const routing = s.errors.map((e) => e.message).join("; ");
          return [
            {
              ...base,
              reachable: true,
              status: part.delivered || part.want === "dematerialize" ? mzStatusName(s.status) : "undelivered",
              error: part.lastError ?? (routing || undefined),
              actions: s.actions,
              complete: s.complete,
              errors: s.errorCount,
              masked: s.masked,
              infrapod: s.infrapodAddress || undefined,
              failed: s.failed.map((a) => ({
                task: a.task,
                action: a.id,
                kind: a.kind,
                target: a.target,
                error: a.error,
                attempts: a.attempts,
              })),
            },
            s,
          ];
        } catch (err) {
          return [
            {
              ...base,
              ...empty,
              reachable: false,
              status: part.delivered ? "unreachable" : "undelivered",
              error: `facility ${part.facility} is unreachable: ${(err as Error).message}${part.lastError ? ` (last delivery error: ${part.lastError})` : ""}`,
            },
            undefined,
          ];
        }
      }),
    );
    for (const [fs, s] of facilities) {
      out.facilities.push(fs);
      out.actions += fs.actions;
      out.complete += fs.complete + fs.masked;
      for (const n of s?.nodes ?? []) {
        out.nodes.push({
          node: n.node,
          resource: n.resource,
          facility: fs.facility,
          current: nodeStateName(n.current),
          target: nodeStateName(n.target),
          action: actionStateName(n.action),
          ...(n.error ? { error: n.error } : {}),
          power: n.power,
          ...(n.powerError ? { powerError: n.powerError } : {}),
          ...profileOf(n.profile),
          ...(n.control
            ? {
                control: {
                  address: n.control.address,
                  first: n.control.firstPort,
                  last: n.control.lastPort,
                  ssh: n.control.sshPort,
                },
              }
            : {}),
        });
      }
      for (const l of s?.links ?? []) {
        out.links.push({
          link: l.link,
          facility: fs.facility,
          action: actionStateName(l.action),
          ...(l.error ? { error: l.error } : {}),
          ...(l.emulation ? { emulation: apiEmulation(emulationParamsFromPb(l.emulation)) } : {}),
        });
      }
    }
    const plan = await this.planOf(m);
    // A facility that cannot answer: what it misses, from the plan, so the status names each
    // of its nodes and links (a materialization across facilities shows what is not there yet).
    for (const fs of out.facilities) {
      if (fs.reachable) continue;
      const why = `facility ${fs.facility} is ${fs.status}`;
      for (const f of plan.facilities.find((p) => p.facility === fs.facility)?.fragments ?? []) {
        if (f.op === "node.setup")
          out.nodes.push({
            node: f.node.node,
            resource: f.resource,
            facility: fs.facility,
            current: "unknown",
            target: "unknown",
            action: fs.status,
            error: why,
            power: "",
          });
        else if (f.op === "link.create")
          out.links.push({ link: f.link.link, facility: fs.facility, action: fs.status, error: why });
      }
    }
    // External links, from the plan: this facility's part crosses to these facilities.
    for (const l of out.links) {
      const f = plan.facilities
        .find((p) => p.facility === l.facility)
        ?.fragments.find((x) => x.op === "link.create" && x.link.link === l.link);
      const peers = f?.op === "link.create" ? [...new Set((f.link.external ?? []).map((x) => x.peer))] : [];
      if (peers.length) l.external = peers;
    }
    // Addresses and images as the plan resolved them (the facility reports state, not these).
    const reach = planNodeAddresses(plan);
    for (const n of out.nodes) {
      const a = reach.get(n.node);
      if (a) Object.assign(n, { addresses: a.addresses, infranet: a.infranet, ...(a.image ? { image: a.image } : {}) });
    }
    // Across facilities, the wide-area paths exist once every facility has its peers' gateway ends: until
    // then the materialization is not active, whatever its facilities say (a ping across would fail).
    const joined = gatewaysHanded(plan, (f) => m.facilities.find((x) => x.facility === f)?.gatewayPeers);
    out.status = overall(m, out.facilities, joined);
    return out;
  }

  /** A materialization that is running (not being dematerialized), with its plan. */
  private async running(
    project: string,
    experiment: string,
    realization: string,
  ): Promise<{ m: MaterializationRecord; plan: MaterializationPlan }> {
    const m = await this.get(project, experiment, realization);
    if (!m) throw new PortalError("not_found", `${realization}.${experiment}.${project} is not materialized`);
    if (m.state !== "materializing")
      throw new PortalError("conflict", `${m.id} is being dematerialized; materialize it again first`);
    return { m, plan: await this.planOf(m) };
  }

  /** The client for a facility of a materialization, once the facility has its part. */
  private async deliveredTo(m: MaterializationRecord, facility: string): Promise<FacilityClient> {
    const part = m.facilities.find((f) => f.facility === facility);
    if (!part?.delivered)
      throw new PortalError("conflict", `${m.id} is not delivered to ${facility} yet; wait until it is active`);
    return this.client(facility);
  }

  /** The facility and resource serving a node of a materialization (power, exec, shell), from its plan. */
  private async placeNode(project: string, experiment: string, realization: string, node: string): Promise<Placement> {
    const { m, plan } = await this.running(project, experiment, realization);
    const at = nodePlacement(plan, node);
    if (!at) throw noSuch(m, plan, "node", node);
    return { m, client: await this.deliveredTo(m, at.facility), resource: at.resource };
  }

  /** The facility and emulator serving an emulated link of a materialization, from its plan. */
  private async placeLink(project: string, experiment: string, realization: string, link: string): Promise<Placement> {
    const { m, plan } = await this.running(project, experiment, realization);
    const at = linkPlacement(plan, link);
    if (!at) throw noSuch(m, plan, "link", link);
    if (!at.emulator) {
      throw new PortalError(
        "conflict",
        `link ${link} is not emulated: only links with a latency, loss or capacity constraint run through an emulator (constrain it in the model, then realize and materialize again)`,
      );
    }
    return { m, client: await this.deliveredTo(m, at.emulator.facility), resource: at.emulator.resource };
  }

  /**
   * Power a node: start (on), stop (off), reboot (soft cycle, or hard), cycle (hard); or reimage it
   * (its disk back to its image, booted and configured as at materialize). Resolves when done.
   */
  async power(project: string, experiment: string, realization: string, node: string, action: NodeAction) {
    const p = await this.placeNode(project, experiment, realization, node);
    const r = await facilityCall(() =>
      p.client.nodePower(
        { mzid: p.m.id, resource: p.resource, node, action: powerActionToPb(action) },
        { timeoutMs: 180_000 },
      ),
    );
    return {
      node,
      resource: p.resource,
      power: r.node?.power ?? "",
      state: r.node ? nodeStateName(r.node.current) : "",
    };
  }

  /**
   * Change an emulated link at runtime, in every direction or `toward` one
   * endpoint's node; unset fields keep their values. Returns the link's emulation now.
   */
  async emulation(
    project: string,
    experiment: string,
    realization: string,
    link: string,
    change: EmulationValues,
    toward?: string,
  ) {
    if (change.capacity === undefined && change.latency === undefined && change.loss === undefined) {
      throw new PortalError("bad_request", "nothing to change: give latency, loss and/or capacity");
    }
    const p = await this.placeLink(project, experiment, realization, link);
    const r = await facilityCall(() =>
      p.client.updateEmulation(
        { mzid: p.m.id, resource: p.resource, link, params: emulationParamsToPb(change), toward: toward ?? "" },
        { timeoutMs: 60_000 },
      ),
    );
    return { link, emulator: p.resource, emulation: emulationParamsFromPb(r.params) };
  }

  /**
   * Attach a peer (an XDC, by its WireGuard public key) to the materialization's
   * infranet: the first facility's infrapod adds it and answers with its own
   * public key, port and the peer's address (xdc/attach.ts). The endpoint's host
   * is the facility's (the address the portal reaches its commander at) unless
   * the facility names another.
   */
  async attach(project: string, experiment: string, realization: string, peer: string, publicKey: string) {
    const p = await this.placeInfrapod(project, experiment, realization);
    const r = await facilityCall(() =>
      p.client.attach({ mzid: p.m.id, resource: p.resource, peer, publicKey }, { timeoutMs: 60_000 }),
    );
    const f = await this.facility(p.facility);
    const host = r.endpointHost || new URL(f?.value.endpoint ?? "https://127.0.0.1").hostname;
    return {
      materialization: p.m.id,
      publicKey: r.publicKey,
      endpoint: `${host.includes(":") ? `[${host}]` : host}:${r.endpointPort}`,
      address: r.address,
      nameserver: r.nameserver,
      search: r.search,
    };
  }

  /** Remove an attached peer; nothing to do when the materialization is gone (its infrapod took the endpoint). */
  async detach(project: string, experiment: string, realization: string, peer: string): Promise<void> {
    const m = await this.get(project, experiment, realization);
    if (m?.state !== "materializing") return;
    const p = await this.placeInfrapod(project, experiment, realization);
    await facilityCall(() => p.client.detach({ mzid: p.m.id, resource: p.resource, peer }, { timeoutMs: 60_000 }));
  }

  /** The facility and server resource of the materialization's (first) infrapod. */
  private async placeInfrapod(project: string, experiment: string, realization: string) {
    const { m, plan } = await this.running(project, experiment, realization);
    for (const fp of plan.facilities) {
      const f = fp.fragments.find((x) => x.op === "infrapod.setup");
      if (f) return { m, facility: fp.facility, client: await this.deliveredTo(m, fp.facility), resource: f.resource };
    }
    throw new PortalError("conflict", `${m.id} has no infrapod to attach to`);
  }

  /**
   * Run a command in a node. Refusals (unknown node, node not ready, a backend
   * without real nodes) throw before anything is returned; then output streams.
   */
  async exec(
    project: string,
    experiment: string,
    realization: string,
    node: string,
    argv: string[],
    opts: { signal: AbortSignal; timeoutMs?: number },
  ): Promise<AsyncIterable<ExecOutput>> {
    const p = await this.placeNode(project, experiment, realization, node);
    const it = p.client
      .exec({ mzid: p.m.id, resource: p.resource, node, argv, timeoutMs: opts.timeoutMs ?? 0 }, { signal: opts.signal })
      [Symbol.asyncIterator]();
    // The first message, or the facility's refusal, before the caller starts answering.
    return execOutput(it, await facilityCall(() => it.next()), "command");
  }

  /**
   * An interactive shell in a node, or with `argv` a command (without a tty):
   * `input` carries keystrokes (or piped input), window size changes and end
   * of input to the facility; output streams back, then the exit code.
   * Refusals (unknown node, node not ready, a backend without real nodes)
   * throw from the returned iterator's first step.
   */
  async shell(
    project: string,
    experiment: string,
    realization: string,
    node: string,
    opts: {
      tty: boolean;
      size?: { rows: number; cols: number };
      argv?: string[];
      timeoutMs?: number;
      signal: AbortSignal;
    },
    input: AsyncIterable<ShellInput>,
  ): Promise<AsyncIterable<ExecOutput>> {
    const p = await this.placeNode(project, experiment, realization, node);
    async function* requests(): AsyncGenerator<pb.ShellRequest> {
      yield create(pb.ShellRequestSchema, {
        in: {
          case: "start",
          value: {
            mzid: p.m.id,
            resource: p.resource,
            node,
            tty: opts.tty,
            size: opts.size,
            argv: opts.argv ?? [],
            timeoutMs: opts.timeoutMs ?? 0,
          },
        },
      });
      for await (const m of input) {
        if ("stdin" in m) yield create(pb.ShellRequestSchema, { in: { case: "stdin", value: m.stdin } });
        else if ("resize" in m) yield create(pb.ShellRequestSchema, { in: { case: "resize", value: m.resize } });
        else yield create(pb.ShellRequestSchema, { in: { case: "eof", value: true } });
      }
    }
    const it = p.client.shell(requests(), { signal: opts.signal })[Symbol.asyncIterator]();
    // Refusals throw from the first step of what is returned (the caller is already sending input).
    return (async function* () {
      yield* execOutput(it, await facilityCall(() => it.next()), "shell");
    })();
  }

  /** Pick up undelivered work after a restart. */
  async resume(): Promise<void> {
    for (const kv of await this.store.range(mzKeys.all())) this.kick(kv.key, 0);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private async client(facility: string): Promise<FacilityClient> {
    const f = await this.facility(facility);
    if (!f) throw new Error(`facility '${facility}' is no longer registered`);
    return this.opts.connect(f.value);
  }

  /** Compare-and-swap a record; returns it as stored afterwards (undefined when there is none). */
  private async update(
    key: string,
    change: (m: MaterializationRecord) => MaterializationRecord | undefined,
  ): Promise<MaterializationRecord | undefined> {
    const r = await updateJSON<MaterializationRecord>(
      this.store,
      key,
      (cur) => {
        const next = cur && change(cur);
        return next && { ...next, updated: new Date().toISOString() };
      },
      { what: `materialization ${key.slice(mzKeys.all().length)}` },
    );
    return r.value; // as written, or as it is when there was nothing to change
  }

  /** Schedule background work on one materialization; timers never block callers. */
  private kick(key: string, delayMs: number): void {
    if (this.closed) return;
    const prev = this.timers.get(key);
    if (prev) clearTimeout(prev);
    const t = setTimeout(() => {
      this.timers.delete(key);
      void this.work(key);
    }, delayMs);
    t.unref();
    this.timers.set(key, t);
  }

  private async work(key: string): Promise<void> {
    if (this.working.has(key) || this.closed) return this.kick(key, 200);
    this.working.add(key);
    try {
      const cur = await this.read<MaterializationRecord>(key);
      if (!cur) return;
      const m = cur.value;
      const now = Date.now();
      let next = Number.POSITIVE_INFINITY;
      const results = new Map<string, Partial<FacilityPart> | "gone">();
      await Promise.all(
        m.facilities.map(async (part) => {
          if (part.nextAttempt && Date.parse(part.nextAttempt) > now) {
            next = Math.min(next, Date.parse(part.nextAttempt) - now);
            return;
          }
          try {
            const outcome = await this.deliver(m, part);
            results.set(part.facility, outcome);
            if (outcome !== "gone" && part.want === "dematerialize") next = Math.min(next, 1000);
          } catch (err) {
            const attempts = part.attempts + 1;
            const wait = Math.min(this.maxBackoff, this.backoff * 2 ** (attempts - 1));
            next = Math.min(next, wait);
            const message = (err as Error).message;
            this.opts.log?.(`materialize ${m.id} on ${part.facility}: attempt ${attempts} failed: ${message}`);
            results.set(part.facility, {
              attempts,
              lastError: message,
              nextAttempt: new Date(Date.now() + wait).toISOString(),
            });
          }
        }),
      );
      const giveUp =
        m.state === "dematerializing" && m.dematerializeAt && Date.now() - Date.parse(m.dematerializeAt) > this.giveUp;
      const saved = await this.update(key, (r) => {
        if (r.state !== m.state) return undefined; // changed meanwhile (dematerialize asked): the next round handles it
        const facilities = r.facilities
          .map((f) => {
            const res = results.get(f.facility);
            return res === "gone" ? undefined : res ? { ...f, ...res } : f;
          })
          .filter((f): f is FacilityPart => f !== undefined);
        return { ...r, facilities };
      });
      if (
        saved &&
        saved.state === m.state &&
        m.state === "dematerializing" &&
        (saved.facilities.length === 0 || giveUp)
      ) {
        if (giveUp && saved.facilities.length) {
          await this.store.put(
            mzKeys.orphan(saved.id),
            JSON.stringify({ ...saved, orphaned: new Date().toISOString() }),
          );
          this.opts.log?.(
            `dematerialize ${saved.id}: gave up on ${saved.facilities.map((f) => f.facility).join(", ")}`,
          );
        }
        await this.store.txn({
          compare: [],
          success: [{ op: "delete", key }, ...deletePlan(saved.project, saved.experiment, saved.realization)],
        });
        return;
      }
      if (saved && saved.state !== "dematerializing" && saved.facilities.every((f) => f.delivered)) {
        if (!(await this.joinGateways(key, saved).catch(() => false))) next = Math.min(next, 1000);
      }
      const latest = await this.read<MaterializationRecord>(key);
      if (latest && latest.value.state !== m.state) next = 0;
      if (Number.isFinite(next)) this.kick(key, next);
    } catch (err) {
      this.opts.log?.(`materialization ${key}: ${(err as Error).message}`);
      this.kick(key, this.backoff);
    } finally {
      this.working.delete(key);
    }
  }

  /**
   * One reconcile step for one facility: observe it when the step depends on
   * what it holds (reconcile.ts), then act. Returns the changes to the
   * facility's part of the record, or "gone" when the portal is done with it.
   */
  private async deliver(m: MaterializationRecord, part: FacilityPart): Promise<Partial<FacilityPart> | "gone"> {
    const facility = await this.facility(part.facility);
    if (!facility) {
      if (part.want === "dematerialize") return "gone"; // nothing left to tell
      throw new Error(`facility '${part.facility}' is no longer registered`);
    }
    const client = this.opts.connect(facility.value);
    const call = { timeoutMs: this.timeout };
    const observed = needsObservation(part)
      ? mzStatusName((await client.status({ mzid: m.id, resources: part.resources }, call)).status)
      : undefined;
    const delivered = { delivered: true, lastError: undefined, nextAttempt: undefined };
    switch (nextStep(part, observed)) {
      case "done":
      case "wait":
        return {};
      case "adopt":
        return delivered;
      case "materialize": {
        const fragments = (await this.fragmentsFor(m, part.facility)).map(fragmentToPb);
        const inc = await client.notifyIncoming({ mzid: m.id, resources: part.resources }, call);
        if (inc.errors.length) throw new Error(inc.errors.map((e) => e.message).join("; "));
        const r = await client.materialize({ mzid: m.id, fragments }, call);
        if (r.errors.length) {
          throw new Error(
            `${r.errors.length} fragments refused: ${r.errors
              .slice(0, 3)
              .map((e) => e.message)
              .join("; ")}`,
          );
        }
        // Its gateways are made anew: the peers' ends are handed again.
        return { ...delivered, gatewayPeers: undefined };
      }
      case "dematerialize": {
        // Fragments let a facility that lost its records still tear down; without them it uses its own.
        const fragments = (await this.fragmentsFor(m, part.facility).catch(() => [])).map(fragmentToPb);
        const r = await client.dematerialize({ mzid: m.id, fragments }, call);
        if (r.errors.length) throw new Error(r.errors.map((e) => e.message).join("; "));
        return delivered;
      }
      case "release":
        await client.notifyTeardown({ mzid: m.id, resources: part.resources }, call);
        return "gone";
    }
  }

  /**
   * Hand every facility of a materialization across facilities its peers'
   * gateway ends, once each has reported its own (gateways.ts). True when
   * every facility has them (or nothing crosses).
   */
  private async joinGateways(key: string, m: MaterializationRecord): Promise<boolean> {
    const plan = await this.planOf(m);
    const handed = (facility: string) => m.facilities.find((f) => f.facility === facility)?.gatewayPeers;
    // Kept in the record (not in memory): a restarted portal knows what it handed.
    if (gatewaysHanded(plan, handed)) return true;
    const needs = gatewayNeeds(plan);
    const call = { timeoutMs: this.timeout };
    const clients = new Map<string, FacilityClient>();
    const ends = new Map<string, pb.GatewayEnd[]>();
    for (const part of m.facilities) {
      const f = await this.facility(part.facility);
      if (!f) return false;
      const client = this.opts.connect(f.value);
      clients.set(part.facility, client);
      ends.set(part.facility, (await client.status({ mzid: m.id, resources: part.resources }, call)).gateways);
    }
    const { handovers, missing } = gatewayHandovers(plan, ends);
    const given = new Map<string, GatewayEndSpec[]>();
    for (const h of handovers) {
      if (sameEnds(handed(h.facility), h.peers)) continue;
      await clients.get(h.facility)?.gatewayPeers({ mzid: m.id, resource: h.resource, peers: h.peers }, call);
      given.set(h.facility, h.peers);
    }
    if (given.size)
      await this.update(key, (r) =>
        r.created !== m.created || r.state !== m.state
          ? undefined
          : {
              ...r,
              facilities: r.facilities.map((f) =>
                given.has(f.facility) ? { ...f, gatewayPeers: given.get(f.facility) } : f,
              ),
            },
      );
    if (missing.length || handovers.length < needs.size) return false;
    this.opts.log?.(`materialize ${m.id}: gateways joined (${handovers.map((h) => h.facility).join(", ")})`);
    return true;
  }

  /** One facility's fragments from the stored plan. */
  private async fragmentsFor(m: MaterializationRecord, facility: string) {
    const part = (await this.planOf(m)).facilities.find((f) => f.facility === facility);
    if (!part) throw new Error(`the plan of ${m.id} has no part for facility '${facility}'`);
    return part.fragments;
  }
}

/**
 * A facility's exec or shell stream as the portal's output: what the node
 * wrote as it comes, then the exit code; the facility's errors as the portal's.
 */
async function* execOutput(
  it: AsyncIterator<pb.ExecResponse | pb.ShellResponse>,
  first: IteratorResult<pb.ExecResponse | pb.ShellResponse>,
  what: "command" | "shell",
): AsyncGenerator<ExecOutput> {
  for (let r = first; !r.done; r = await facilityCall(() => it.next())) {
    const o = r.value.out;
    if (o.case === "stdout") yield { stdout: o.value };
    else if (o.case === "stderr") yield { stderr: o.value };
    else if (o.case === "exitCode") {
      yield { exit: o.value };
      return;
    }
  }
  throw new Error(`the facility ended the ${what}'s output without an exit code`);
}

/** A node or link the plan does not have, with the ones it has. */
function noSuch(m: MaterializationRecord, plan: MaterializationPlan, kind: "node" | "link", name: string): PortalError {
  const known = planNames(plan, kind).join(", ") || "none";
  return new PortalError("not_found", `${m.id} has no ${kind} '${name}' (${kind}s: ${known})`);
}

/** A facility's refusal as the portal's error: what was wrong and what to do. */
/** The project's members as node accounts (foundry installs them): uids, the project's gid, public keys. */
async function nodeAccounts(
  store: Store,
  project: string,
  mergeKeyOf?: (user: string, uid: number) => Promise<string | undefined>,
): Promise<NodeAccounts> {
  return {
    project,
    gid: await unixId(store, idKeys.project(project)),
    users: await projectAccounts(store, project, mergeKeyOf),
  };
}

/** The plan with the accounts on every infrapod (each facility's foundry serves them to its nodes). */
function withAccounts(plan: MaterializationPlan, accounts: NodeAccounts): MaterializationPlan {
  return {
    ...plan,
    facilities: plan.facilities.map((fp) => ({
      ...fp,
      fragments: fp.fragments.map((f) =>
        f.op === "infrapod.setup" ? { ...f, infrapod: { ...f.infrapod, accounts } } : f,
      ),
    })),
  };
}

async function facilityCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof ConnectError)) throw err;
    switch (err.code) {
      case Code.NotFound:
        throw new PortalError("not_found", err.rawMessage);
      case Code.FailedPrecondition:
        throw new PortalError("conflict", err.rawMessage);
      case Code.InvalidArgument:
        throw new PortalError("bad_request", err.rawMessage);
      case Code.Unimplemented:
        throw new PortalError("unprocessable", err.rawMessage);
      case Code.Unavailable:
      case Code.DeadlineExceeded:
        throw new PortalError("internal", `the facility did not answer: ${err.rawMessage}`);
      default:
        throw new PortalError("internal", `the facility failed: ${err.rawMessage}`);
    }
  }
}

function overall(m: MaterializationRecord, fs: FacilityStatus[], gatewaysJoined: boolean): string {
  if (m.state === "dematerializing") return "dematerializing";
  if (fs.some((f) => f.status === "error" || f.status === "unreachable" || (f.status === "undelivered" && f.error))) {
    return "error";
  }
  if (fs.length && fs.every((f) => f.status === "active") && gatewaysJoined) return "active";
  return "materializing";
}

/** A node's profile from its facility's status, when it reported one. */
function profileOf(p: pb.NodeProfile | undefined): { profile?: NodeProfile } {
  const profile = nodeProfileFromPb(p);
  return profile ? { profile } : {};
}
