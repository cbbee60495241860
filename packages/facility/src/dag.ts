/**
 * Fragments → task DAG (pure). Materialize:
 *
 *   infrapod:  [enclave] → [services] → [DHCP/DNS entries]
 *   network:   [link create …] → [emulation setup …]       (after infrapod)
 *   nodes:     [node setup/recycle/reset/power …]           (after infrapod)
 *
 * Dematerialize (teardown) reverses it: nodes recycle and links/emulations are
 * destroyed in parallel, then the infrapod goes.
 */

import type { Fragment } from "@merge/materialize";
import { MergeError } from "@merge/xir/errors";
import { undoAction } from "./actions.ts";
import type { MzId, NodeSpec } from "./backend.ts";
import { type Action, type ActionSpec, nodeStateId, type Task } from "./task.ts";

export interface Dag {
  tasks: Task[];
  actions: Action[];
}

export class FragmentError extends MergeError<"facility"> {
  constructor(message: string, options?: ErrorOptions) {
    super("facility", "fragment", message, options);
  }
}

function action(mzid: MzId, task: string, stage: number, id: string, spec: ActionSpec, now: string): Action {
  return { mzid, task, stage, id, spec, state: "pending", masked: false, attempts: 0, updated: now };
}

/** Checks the fragments belong to `mzid` and are not duplicated; throws FragmentError naming the fragment. */
function check(mzid: MzId, fragments: Fragment[]): void {
  const seen = new Set<string>();
  fragments.forEach((f, i) => {
    const where = `fragments[${i}] (${f.op} ${f.resource})`;
    const own = fragmentMzId(f) ?? mzid;
    if (own !== mzid)
      throw new FragmentError(`${where}: belongs to materialization '${own}', request is for '${mzid}'`);
    const id = fragmentId(f);
    if (seen.has(id)) throw new FragmentError(`${where}: duplicate of an earlier fragment for the same ${id}`);
    seen.add(id);
  });
}

function fragmentMzId(f: Fragment): MzId | undefined {
  switch (f.op) {
    case "infrapod.setup":
      return f.infrapod.mzid;
    case "node.power":
      return undefined;
    case "link.create":
    case "link.destroy":
      return f.link.mzid;
    case "emulation.setup":
      return f.emulation.mzid;
    default:
      return f.node.mzid;
  }
}

function fragmentId(f: Fragment): string {
  switch (f.op) {
    case "infrapod.setup":
      return "infrapod";
    case "link.create":
    case "link.destroy":
      return `link ${f.link.link}`;
    case "emulation.setup":
      return `emulation ${f.emulation.emulation}`;
    case "node.power":
      return `node ${f.resource}`;
    default:
      return `node ${nodeStateId(f.node)}`;
  }
}

/** An action id's node part: the machine for a physical node, `machine.node` for a VM (a hypervisor carries several). */
function nodeActionId(n: NodeSpec): string {
  return n.mode === "virtual" ? `${n.resource}.${n.node}` : n.resource;
}

export function materializeDag(mzid: MzId, fragments: Fragment[], now = new Date().toISOString()): Dag {
  check(mzid, fragments);
  const tasks: Task[] = [];
  const actions: Action[] = [];
  const infrapod = fragments.find((f) => f.op === "infrapod.setup");
  const deps: string[] = [];
  if (infrapod?.op === "infrapod.setup") {
    tasks.push({
      mzid,
      id: "infrapod",
      phase: "setup",
      deps: [],
      stages: 3,
      description: "infrapod: network enclave, services, DHCP/DNS entries",
    });
    actions.push(
      action(mzid, "infrapod", 0, "enclave", { kind: "infrapod.enclave", infrapod: infrapod.infrapod }, now),
      action(mzid, "infrapod", 1, "services", { kind: "infrapod.services", infrapod: infrapod.infrapod }, now),
      action(
        mzid,
        "infrapod",
        2,
        "entries",
        { kind: "infrapod.entries", infrapod: infrapod.infrapod, entries: infrapod.entries },
        now,
      ),
    );
    deps.push("infrapod");
  }
  const links = fragments.flatMap((f) => (f.op === "link.create" || f.op === "link.destroy" ? [f] : []));
  const emulations = fragments.flatMap((f) => (f.op === "emulation.setup" ? [f] : []));
  if (links.length || emulations.length) {
    tasks.push({
      mzid,
      id: "network",
      phase: "setup",
      deps,
      stages: emulations.length ? 2 : 1,
      description: "experiment network: links, then emulation",
    });
    for (const f of links) {
      actions.push(action(mzid, "network", 0, `link-${f.link.link}`, { kind: f.op, link: f.link }, now));
    }
    for (const f of emulations) {
      actions.push(
        action(
          mzid,
          "network",
          links.length ? 1 : 0,
          `emulation-${f.emulation.emulation}`,
          { kind: f.op, emulation: f.emulation },
          now,
        ),
      );
    }
    if (!links.length) tasks[tasks.length - 1]!.stages = 1;
  }
  const nodes = fragments.flatMap((f) =>
    f.op === "node.setup" || f.op === "node.recycle" || f.op === "node.reset" || f.op === "node.power" ? [f] : [],
  );
  if (nodes.length) {
    tasks.push({
      mzid,
      id: "nodes",
      phase: "setup",
      deps,
      stages: 1,
      description: "node setup, all nodes in parallel",
    });
    for (const f of nodes) {
      const spec: ActionSpec =
        f.op === "node.power"
          ? { kind: "node.power", resource: f.resource, power: f.power }
          : { kind: f.op, node: f.node };
      const id = f.op === "node.power" ? f.resource : nodeActionId(f.node);
      actions.push(action(mzid, "nodes", 0, `${f.op.slice(5)}-${id}`, spec, now));
    }
  }
  return { tasks, actions };
}

