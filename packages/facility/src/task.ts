/**
 * The task model: a materialization's work as a DAG of tasks. A task has stages
 * run in order; a stage has actions run in parallel. Tasks depend on other tasks
 * of the same materialization by id. All of it lives in the store, one key per
 * task and per action once claimed (until then its spec chunk implies it:
 * impliedAction), so rex workers can claim single actions by compare-and-swap.
 */
import type { ActionState, MzStatus } from "@merge/materialize";
import type {
  EmulationSpec,
  GatewayEndSpec,
  InfranetEntry,
  InfrapodSpec,
  LinkSpec,
  MzId,
  NodeControlReport,
  NodeProfileReport,
  NodeSpec,
  NodeState,
  PowerAction,
} from "./backend.ts";

export type { ActionState, MzStatus } from "@merge/materialize";

export type ActionSpec =
  | { kind: "infrapod.enclave" | "infrapod.services" | "infrapod.destroy"; infrapod: InfrapodSpec }
  | { kind: "infrapod.entries"; infrapod: InfrapodSpec; entries: InfranetEntry[] }
  | { kind: "node.setup" | "node.recycle" | "node.reset"; node: NodeSpec }
  | { kind: "node.power"; resource: string; power: PowerAction }
  | { kind: "link.create" | "link.destroy"; link: LinkSpec }
  | { kind: "emulation.setup" | "emulation.destroy"; emulation: EmulationSpec };

export type ActionKind = ActionSpec["kind"];

export interface Action {
  mzid: MzId;
  task: string;
  stage: number;
  id: string;
  spec: ActionSpec;
  state: ActionState;
  /** Skipped by rex and treated as done for stages and dependencies. */
  masked: boolean;
  /** Times rex has claimed it. */
  attempts: number;
  error?: string;
  /** Who completed it: a rex worker id, or `manual`. */
  completedBy?: string;
  /** ISO time of the last state change. */
  updated: string;
}

export interface Task {
  mzid: MzId;
  id: string;
  /** Materialize or teardown: teardown tasks replace setup tasks on dematerialize. */
  phase: "setup" | "teardown";
  /** Ids of tasks (same materialization) that must be done first. */
  deps: string[];
  stages: number;
  /** What the task is for, for operators. */
  description: string;
  /**
   * How many actions the task has, and when its DAG was written: an action
   * with no state key is pending, untried since then (see impliedAction).
   * Absent in tasks stored before actions could be implied (each had a key).
   */
  actions?: number;
  written?: string;
}

/** A materialization as the facility records it. */
export interface MzInfo {
  mzid: MzId;
  vindex: number;
  phase: "incoming" | "materializing" | "dematerializing";
  /** Infrapod service address, once the enclave exists. */
  infrapod?: { server: string; serviceAddress?: string; infranet: InfrapodSpec["infranet"] };
  /** `state`: the node's state id (see nodeStateId); absent in records written before it existed (= resource). */
  nodes: { node: string; resource: string; state?: string; image?: string; address?: string }[];
  links: { link: string; kind: string; tags: { vlan?: number; vni?: number }[]; emulated: boolean }[];
  created: string;
  /** What each virtual node got, by node name, as its setup reported it (node status). */
  profiles?: Record<string, NodeProfileReport>;
  /** This facility's gateway ends (public parts only), by peer facility, as its external links reported them. */
  gateways?: Record<string, GatewayEndSpec>;
  /** How each node on a shared host is reached through its host's NAT, by node name (node status). */
  controls?: Record<string, NodeControlReport>;
}

/**
 * Whose state machine a node action drives: the machine for a physical node;
 * for a virtual node its own (hypervisor, materialization, node), so the VMs a
 * hypervisor carries, of one materialization or of several, each have theirs.
 */
export function nodeStateId(n: { resource: string; mzid: MzId; node: string; mode: "physical" | "virtual" }): string {
  return n.mode === "virtual" ? `${n.resource}/${n.mzid}/${n.node}` : n.resource;
}

/** The facility's record of one node's state machine (keyed by its state id). */
export interface NodeRecord {
  /** The state id: the resource for a physical node, `resource/mzid/node` for a virtual one. */
  resource: string;
  current: NodeState;
  target: NodeState;
  /** The materialization the node is in or going to. */
  mzid?: MzId;
  node?: string;
  /** Key of the last action that drove the node (in flight when it has a claim). */
  action?: string;
  updated: string;
}

/**
 * The state of an action its DAG wrote no key for: the driver stores only
 * the spec chunks (spec-chunks.ts), and an action is pending with no tries
 * until its first claim creates its key (comparing it absent, which keeps two
 * claims exclusive). Every reader of actions fills these in.
 */
export function impliedAction(a: Pick<Action, "mzid" | "task" | "stage" | "id">, written = ""): StoredAction {
  return {
    mzid: a.mzid,
    task: a.task,
    stage: a.stage,
    id: a.id,
    state: "pending",
    masked: false,
    attempts: 0,
    updated: written,
  };
}

/** Actions of a task that have no key yet (pending: impliedAction), given how many have one. */
export function impliedCount(task: Pick<Task, "actions">, keyed: number): number {
  return Math.max(0, (task.actions ?? 0) - keyed);
}

