/**
 * Action kinds: one table, one vocabulary. A kind is named as the fragment op
 * it comes from (`node.setup`, `link.create`, `emulation.setup`, …; the
 * infrapod's one `infrapod.setup` fragment becomes three staged kinds,
 * `infrapod.enclave`, `.services`, `.entries`); its backend method is the same
 * name in camel case (`nodeSetup`, `emulationSetup`). For each kind the table
 * says what it does (`do`), which action undoes it at teardown (`undo`) and the
 * node states it drives through (`node`). Rex dispatches through it; the
 * teardown DAG is built from `undo`.
 */
import type { ActionContext, Backend, NodeSetupOutcome, NodeState } from "./backend.ts";
import type { ActionKind, ActionSpec, MzInfo } from "./task.ts";

/** The spec of one kind (some spec shapes serve several kinds). */
type SpecOf<K extends ActionKind> = ActionSpec extends infer S
  ? S extends { kind: infer Kinds }
    ? K extends Kinds
      ? S & { kind: K }
      : never
    : never
  : never;

export interface ActionKindDef<K extends ActionKind> {
  /** Bring the target to the state the spec describes (idempotent); facts to merge into the materialization record. */
  do(backend: Backend, spec: SpecOf<K>, ctx: ActionContext): Promise<Partial<MzInfo> | undefined>;
  /** The teardown action that undoes this one; absent for kinds that are undone with another (or are teardown). */
  undo?: (spec: SpecOf<K>) => ActionSpec;
  /** The node states the action drives through: current during the call, and after it. */
  node?: { during: NodeState; target: NodeState };
}

const none = async (p: Promise<unknown>) => {
  await p;
  return undefined;
};

/** The profile a node's setup reported, as a fact of the materialization record (merged by node: rex). */
function profileFacts(node: string, r: NodeSetupOutcome): Partial<MzInfo> | undefined {
  if (!r?.profile && !r?.control) return undefined;
  return {
    ...(r.profile ? { profiles: { [node]: r.profile } } : {}),
    ...(r.control ? { controls: { [node]: r.control } } : {}),
  };
}

export const ACTIONS: { [K in ActionKind]: ActionKindDef<K> } = {
  "infrapod.enclave": {
    do: async (b, s, ctx) => {
      const status = await b.infrapodEnclave(s.infrapod, ctx);
      return {
        infrapod: { server: s.infrapod.server, serviceAddress: status.serviceAddress, infranet: s.infrapod.infranet },
        ...(status.gateways?.length ? { gateways: Object.fromEntries(status.gateways.map((g) => [g.peer, g])) } : {}),
      };
    },
    undo: (s) => ({ kind: "infrapod.destroy", infrapod: s.infrapod }),
  },
  "infrapod.services": { do: (b, s, ctx) => none(b.infrapodServices(s.infrapod, ctx)) },
  "infrapod.entries": { do: (b, s, ctx) => none(b.infrapodEntries(s.infrapod, s.entries, ctx)) },
  "infrapod.destroy": { do: (b, s, ctx) => none(b.infrapodDestroy(s.infrapod, ctx)) },
  "node.setup": {
    do: async (b, s, ctx) => profileFacts(s.node.node, await b.nodeSetup(s.node, ctx)),
    undo: (s) => ({ kind: "node.recycle", node: s.node }),
    node: { during: "setup", target: "ready" },
  },
  "node.reset": {
    do: async (b, s, ctx) => profileFacts(s.node.node, await b.nodeReset(s.node, ctx)),
    undo: (s) => ({ kind: "node.recycle", node: s.node }),
    node: { during: "setup", target: "ready" },
  },
  "node.recycle": {
    do: (b, s, ctx) => none(b.nodeRecycle(s.node, ctx)),
    node: { during: "setup", target: "clean" },
  },
  "node.power": { do: (b, s, ctx) => none(b.nodePower(s.resource, s.power, ctx)) },
  "link.create": {
    do: async (b, s, ctx) => {
      const r = await b.linkCreate(s.link, ctx);
      return r?.gateways?.length ? { gateways: Object.fromEntries(r.gateways.map((g) => [g.peer, g])) } : undefined;
    },
    undo: (s) => ({ kind: "link.destroy", link: s.link }),
  },
  "link.destroy": { do: (b, s, ctx) => none(b.linkDestroy(s.link, ctx)) },
  "emulation.setup": {
    do: (b, s, ctx) => none(b.emulationSetup(s.emulation, ctx)),
    undo: (s) => ({ kind: "emulation.destroy", emulation: s.emulation }),
  },
  "emulation.destroy": { do: (b, s, ctx) => none(b.emulationDestroy(s.emulation, ctx)) },
};

function defOf(spec: ActionSpec): ActionKindDef<ActionKind> {
  return ACTIONS[spec.kind] as ActionKindDef<ActionKind>;
}

/** Perform an action through its kind's `do`. */
export function performAction(backend: Backend, spec: ActionSpec, ctx: ActionContext) {
  return defOf(spec).do(backend, spec as never, ctx);
}

/** The teardown action that undoes a setup action, if its kind has one. */
export function undoAction(spec: ActionSpec): ActionSpec | undefined {
  return defOf(spec).undo?.(spec as never);
}

/** Which node states an action drives through: Clean → Setup → Ready, and back. */
export function nodeTransition(spec: ActionSpec): { during: NodeState; target: NodeState } | undefined {
  return defOf(spec).node;
}

/** Kinds stored under an earlier name by facilities before the vocabulary was one. */
const RENAMED: Record<string, ActionKind> = { "emulation.create": "emulation.setup" };

/** An action spec as stored (JSON), with an earlier kind name read as today's. */
export function parseActionSpec(json: string): ActionSpec {
  const spec = JSON.parse(json) as ActionSpec;
  const now = RENAMED[spec.kind];
  return now ? ({ ...spec, kind: now } as ActionSpec) : spec;
}