/**
 * The teardown DAG for what a materialization set up: its setup actions' specs
 * say what exists (or may, partly: teardown actions are idempotent).
 */
export function teardownDag(mzid: MzId, setup: Action[], now = new Date().toISOString()): Dag {
  const tasks: Task[] = [];
  const actions: Action[] = [];
  const nodes: Action[] = [];
  const network: Action[] = [];
  let infrapod: Action | undefined;
  // Each setup action's undo (actions.ts), placed: emulations before the links they run on,
  // nodes and network in parallel, the infrapod last.
  for (const a of setup) {
    const undo = undoAction(a.spec);
    if (!undo) continue;
    if (undo.kind === "node.recycle") {
      nodes.push(action(mzid, "teardown-nodes", 0, `recycle-${nodeActionId(undo.node)}`, undo, now));
    } else if (undo.kind === "link.destroy") {
      network.push(action(mzid, "teardown-network", 1, `link-${undo.link.link}`, undo, now));
    } else if (undo.kind === "emulation.destroy") {
      network.push(action(mzid, "teardown-network", 0, `emulation-${undo.emulation.emulation}`, undo, now));
    } else if (undo.kind === "infrapod.destroy") {
      infrapod = action(mzid, "teardown-infrapod", 0, "destroy", undo, now);
    }
  }
  const deps: string[] = [];
  if (nodes.length) {
    tasks.push({
      mzid,
      id: "teardown-nodes",
      phase: "teardown",
      deps: [],
      stages: 1,
      description: "recycle all nodes to the harbor",
    });
    actions.push(...nodes);
    deps.push("teardown-nodes");
  }
  if (network.length) {
    // Emulations stop before their links go; renumber when there are no emulations.
    const hasEmu = network.some((a) => a.stage === 0);
    if (!hasEmu) for (const a of network) a.stage = 0;
    tasks.push({
      mzid,
      id: "teardown-network",
      phase: "teardown",
      deps: [],
      stages: hasEmu && network.some((a) => a.stage === 1) ? 2 : 1,
      description: "stop emulation, destroy links",
    });
    if (hasEmu && !network.some((a) => a.stage === 1)) for (const a of network) a.stage = 0;
    actions.push(...network);
    deps.push("teardown-network");
  }
  if (infrapod) {
    // Its sweep removes what the links and the emulators made, every host's at once, and what the nodes share
    // (LinkSpec, EmulationSpec, NodeSpec.sweptAfter).
    for (const a of network)
      if (a.spec.kind === "link.destroy" && !a.spec.link.external?.length)
        a.spec = { ...a.spec, link: { ...a.spec.link, sweptAfter: true } };
      else if (a.spec.kind === "emulation.destroy")
        a.spec = { ...a.spec, emulation: { ...a.spec.emulation, sweptAfter: true } };
    for (const a of nodes)
      if (a.spec.kind === "node.recycle") a.spec = { ...a.spec, node: { ...a.spec.node, sweptAfter: true } };
    tasks.push({
      mzid,
      id: "teardown-infrapod",
      phase: "teardown",
      deps,
      stages: 1,
      description: "destroy the infrapod",
    });
    actions.push(infrapod);
  }
  return { tasks, actions };
}
