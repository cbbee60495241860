/**
 * A materialization's status as the facility derives it (its DAG, node records,
 * power and emulation) → the protobuf status message. The fragments' wire form
 * is `@merge/materialize`'s.
 */
import { create } from "@bufbuild/protobuf";
import {
  ACTION_STATE,
  type EmulationParams,
  emulationParamsToPb,
  MZ_STATUS,
  NODE_STATE,
  nodeProfileToPb,
} from "@merge/materialize";
import * as pb from "@merge/proto";
import type { MzDetail } from "./driver.ts";
import { type ActionState, actionTarget, type NodeRecord, nodeStateId } from "./task.ts";

export function statusToPb(mzid: string, d: MzDetail): pb.StatusResponse {
  const nodeAction = new Map<string, { state: ActionState; error?: string; masked: boolean }>();
  const linkAction = new Map<string, { state: ActionState; error?: string; masked: boolean }>();
  for (const a of d.actions) {
    const s = a.spec;
    if ("node" in s) nodeAction.set(nodeStateId(s.node), a);
    else if ("link" in s) linkAction.set(s.link.link, a);
  }
  const records = new Map(d.nodes.map((n) => [n.resource, n]));
  const emulated = new Map<string, EmulationParams>();
  for (const a of d.actions) {
    if (a.spec.kind === "emulation.setup") for (const l of a.spec.emulation.links) emulated.set(l.link, l.params);
  }
  for (const [link, p] of d.emulation ?? []) emulated.set(link, p);
  const tasks = d.tasks.map((t) => {
    const acts = d.actions.filter((a) => a.task === t.id);
    return create(pb.TaskStatusSchema, {
      id: t.id,
      phase: t.phase,
      deps: t.deps,
      stages: t.stages,
      actions: acts.length,
      complete: acts.filter((a) => a.state === "complete" && !a.masked).length,
      errors: acts.filter((a) => a.state === "error" && !a.masked).length,
      masked: acts.filter((a) => a.masked).length,
    });
  });
  return create(pb.StatusResponseSchema, {
    mzid,
    status: MZ_STATUS[d.summary.status],
    infrapodAddress: d.info?.infrapod?.serviceAddress ?? "",
    actions: d.summary.actions,
    complete: d.summary.complete,
    errorCount: d.summary.errors,
    masked: d.summary.masked,
    nodes: (d.info?.nodes ?? []).map((n) => {
      const rec = records.get(n.state ?? n.resource);
      const a = nodeAction.get(n.state ?? n.resource);
      const profile = d.info?.profiles?.[n.node];
      const control = d.info?.controls?.[n.node];
      return {
        node: n.node,
        resource: n.resource,
        current: rec ? NODE_STATE[rec.current] : pb.NodeState.UNSPECIFIED,
        target: rec ? NODE_STATE[rec.target] : pb.NodeState.UNSPECIFIED,
        action: a ? (a.masked ? pb.ActionState.COMPLETE : ACTION_STATE[a.state]) : pb.ActionState.UNSPECIFIED,
        error: a?.error ?? "",
        ...powerOf(d, n.node, rec),
        ...(profile ? { profile: nodeProfileToPb(profile) } : {}),
        ...(control
          ? {
              control: {
                address: control.address,
                firstPort: control.first,
                lastPort: control.last,
                sshPort: control.ssh,
              },
            }
          : {}),
      };
    }),
    links: (d.info?.links ?? []).map((l) => {
      const a = linkAction.get(l.link);
      const e = emulated.get(l.link);
      return {
        link: l.link,
        action: a ? (a.masked ? pb.ActionState.COMPLETE : ACTION_STATE[a.state]) : pb.ActionState.UNSPECIFIED,
        error: a?.error ?? "",
        ...(e ? { emulation: emulationParamsToPb(e) } : {}),
      };
    }),
    tasks,
    gateways: Object.values(d.info?.gateways ?? {}).map((g) => create(pb.GatewayEndSchema, g)),
    failed: d.actions
      .filter((a) => a.state === "error" && !a.masked)
      .map((a) => ({
        task: a.task,
        stage: a.stage,
        id: a.id,
        kind: a.spec.kind,
        target: actionTarget(a.spec),
        state: ACTION_STATE[a.state],
        masked: a.masked,
        attempts: a.attempts,
        error: a.error ?? "",
      })),
  });
}

/** A node's tracked power: its record, else on once it is ready in this materialization. */
function powerOf(d: MzDetail, node: string, rec: NodeRecord | undefined): { power: string; powerError: string } {
  const p = d.power?.get(node);
  if (p) return { power: p.state, powerError: p.error ?? "" };
  return { power: rec?.mzid === d.info?.mzid && rec?.current === "ready" ? "on" : "", powerError: "" };
}
