/**
 * Operator interventions on task DAGs (what `cog` does): clear errors so rex
 * retries, complete an action by hand, mask an action so rex skips it. Each is a
 * compare-and-swap on the action, retried if rex wrote it meanwhile.
 */
import { type Store, updateJSON } from "@merge/store";
import { MergeError } from "@merge/xir/errors";
import { nodeTransition } from "./actions.ts";
import type { MzId } from "./backend.ts";
import { rangeAll, readActions } from "./driver.ts";
import {
  type Action,
  impliedCount,
  keys,
  type NodeRecord,
  nodeStateId,
  parseKey,
  type StoredAction,
  type Task,
} from "./task.ts";

export class NoSuchAction extends MergeError<"facility"> {
  constructor(message: string) {
    super("facility", "no-such-action", message);
  }
}

/** Select actions of a materialization: all, one task's, or one action (`task/stage/action` or `task/action`). */
export async function selectActions(
  store: Store,
  mzid: MzId,
  selector?: string,
): Promise<{ key: string; action: Action; rev: number }[]> {
  const out: { key: string; action: Action; rev: number }[] = [];
  for (const x of await readActions(store, mzid)) {
    if (!selector || matches(x.action, selector)) out.push(x);
  }
  if (selector && !out.length) {
    throw new NoSuchAction(
      `materialization ${mzid} has no action matching '${selector}' (use <task>, <task>/<action> or <task>/<stage>/<action>)`,
    );
  }
  return out;
}

function matches(a: Action, selector: string): boolean {
  const p = selector.split("/");
  if (p.length === 1) return a.task === p[0] || a.id === p[0];
  if (p.length === 2) return a.task === p[0] && a.id === p[1];
  return a.task === p[0] && a.stage === Number(p[1]) && a.id === p[2];
}

/**
 * Change an action as read (`read`): one with no key yet (pending, see
 * impliedAction) gets its first, compared absent, so a claim meanwhile wins.
 */
async function update(
  store: Store,
  read: { key: string; action: Action; rev: number },
  change: (a: Action) => Action | undefined,
): Promise<Action | undefined> {
  const { key, action } = read;
  const { spec, ...implied } = action;
  const r = await updateJSON<StoredAction>(
    store,
    key,
    (cur) => {
      const base = cur ?? (read.rev === 0 ? implied : undefined);
      const next = base && change({ ...base, spec });
      if (!next) return undefined;
      const { spec: _spec, ...stored } = next;
      return stored;
    },
    { what: `action ${key}` },
  );
  return r.written && r.value ? { ...r.value, spec } : undefined;
}

const now = () => new Date().toISOString();

/** Put actions in error back to pending; rex retries them. Returns the actions cleared. */
export async function clearErrors(store: Store, mzid: MzId, selector?: string): Promise<Action[]> {
  const out: Action[] = [];
  for (const read of await selectActions(store, mzid, selector)) {
    const a = await update(store, read, (a) =>
      a.state === "error" ? { ...a, state: "pending", error: undefined, updated: now() } : undefined,
    );
    if (a) out.push(a);
  }
  return out;
}

/** Mark actions complete by hand, so dependent stages and tasks go ahead. Node records follow. */
export async function completeByHand(store: Store, mzid: MzId, selector: string): Promise<Action[]> {
  const out: Action[] = [];
  for (const read of await selectActions(store, mzid, selector)) {
    const { key } = read;
    const a = await update(store, read, (a) =>
      a.state === "complete"
        ? undefined
        : { ...a, state: "complete", error: undefined, completedBy: "manual", updated: now() },
    );
    if (!a) continue;
    out.push(a);
    const t = nodeTransition(a.spec);
    if (t && "node" in a.spec) {
      const rec: NodeRecord = {
        resource: nodeStateId(a.spec.node),
        current: t.target,
        target: t.target,
        ...(t.target === "clean" ? {} : { mzid, node: a.spec.node.node }),
        action: key,
        updated: now(),
      };
      await store.put(keys.node(rec.resource), JSON.stringify(rec));
    }
  }
  return out;
}

/** Mask (or unmask) actions: rex skips masked actions and treats them as done. */
export async function mask(store: Store, mzid: MzId, selector: string, masked = true): Promise<Action[]> {
  const out: Action[] = [];
  for (const read of await selectActions(store, mzid, selector)) {
    const a = await update(store, read, (a) => (a.masked === masked ? undefined : { ...a, masked, updated: now() }));
    if (a) out.push(a);
  }
  return out;
}

export interface PendingTask {
  task: Task;
  pending: number;
  errors: number;
  total: number;
}

/** Tasks with actions not yet done, across all materializations (or one). */
export async function pendingTasks(store: Store, mzid?: MzId): Promise<PendingTask[]> {
  const prefix = mzid ? keys.mz(mzid) : keys.mzPrefix;
  const tasks = new Map<string, PendingTask>();
  const actions: StoredAction[] = [];
  for (const kv of await rangeAll(store, prefix)) {
    const k = parseKey(kv.key);
    if (k.type === "task") {
      const task = JSON.parse(kv.value) as Task;
      tasks.set(`${task.mzid}/${task.id}`, { task, pending: 0, errors: 0, total: 0 });
    } else if (k.type === "action") actions.push(JSON.parse(kv.value) as StoredAction);
  }
  for (const a of actions) {
    const t = tasks.get(`${a.mzid}/${a.task}`);
    if (!t) continue;
    t.total++;
    if (a.masked || a.state === "complete") continue;
    if (a.state === "error") t.errors++;
    else t.pending++;
  }
  // Actions with no key yet are pending (impliedAction).
  for (const t of tasks.values()) {
    const implied = impliedCount(t.task, t.total);
    t.total += implied;
    t.pending += implied;
  }
  return [...tasks.values()].filter((t) => t.pending + t.errors > 0);
}
