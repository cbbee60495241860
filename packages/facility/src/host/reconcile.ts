/**
 * A host's agent came (back): bring the host to the desired state the store
 * holds. What it carries of materializations the store no longer has (torn
 * down while it was away) is swept by the agent; for live materializations,
 * every completed setup action that concerns the host is performed again
 * (backend calls are idempotent: what exists stays, what is missing is made),
 * and actions that failed because the host was down are cleared for rex to
 * retry. Other hosts' and other materializations' parts are left as they are.
 */
import { infrapodHosts, linkHosts } from "@merge/materialize";
import type { Store } from "@merge/store";
import { performAction } from "../actions.ts";
import type { ActionContext } from "../backend.ts";
import { Driver } from "../driver.ts";
import { clearErrors } from "../operations.ts";
import type { ActionSpec } from "../task.ts";
import type { HostRoutedBackend } from "./routed.ts";

/** The hosts an action's work lands on (`""`: the facility's own machine). */
export function actionHosts(spec: ActionSpec, hostOf: (resource: string) => string | undefined): string[] {
  switch (spec.kind) {
    case "infrapod.enclave":
      return infrapodHosts(spec.infrapod);
    case "infrapod.services":
    case "infrapod.entries":
    case "infrapod.destroy":
      return [spec.infrapod.host ?? ""];
    case "node.setup":
    case "node.recycle":
    case "node.reset": {
      const pod = spec.node.infranet.hosts?.[0];
      const own = spec.node.host ?? "";
      return pod !== undefined && pod !== own ? [own, pod] : [own];
    }
    case "node.power":
      return [hostOf(spec.resource) ?? ""];
    case "link.create":
    case "link.destroy":
      return linkHosts(spec.link);
    case "emulation.setup":
    case "emulation.destroy":
      return [spec.emulation.host ?? ""];
  }
}

export interface HostReconciled {
  swept: string[];
  redone: number;
  cleared: number;
}

export async function reconcileHost(o: {
  store: Store;
  backend: HostRoutedBackend;
  host: string;
  hostOf: (resource: string) => string | undefined;
  log?: (m: string) => void;
}): Promise<HostReconciled> {
  const log = o.log ?? (() => {});
  const ctx: ActionContext = { signal: new AbortController().signal, log: (m) => log(`reconcile ${o.host}: ${m}`) };
  const driver = new Driver(o.store);
  const infos = await driver.list();
  const swept = await o.backend.sweepHost(
    o.host,
    infos.map((i) => i.mzid),
    ctx,
  );
  let redone = 0;
  let cleared = 0;
  for (const info of infos) {
    if (info.phase !== "materializing") continue;
    const dag = await driver.readDag(info.mzid);
    const setup = new Set(dag.tasks.filter((t) => t.phase === "setup").map((t) => t.id));
    for (const a of dag.actions) {
      if (!setup.has(a.task) || a.masked || !actionHosts(a.spec, o.hostOf).includes(o.host)) continue;
      if (a.state === "complete") {
        await performAction(o.backend, a.spec, ctx);
        redone++;
      } else if (a.state === "error" && a.error?.includes(`host ${o.host}`)) {
        cleared += (await clearErrors(o.store, info.mzid, `${a.task}/${a.stage}/${a.id}`)).length;
      }
    }
  }
  log(`reconcile ${o.host}: swept ${swept.length}, redid ${redone} actions, cleared ${cleared} errors`);
  return { swept, redone, cleared };
}
