// cog list|show|clear|complete|mask|dematerialize: materializations and their
// task DAGs in the facility store, as operators see and steer them.
import {
  type Action,
  actionTarget,
  clearErrors,
  completeByHand,
  Driver,
  MzIdError,
  type MzSummary,
  mask,
  nodeStateId,
  pendingTasks,
  strayNodes,
} from "@merge/facility";
import type { Store } from "@merge/store";
import Table from "cli-table3";
import type { Command } from "commander";
import { PLAIN, print, type StoreOpts, withStore, withStoreOpts } from "./facility-store.ts";

/** Tables without colour: operators pipe them into grep and logs. */

/** Refuses a materialization the facility does not hold, instead of doing nothing to it. */
async function held(store: Store, mzid: string): Promise<void> {
  if (!(await new Driver(store).status(mzid)).info)
    throw new MzIdError(`the facility holds no materialization '${mzid}' (see 'cog list mz')`);
}

/**
 * An operator's change to a materialization's actions (clear, complete, mask): refused while a driver
 * holds it; prints the actions changed, or `said` of how many ("3 actions").
 */
function changeByHand(
  opts: StoreOpts,
  mzid: string,
  change: (store: Store) => Promise<unknown[]>,
  said: (actions: string) => string,
): Promise<void> {
  return withStore(opts, async (store) => {
    await held(store, mzid);
    const done = await change(store);
    print(opts, done, () => said(`${done.length} action${done.length === 1 ? "" : "s"}`));
  });
}

function state(a: Action): string {
  if (a.masked) return "masked";
  return a.state;
}

function actionsTable(actions: Action[]): Table.Table {
  const t = new Table({
    head: ["task", "stage", "action", "kind", "target", "state", "attempts", "error"],
    style: PLAIN,
  });
  for (const a of actions) {
    t.push([a.task, a.stage, a.id, a.spec.kind, actionTarget(a.spec), state(a), a.attempts, a.error ?? ""]);
  }
  return t;
}