/**
 * A rex worker's claim on a batch of actions of one materialization, under
 * `keys.claim(mzid, nonce)` on the worker's lease. The claim transaction also
 * rewrites each action (its attempts), comparing its revision, or creates it,
 * comparing it absent: that is what makes two claims of one action exclusive.
 */
export interface Claim {
  worker: string;
  /** Unique per claim, so a worker that lost a claim cannot complete a later one. */
  nonce: string;
  at: string;
  /** The actions claimed: their keys below `keys.actions(mzid)` (`task/stage/id`). */
  actions: string[];
}

/** Store keys. Ids are URI-encoded so they can hold any character but `/` separates levels. */
export const ROOT = "/cogs/";
/** Action specs: big, written once, read only by the worker that runs the action; kept out of rex's watch. */
export const SPEC_ROOT = "/cogspec/";
const enc = encodeURIComponent;
/** What a rex worker says of itself under `keys.worker`. */
export interface WorkerRecord {
  id: string;
  pid: number;
  host: string;
  started: string;
  concurrency: number;
}

export const keys = {
  mzPrefix: `${ROOT}mz/`,
  claimPrefix: `${ROOT}claim/`,
  nodePrefix: `${ROOT}nodes/`,
  vindexPrefix: `${ROOT}vindex/`,
  mz: (mzid: MzId) => `${ROOT}mz/${enc(mzid)}/`,
  info: (mzid: MzId) => `${ROOT}mz/${enc(mzid)}/info`,
  task: (mzid: MzId, task: string) => `${ROOT}mz/${enc(mzid)}/task/${enc(task)}`,
  tasks: (mzid: MzId) => `${ROOT}mz/${enc(mzid)}/task/`,
  actions: (mzid: MzId) => `${ROOT}mz/${enc(mzid)}/action/`,
  action: (a: Pick<Action, "mzid" | "task" | "stage" | "id">) =>
    `${ROOT}mz/${enc(a.mzid)}/action/${enc(a.task)}/${String(a.stage).padStart(3, "0")}/${enc(a.id)}`,
  /**
   * What the actions do: written once, apart from their small, often
   * rewritten state, outside `ROOT` so that rex's watch does not carry them,
   * in compressed chunks per stage (spec-chunks.ts).
   */
  specs: (mzid: MzId) => `${SPEC_ROOT}${enc(mzid)}/`,
  /** A task's spec chunks: what a rex worker reads when the task appears. */
  taskSpecs: (mzid: MzId, task: string) => `${SPEC_ROOT}${enc(mzid)}/${enc(task)}/`,
  stageSpecs: (a: Pick<Action, "mzid" | "task" | "stage">) =>
    `${SPEC_ROOT}${enc(a.mzid)}/${enc(a.task)}/${String(a.stage).padStart(3, "0")}/`,
  specChunk: (stagePrefix: string, n: number) => `${stagePrefix}${String(n).padStart(4, "0")}`,
  /** The materialization, task and stage of a spec chunk key (undefined for any other key). */
  parseSpecChunk: (key: string): Pick<Action, "mzid" | "task" | "stage"> | undefined => {
    if (!key.startsWith(SPEC_ROOT)) return undefined;
    const p = key.slice(SPEC_ROOT.length).split("/");
    if (p.length !== 4 || !/^\d{3}$/.test(p[2]!)) return undefined;
    return { mzid: decodeURIComponent(p[0]!), task: decodeURIComponent(p[1]!), stage: Number(p[2]) };
  },
  /**
   * Where each action's spec was kept, one key each and inside `ROOT`, before
   * specs left it: DAGs stored then are read from there (rex's watch brings
   * them), and deleted with the rest.
   */
  legacySpecs: (mzid: MzId) => `${ROOT}mz/${enc(mzid)}/spec/`,
  /** The action (state) key for a legacy spec key. */
  actionOfSpec: (specKey: string) => specKey.replace(/^(.*?\/mz\/[^/]+\/)spec\//, "$1action/"),
  /** A claim of a batch of the materialization's actions (see Claim). */
  claim: (mzid: MzId, nonce: string) => `${ROOT}claim/${enc(mzid)}/${enc(nonce)}`,
  /** Every claim on the materialization's actions. */
  claims: (mzid: MzId) => `${ROOT}claim/${enc(mzid)}/`,
  node: (resource: string) => `${ROOT}nodes/${enc(resource)}`,
  /** The harbor's spec (harbor.ts), written by the facility at start: which testbed nodes it holds. */
  harbor: () => `${ROOT}harbor`,
  /** A materialized node's power state (node-ops.ts); goes with the materialization's records. */
  powers: (mzid: MzId) => `${ROOT}mz/${enc(mzid)}/power/`,
  power: (mzid: MzId, node: string) => `${ROOT}mz/${enc(mzid)}/power/${enc(node)}`,
  /** An emulated link's parameters as last changed at runtime (node-ops.ts). */
  emulations: (mzid: MzId) => `${ROOT}mz/${enc(mzid)}/emulation/`,
  emulation: (mzid: MzId, link: string) => `${ROOT}mz/${enc(mzid)}/emulation/${enc(link)}`,
  /** A running rex worker, on its lease (gone when it stops or dies): what `cog health` lists. */
  worker: (id: string) => `${ROOT}workers/${enc(id)}`,
  workers: `${ROOT}workers/`,
  vindex: (n: number) => `${ROOT}vindex/${String(n).padStart(6, "0")}`,
};

export type ParsedKey =
  | { type: "info"; mzid: MzId }
  | { type: "task"; mzid: MzId; task: string }
  | { type: "action" | "spec"; mzid: MzId; task: string; stage: number; id: string; key: string }
  | { type: "claim"; mzid: MzId }
  | { type: "node"; resource: string }
  | { type: "other" };

/** decodeURIComponent, skipped for the common id with nothing encoded (every rex worker parses every key it watches). */
const dec = (s: string) => (s.includes("%") ? decodeURIComponent(s) : s);

export function parseKey(key: string): ParsedKey {
  if (key.startsWith(keys.claimPrefix))
    return { type: "claim", mzid: dec(key.slice(keys.claimPrefix.length).split("/")[0] ?? "") };
  if (key.startsWith(keys.nodePrefix)) return { type: "node", resource: dec(key.slice(keys.nodePrefix.length)) };
  if (!key.startsWith(keys.mzPrefix)) return { type: "other" };
  // Cut at each '/' by hand, not split: every rex worker parses every key it watches, most of them actions.
  const m = keys.mzPrefix.length;
  const a = key.indexOf("/", m);
  if (a < 0) return { type: "other" };
  const mzid = dec(key.slice(m, a));
  const b = key.indexOf("/", a + 1);
  if (b < 0) return key.endsWith("/info") && a + 5 === key.length ? { type: "info", mzid } : { type: "other" };
  const kind = key.slice(a + 1, b);
  const c = key.indexOf("/", b + 1);
  if (kind === "task") return c < 0 ? { type: "task", mzid, task: dec(key.slice(b + 1)) } : { type: "other" };
  if (kind !== "action" && kind !== "spec") return { type: "other" };
  const d = c < 0 ? -1 : key.indexOf("/", c + 1);
  if (d < 0 || key.indexOf("/", d + 1) >= 0) return { type: "other" };
  return {
    type: kind,
    mzid,
    task: dec(key.slice(b + 1, c)),
    stage: Number(key.slice(c + 1, d)),
    id: dec(key.slice(d + 1)),
    key,
  };
}

/** An action counts as done for stage barriers and dependencies. */
export function actionDone(a: Pick<Action, "state" | "masked">): boolean {
  return a.masked || a.state === "complete";
}

export interface MzSummary {
  status: MzStatus;
  actions: number;
  complete: number;
  errors: number;
  masked: number;
}

/** A materialization's status, derived from its actions (never stored, so never stale). */
export function summarize(info: Pick<MzInfo, "phase"> | undefined, actions: Iterable<Action>): MzSummary {
  let n = 0;
  let complete = 0;
  let errors = 0;
  let masked = 0;
  for (const a of actions) {
    n++;
    if (a.masked) masked++;
    else if (a.state === "complete") complete++;
    else if (a.state === "error") errors++;
  }
  const done = complete + masked === n;
  let status: MzStatus;
  if (!info) status = "dematerialized";
  else if (info.phase === "incoming") status = "incoming";
  else if (errors > 0) status = "error";
  else if (info.phase === "dematerializing") status = done ? "dematerialized" : "dematerializing";
  else status = done ? "active" : "materializing";
  return { status, actions: n, complete, errors, masked };
}

/** The resource an action's node state machine concerns, if any. */
export function actionNode(spec: ActionSpec): string | undefined {
  switch (spec.kind) {
    case "node.setup":
    case "node.recycle":
    case "node.reset":
      return nodeStateId(spec.node);
    case "node.power":
      return spec.resource;
    default:
      return undefined;
  }
}

/** A one-line description of what an action does. */
export function actionTarget(spec: ActionSpec): string {
  switch (spec.kind) {
    case "infrapod.enclave":
    case "infrapod.services":
    case "infrapod.destroy":
      return spec.infrapod.server;
    case "infrapod.entries":
      return `${spec.entries.length} entries`;
    case "node.setup":
    case "node.recycle":
    case "node.reset":
      return `${spec.node.node}@${spec.node.resource}`;
    case "node.power":
      return `${spec.resource} ${spec.power}`;
    case "link.create":
    case "link.destroy":
      return spec.link.link;
    case "emulation.setup":
    case "emulation.destroy":
      return `${spec.emulation.emulation}@${spec.emulation.emulator}`;
  }
}

/** An action as stored under its state key: everything but the spec. */
export type StoredAction = Omit<Action, "spec">;

/** The action keys a claim holds (its value as stored under `keys.claim`). */
export function claimedActions(mzid: MzId, claim: Claim): string[] {
  const base = keys.actions(mzid);
  return claim.actions.map((a) => base + a);
}

export function storedAction(a: Action): string {
  const { spec: _spec, ...rest } = a;
  return JSON.stringify(rest);
}
