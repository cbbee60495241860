// cog harbor: where the facility's testbed nodes are — waiting in the harbor
// (imaging standby) or carrying an experiment node of a materialization.
import { harborNodes } from "@merge/facility";
import Table from "cli-table3";
import type { Command } from "commander";
import { PLAIN, print, type StoreOpts, withStore, withStoreOpts } from "./facility-store.ts";

export function register(program: Command): void {
  withStoreOpts(
    program
      .command("harbor")
      .description("the harbor: each testbed node in standby there, or the materialization it is in"),
  ).action((opts: StoreOpts) =>
    withStore(opts, async (store) => {
      const harbor = await harborNodes(store);
      if (!harbor) {
        console.error("cog: this facility runs without a harbor (started with --no-harbor, or not started yet)");
        process.exitCode = 1;
        return;
      }
      print(opts, harbor, () => {
        const t = new Table({
          head: ["resource", "harbor address", "state", "materialization", "node", "updated"],
          style: PLAIN,
        });
        for (const n of harbor.nodes) {
          if (n.state === "standby") t.push([n.resource, n.address, "standby", "", "", ""]);
          // A hypervisor carries several virtual nodes: a row each.
          for (const c of n.carrying) {
            const state = c.target !== c.current ? `${c.current} → ${c.target}` : c.current;
            t.push([n.resource, n.address, state, c.mzid ?? "", c.node ?? "", c.updated]);
          }
        }
        const standby = harbor.nodes.filter((n) => n.state === "standby").length;
        return `${harbor.name}: ${standby} of ${harbor.nodes.length} testbed nodes in standby\n${t.toString()}`;
      });
    }),
  );
}