export function register(program: Command): void {
  const list = program.command("list").description("list pending tasks, materializations, or nodes out of state");
  const show = program.command("show").description("show a materialization or its tasks");

  withStoreOpts(
    list.command("tasks").description("tasks with work pending or in error, across materializations"),
  ).action((opts: StoreOpts) =>
    withStore(opts, async (store) => {
      const tasks = await pendingTasks(store);
      print(opts, tasks, () => {
        const t = new Table({
          head: ["materialization", "task", "pending", "errors", "actions", "depends on"],
          style: PLAIN,
        });
        for (const p of tasks) t.push([p.task.mzid, p.task.id, p.pending, p.errors, p.total, p.task.deps.join(", ")]);
        return tasks.length ? t : "no pending tasks";
      });
    }),
  );

  withStoreOpts(list.command("mz").alias("materializations").description("materializations the facility holds")).action(
    (opts: StoreOpts) =>
      withStore(opts, async (store) => {
        const driver = new Driver(store);
        const rows: (MzSummary & { mzid: string; vindex: number; nodes: number; links: number })[] = [];
        for (const info of await driver.list()) {
          const st = await driver.status(info.mzid);
          rows.push({
            mzid: info.mzid,
            vindex: info.vindex,
            ...st.summary,
            nodes: info.nodes.length,
            links: info.links.length,
          });
        }
        print(opts, rows, () => {
          const t = new Table({
            head: ["materialization", "vindex", "status", "complete", "errors", "nodes", "links"],
            style: PLAIN,
          });
          for (const r of rows)
            t.push([r.mzid, r.vindex, r.status, `${r.complete + r.masked}/${r.actions}`, r.errors, r.nodes, r.links]);
          return rows.length ? t : "no materializations";
        });
      }),
  );

  withStoreOpts(
    list
      .command("nodes")
      .description("nodes whose current state differs from the target and that no rex worker is driving"),
  ).action((opts: StoreOpts) =>
    withStore(opts, async (store) => {
      const nodes = await strayNodes(store);
      print(opts, nodes, () => {
        const t = new Table({
          head: ["resource", "current", "target", "materialization", "last action", "updated"],
          style: PLAIN,
        });
        for (const n of nodes)
          t.push([n.resource, n.current, n.target, n.mzid ?? "", n.action?.split("/action/")[1] ?? "", n.updated]);
        return nodes.length ? t : "every node is in its target state or in flight";
      });
    }),
  );

  withStoreOpts(
    show.command("tasks <mzid>").description("a materialization's actions (pending and in error; --all for every one)"),
  )
    .option("--all", "include completed and masked actions")
    .action((mzid: string, opts: StoreOpts & { all?: boolean }) =>
      withStore(opts, async (store) => {
        const st = await new Driver(store).status(mzid);
        if (!st.info) throw new MzIdError(`the facility holds no materialization '${mzid}' (see 'cog list mz')`);
        const actions = opts.all ? st.actions : st.actions.filter((a) => !a.masked && a.state !== "complete");
        print(opts, { mzid, tasks: st.tasks, actions }, () =>
          actions.length ? actionsTable(actions) : "no pending actions (--all shows completed ones)",
        );
      }),
    );

  withStoreOpts(
    show.command("mz <mzid>").alias("materialization").description("status, infrapod, nodes, links and tags"),
  ).action((mzid: string, opts: StoreOpts) =>
    withStore(opts, async (store) => {
      const st = await new Driver(store).status(mzid);
      if (!st.info) throw new MzIdError(`the facility holds no materialization '${mzid}' (see 'cog list mz')`);
      const info = st.info;
      const records = new Map(st.nodes.map((n) => [n.resource, n]));
      const nodeAction = new Map(
        st.actions.filter((a) => "node" in a.spec).map((a) => ["node" in a.spec ? nodeStateId(a.spec.node) : "", a]),
      );
      const linkAction = new Map(
        st.actions.filter((a) => "link" in a.spec).map((a) => ["link" in a.spec ? a.spec.link.link : "", a]),
      );
      const json = {
        mzid,
        status: st.summary.status,
        vindex: info.vindex,
        infrapod: info.infrapod,
        progress: st.summary,
        nodes: info.nodes.map((n) => ({
          ...n,
          state: records.get(n.state ?? n.resource),
          action: nodeAction.get(n.state ?? n.resource)?.state,
        })),
        links: info.links.map((l) => ({
          ...l,
          action: linkAction.get(l.link)?.state,
          error: linkAction.get(l.link)?.error,
        })),
      };
      print(opts, json, () => {
        const head = new Table({ style: PLAIN });
        head.push(
          { status: st.summary.status },
          {
            progress: `${st.summary.complete + st.summary.masked}/${st.summary.actions} actions, ${st.summary.errors} errors`,
          },
          { "infrapod server": info.infrapod?.server ?? "" },
          { "infrapod address": info.infrapod?.serviceAddress ?? "(not yet)" },
          { infranet: info.infrapod ? `vni ${info.infrapod.infranet.vni} ${info.infrapod.infranet.subnet}` : "" },
        );
        const nodes = new Table({
          head: ["node", "resource", "image", "infranet", "current", "target", "action"],
          style: PLAIN,
        });
        for (const n of json.nodes) {
          nodes.push([
            n.node,
            n.resource,
            n.image ?? "default",
            n.address ?? "",
            n.state?.current ?? "",
            n.state?.target ?? "",
            n.action ?? "",
          ]);
        }
        const links = new Table({ head: ["link", "kind", "emulated", "tags", "action", "error"], style: PLAIN });
        for (const l of json.links) {
          const tags = l.tags
            .map((t) => (t.vni !== undefined ? `vni ${t.vni}` : t.vlan !== undefined ? `vlan ${t.vlan}` : "-"))
            .join(" ");
          links.push([l.link, l.kind, l.emulated ? "yes" : "no", tags, l.action ?? "", l.error ?? ""]);
        }
        return `${head.toString()}\n${nodes.toString()}\n${links.toString()}`;
      });
    }),
  );

  withStoreOpts(
    program.command("clear <mzid> [selector]").description("clear errors so rex retries (selector: task, task/action)"),
  ).action((mzid: string, selector: string | undefined, opts: StoreOpts) =>
    changeByHand(
      opts,
      mzid,
      (store) => clearErrors(store, mzid, selector),
      (n) => `cleared ${n} in error`,
    ),
  );

  withStoreOpts(
    program
      .command("complete <mzid> <selector>")
      .description("mark actions complete by hand (selector: task, task/action)"),
  ).action((mzid: string, selector: string, opts: StoreOpts) =>
    changeByHand(
      opts,
      mzid,
      (store) => completeByHand(store, mzid, selector),
      (n) => `completed ${n} by hand`,
    ),
  );

  withStoreOpts(
    program
      .command("mask <mzid> <selector>")
      .description("mask actions so rex skips them (selector: task, task/action)"),
  )
    .option("--unmask", "remove the mask instead")
    .action((mzid: string, selector: string, opts: StoreOpts & { unmask?: boolean }) =>
      changeByHand(
        opts,
        mzid,
        (store) => mask(store, mzid, selector, !opts.unmask),
        (n) => `${opts.unmask ? "unmasked" : "masked"} ${n}`,
      ),
    );

  withStoreOpts(
    program
      .command("dematerialize <mzid>")
      .description("tear a materialization down by hand (portal and facility out of sync)"),
  ).action((mzid: string, opts: StoreOpts) =>
    withStore(opts, async (store) => {
      const dag = await new Driver(store).dematerialize(mzid);
      print(opts, dag, () =>
        dag.actions.length
          ? `dematerializing ${mzid}: ${dag.actions.length} teardown actions queued for rex`
          : `the facility holds nothing for ${mzid}`,
      );
    }),
  );
}
