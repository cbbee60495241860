/**
 * The driver: turns materialization requests into task DAGs in the store. It
 * never executes anything (rex does); every operation is idempotent, so a
 * portal or commander may retry any request.
 */

import type { Fragment } from "@merge/materialize";
import { compareKeys, type KeyValue, type Op, type Store } from "@merge/store";
import { MergeError } from "@merge/xir/errors";
import { parseActionSpec } from "./actions.ts";
import type { EmulationParams, HarborSpec, MzId, NodeState } from "./backend.ts";
import { type Dag, materializeDag, teardownDag } from "./dag.ts";
import { decodeStageChunk, specChunkPuts } from "./spec-chunks.ts";
import {
  type Action,
  type ActionSpec,
  type Claim,
  claimedActions,
  impliedAction,
  keys,
  type MzInfo,
  type MzSummary,
  type NodeRecord,
  nodeStateId,
  parseKey,
  type StoredAction,
  summarize,
  type Task,
} from "./task.ts";

/** etcd refuses transactions with more than 128 operations by default. */
const TXN_OPS = 100;

export class MzIdError extends MergeError<"facility"> {
  constructor(message: string, options?: ErrorOptions) {
    super("facility", "materialization-id", message, options);
  }
}

const MZID = /^[a-z0-9][a-z0-9_-]*\.[a-z0-9][a-z0-9_-]*\.[a-z0-9][a-z0-9_-]*$/;

export function checkMzId(mzid: string): MzId {
  if (!MZID.test(mzid)) {
    throw new MzIdError(
      `materialization id '${mzid}' is not 'realization.experiment.project' (lower-case letters, digits, '-' and '_')`,
    );
  }
  return mzid;
}

export interface MzDetail {
  info?: MzInfo;
  summary: MzSummary;
  tasks: Task[];
  actions: Action[];
  nodes: NodeRecord[];
  /** Power records by node name (node-ops.ts); a ready node without one is on. */
  power: Map<string, { state: string; error?: string }>;
  /** Emulation changed at runtime, by link name (node-ops.ts). */
  emulation: Map<string, EmulationParams>;
}

export async function readJSON<T>(store: Store, key: string): Promise<{ value: T; modRevision: number } | undefined> {
  const kv = await store.get(key);
  return kv ? { value: JSON.parse(kv.value) as T, modRevision: kv.modRevision } : undefined;
}

/** All keys with a prefix, paged (a 1,000-node materialization has thousands of actions). */
export async function rangeAll(store: Store, prefix: string): Promise<KeyValue[]> {
  const out: KeyValue[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.range(prefix, after ? { limit: 1000, after } : { limit: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
    after = page[page.length - 1]!.key;
  }
}

/** Bytes of values in one transaction at most: under etcd's default request limit (1.5 MiB) with room to spare. */
const TXN_BYTES = 1024 * 1024;

/** Unconditional writes in transactions of TXN_OPS (and TXN_BYTES), sent at once (no order among them is needed). */
async function applyOps(store: Store, ops: Op[]): Promise<void> {
  const chunks: Op[][] = [];
  let cur: Op[] = [];
  let bytes = 0;
  for (const op of ops) {
    const size = op.op === "put" ? op.value.length + op.key.length : 0;
    if (cur.length >= TXN_OPS || (cur.length && bytes + size > TXN_BYTES)) {
      chunks.push(cur);
      [cur, bytes] = [[], 0];
    }
    cur.push(op);
    bytes += size;
  }
  if (cur.length) chunks.push(cur);
  await Promise.all(chunks.map((success) => store.txn({ compare: [], success })));
}

/**
 * Store a DAG: its specs first (their transactions at once), then its tasks
 * with the materialization record in one transaction. Rex acts only on a task
 * it has seen, and only under a record in this phase, so it never sees a task
 * whose actions are not all there. No action gets a state key: each is
 * pending until claimed (impliedAction), which spares etcd a write and every
 * rex worker a watch event per action.
 */
async function writeDag(store: Store, dag: Dag, info: MzInfo): Promise<void> {
  await applyOps(store, specChunkPuts(dag.actions));
  const written = new Date().toISOString();
  const counts = new Map<string, number>();
  for (const a of dag.actions) counts.set(a.task, (counts.get(a.task) ?? 0) + 1);
  const tasks = dag.tasks.map(
    (t): Op => ({
      op: "put",
      key: keys.task(info.mzid, t.id),
      value: JSON.stringify({ ...t, actions: counts.get(t.id) ?? 0, written } satisfies Task),
    }),
  );
  const record: Op = { op: "put", key: keys.info(info.mzid), value: JSON.stringify(info) };
  if (tasks.length < TXN_OPS) await store.txn({ compare: [], success: [...tasks, record] });
  else {
    await applyOps(store, tasks);
    await store.txn({ compare: [], success: [record] });
  }
}

export class Driver {
  /**
   * Materialize and dematerialize of one materialization, one at a time: each
   * rewrites its DAG and info record in several steps, and interleaved they
   * could leave setup actions under a dematerializing record, or turn it back
   * to materializing. (One driver process serves a materialization's resources.)
   */
  private readonly changing = new Map<MzId, Promise<unknown>>();

  constructor(readonly store: Store) {}

  private serially<T>(mzid: MzId, f: () => Promise<T>): Promise<T> {
    const prev = this.changing.get(mzid) ?? Promise.resolve();
    const next = prev.then(f, f);
    const settled = next.catch(() => {});
    this.changing.set(mzid, settled);
    void settled.then(() => {
      if (this.changing.get(mzid) === settled) this.changing.delete(mzid);
    });
    return next;
  }

  /** Reserve the materialization's record and a facility-unique vindex. */
  async notifyIncoming(mzid: MzId): Promise<MzInfo> {
    checkMzId(mzid);
    const existing = await readJSON<MzInfo>(this.store, keys.info(mzid));
    if (existing) return existing.value;
    for (let n = 1; ; n++) {
      const info: MzInfo = {
        mzid,
        vindex: n,
        phase: "incoming",
        nodes: [],
        links: [],
        created: new Date().toISOString(),
      };
      const r = await this.store.txn({
        compare: [
          { key: keys.vindex(n), target: "absent" },
          { key: keys.info(mzid), target: "absent" },
        ],
        success: [
          { op: "put", key: keys.vindex(n), value: mzid },
          { op: "put", key: keys.info(mzid), value: JSON.stringify(info) },
        ],
        failure: [{ op: "get", key: keys.info(mzid) }],
      });
      if (r.succeeded) return info;
      const raced = r.gets[0];
      if (raced) return JSON.parse(raced.value) as MzInfo;
    }
  }

  /** Build and store the task DAG. A repeat for a materialization that already has one changes nothing. */
  materialize(mzid: MzId, fragments: Fragment[]): Promise<Dag> {
    return this.serially(mzid, () => this.materializeNow(mzid, fragments));
  }

  private async materializeNow(mzid: MzId, fragments: Fragment[]): Promise<Dag> {
    const info = await this.notifyIncoming(mzid);
    if (info.phase === "dematerializing") {
      throw new MzIdError(`materialization '${mzid}' is being dematerialized; wait until it is gone`);
    }
    const existing = await this.store.range(keys.tasks(mzid), { limit: 1 });
    if (existing.length) return this.readDag(mzid);
    const withIndex = fragments.map((f) => withVindex(f, info.vindex));
    const dag = materializeDag(mzid, withIndex);
    const next: MzInfo = { ...info, phase: "materializing", ...describe(withIndex) };
    await writeDag(this.store, dag, next);
    return dag;
  }

  /**
   * Replace the setup DAG by a teardown DAG. Uses the stored setup actions, or
   * `fragments` when the facility has no record (portal and facility out of sync).
   */
  dematerialize(mzid: MzId, fragments: Fragment[] = []): Promise<Dag> {
    checkMzId(mzid);
    return this.serially(mzid, () => this.dematerializeNow(mzid, fragments));
  }

  private async dematerializeNow(mzid: MzId, fragments: Fragment[]): Promise<Dag> {
    const info = await readJSON<MzInfo>(this.store, keys.info(mzid));
    if (info?.value.phase === "dematerializing") return this.readDag(mzid);
    let setup = (await this.readDag(mzid)).actions;
    let base = info?.value;
    if (!setup.length && fragments.length) {
      base ??= await this.notifyIncoming(mzid);
      setup = materializeDag(
        mzid,
        fragments.map((f) => withVindex(f, base!.vindex)),
      ).actions;
    }
    if (!base) return { tasks: [], actions: [] };
    const dag = teardownDag(mzid, setup);
    await this.store.txn({
      compare: [],
      success: [keys.tasks(mzid), keys.actions(mzid), keys.specs(mzid), keys.legacySpecs(mzid)].map(
        (prefix): Op => ({ op: "deletePrefix", prefix }),
      ),
    });
    await writeDag(this.store, dag, { ...base, phase: "dematerializing" });
    if (!dag.actions.length) await this.notifyTeardown(mzid);
    return dag;
  }

  /** Forget a materialization: its records, claims and vindex. */
  async notifyTeardown(mzid: MzId): Promise<void> {
    checkMzId(mzid);
    await discard(this.store, mzid);
  }

  async readDag(mzid: MzId): Promise<Dag> {
    const tasks: Task[] = [];
    for (const kv of await rangeAll(this.store, keys.tasks(mzid))) tasks.push(JSON.parse(kv.value) as Task);
    return { tasks, actions: (await readActions(this.store, mzid)).map((x) => x.action) };
  }

  async status(mzid: MzId): Promise<MzDetail> {
    checkMzId(mzid);
    const info = await readJSON<MzInfo>(this.store, keys.info(mzid));
    const dag = await this.readDag(mzid);
    const mine = new Set((info?.value.nodes ?? []).map((n) => n.state ?? n.resource));
    const nodes: NodeRecord[] = [];
    if (mine.size > 20) {
      // One range beats a thousand gets.
      for (const kv of await rangeAll(this.store, keys.nodePrefix)) {
        const k = parseKey(kv.key);
        if (k.type === "node" && mine.has(k.resource)) nodes.push(JSON.parse(kv.value) as NodeRecord);
      }
    } else {
      for (const resource of mine) {
        const r = await readJSON<NodeRecord>(this.store, keys.node(resource));
        if (r) nodes.push(r.value);
      }
    }
    const power = new Map<string, { state: string; error?: string }>();
    for (const kv of await rangeAll(this.store, keys.powers(mzid)))
      power.set(decodeURIComponent(kv.key.slice(keys.powers(mzid).length)), JSON.parse(kv.value));
    const emulation = new Map<string, EmulationParams>();
    for (const kv of await rangeAll(this.store, keys.emulations(mzid)))
      emulation.set(decodeURIComponent(kv.key.slice(keys.emulations(mzid).length)), JSON.parse(kv.value));
    return { info: info?.value, summary: summarize(info?.value, dag.actions), ...dag, nodes, power, emulation };
  }

  async list(): Promise<MzInfo[]> {
    const out: MzInfo[] = [];
    for (const kv of await rangeAll(this.store, keys.mzPrefix)) {
      if (parseKey(kv.key).type === "info") out.push(JSON.parse(kv.value) as MzInfo);
    }
    return out;
  }
}

/**
 * A materialization's actions with their specs, in key order; `rev` 0 for an
 * action with no state key yet (pending: impliedAction).
 */
export async function readActions(store: Store, mzid: MzId): Promise<{ key: string; action: Action; rev: number }[]> {
  const written = new Map<string, string>();
  for (const kv of await rangeAll(store, keys.tasks(mzid))) {
    const t = JSON.parse(kv.value) as Task;
    if (t.written) written.set(t.id, t.written);
  }
  const specs = new Map<string, { spec: ActionSpec; implied?: StoredAction }>();
  // A DAG stored before specs left `/cogs/` has them one a key under `legacySpecs` (and every action a key).
  for (const kv of await rangeAll(store, keys.legacySpecs(mzid)))
    specs.set(keys.actionOfSpec(kv.key), { spec: parseActionSpec(kv.value) });
  for (const kv of await rangeAll(store, keys.specs(mzid))) {
    const { stage, specs: chunk } = decodeStageChunk(kv.key, kv.value);
    for (const [id, spec] of Object.entries(chunk)) {
      const a = { ...stage, id };
      specs.set(keys.action(a), { spec: parseActionSpec(spec), implied: impliedAction(a, written.get(a.task)) });
    }
  }
  const out: { key: string; action: Action; rev: number }[] = [];
  for (const kv of await rangeAll(store, keys.actions(mzid))) {
    const s = specs.get(kv.key);
    if (!s) continue;
    out.push({ key: kv.key, action: { ...(JSON.parse(kv.value) as StoredAction), spec: s.spec }, rev: kv.modRevision });
    specs.delete(kv.key);
  }
  for (const [key, s] of specs) if (s.implied) out.push({ key, action: { ...s.implied, spec: s.spec }, rev: 0 });
  return out.sort((a, b) => compareKeys(a.key, b.key));
}

/** Delete everything the facility holds for a materialization; node records keep their state. */
export async function discard(store: Store, mzid: MzId): Promise<void> {
  const info = await readJSON<MzInfo>(store, keys.info(mzid));
  // Specs first: a discard cut short leaves the record, so it is done again (see Rex), never specs nothing points to.
  await store.deletePrefix(keys.specs(mzid));
  await store.deletePrefix(keys.mz(mzid));
  await store.deletePrefix(keys.claims(mzid));
  if (info) {
    await store.txn({
      compare: [{ key: keys.vindex(info.value.vindex), target: "value", op: "==", value: mzid }],
      success: [{ op: "delete", key: keys.vindex(info.value.vindex) }],
    });
  }
}

/** The facility decides kernel-object indexes; whatever the portal sent is replaced. */
function withVindex(f: Fragment, vindex: number): Fragment {
  switch (f.op) {
    case "infrapod.setup":
      return { ...f, infrapod: { ...f.infrapod, vindex } };
    case "link.create":
    case "link.destroy":
      return { ...f, link: { ...f.link, vindex } };
    case "emulation.setup":
      return { ...f, emulation: { ...f.emulation, vindex } };
    default:
      return f;
  }
}

function describe(fragments: Fragment[]): Pick<MzInfo, "nodes" | "links" | "infrapod"> {
  const out: Pick<MzInfo, "nodes" | "links" | "infrapod"> = { nodes: [], links: [] };
  for (const f of fragments) {
    if (f.op === "infrapod.setup") out.infrapod = { server: f.infrapod.server, infranet: f.infrapod.infranet };
    else if (f.op === "node.setup" || f.op === "node.reset") {
      out.nodes.push({
        node: f.node.node,
        resource: f.node.resource,
        state: nodeStateId(f.node),
        image: f.node.image,
        address: f.node.infranet.address,
      });
    } else if (f.op === "link.create") {
      out.links.push({
        link: f.link.link,
        kind: f.link.kind,
        emulated: f.link.emulator !== undefined,
        tags: f.link.endpoints.map((e) => ({ vlan: e.vlan, vni: e.vni })),
      });
    }
  }
  return out;
}

/** A testbed node of the harbor as the facility store tells it: in standby there, or out of it carrying experiment nodes. */
export interface HarborNode {
  resource: string;
  /** Its address on the harbor infranet. */
  address: string;
  state: "standby" | "allocated";
  /** The experiment nodes on it (one for a physical node, a hypervisor's VMs), each in its current state. */
  carrying: { mzid?: MzId; node?: string; current: NodeState; target: NodeState; updated: string }[];
}

/** The harbor the facility brought up (absent when it runs without one) and where each of its nodes is. */
export async function harborNodes(store: Store): Promise<{ name: string; nodes: HarborNode[] } | undefined> {
  const kv = await store.get(keys.harbor());
  if (!kv) return undefined;
  const spec = JSON.parse(kv.value) as HarborSpec;
  // A machine's own record (a physical node) and its virtual nodes' (`resource/mzid/node`, see nodeStateId).
  const carrying = new Map<string, HarborNode["carrying"]>();
  for (const r of await rangeAll(store, keys.nodePrefix)) {
    const n = JSON.parse(r.value) as NodeRecord;
    if (n.current === "clean" && n.target === "clean") continue;
    const machine = n.resource.split("/")[0] as string;
    const on = carrying.get(machine) ?? [];
    on.push({
      ...(n.mzid ? { mzid: n.mzid } : {}),
      ...(n.node ? { node: n.node } : {}),
      current: n.current,
      target: n.target,
      updated: n.updated,
    });
    carrying.set(machine, on);
  }
  const nodes = spec.resources.map((r): HarborNode => {
    const on = carrying.get(r.id) ?? [];
    return { resource: r.id, address: r.address, state: on.length ? "allocated" : "standby", carrying: on };
  });
  return { name: spec.name, nodes };
}

/** Nodes whose current state differs from the target and that no rex worker is driving. */
export async function strayNodes(store: Store): Promise<NodeRecord[]> {
  const claims = new Set<string>();
  for (const kv of await rangeAll(store, keys.claimPrefix)) {
    const k = parseKey(kv.key);
    if (k.type === "claim") for (const a of claimedActions(k.mzid, JSON.parse(kv.value) as Claim)) claims.add(a);
  }
  const out: NodeRecord[] = [];
  for (const kv of await rangeAll(store, keys.nodePrefix)) {
    const n = JSON.parse(kv.value) as NodeRecord;
    const inFlight = n.action !== undefined && claims.has(n.action);
    if (n.current !== n.target && !inFlight) out.push(n);
  }
  return out;
}

export type { NodeState };
