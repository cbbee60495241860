// mrg node start|stop|reboot (restart)|cycle|reimage <node> <rlz.exp.proj> [--hard]: power
// a materialized node, or reimage it, through the portal; the new state shows in
// 'mrg show materialization'.
import type { PowerVerb } from "@merge/portal/client";
import type { Command } from "commander";
import { action, type OutputFlags, parseName, portalOptions, print, signedIn } from "../client.ts";

interface Flags extends OutputFlags {
  portal?: string;
  hard?: boolean;
}

const VERBS: [PowerVerb, string][] = [
  ["start", "power a stopped node on (waits until it has booted and is configured)"],
  ["stop", "power a node off (hard: its processes are killed; its disk stays)"],
  ["reboot", "shut a node down and start it again (--hard: power cycle)"],
  ["cycle", "power cycle a node (hard off, then on)"],
  ["reimage", "wipe a node's disk back to its image and boot it, configured as at materialize"],
];

export function registerNode(program: Command): void {
  const node =
    program.commands.find((c) => c.name() === "node") ??
    program.command("node").description("operate the nodes of a materialization");
  for (const [verb, what] of VERBS) {
    const cmd = node
      .command(`${verb} <node> <rlz.exp.proj>`)
      .description(what)
      .addHelpText("after", `\nExample:\n  mrg node ${verb} c0 r1.demo.admin`);
    if (verb === "reboot") cmd.alias("restart").option("--hard", "power cycle instead of a shutdown");
    portalOptions(cmd).action(
      action(async (name: string, id: string, f: Flags) => {
        const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
        const r = await signedIn(f).nodePower(
          proj,
          exp,
          rlz,
          name,
          verb,
          verb === "reboot" ? f.hard === true : undefined,
        );
        print(f, r, ["node", "resource", "power", "state"]);
      }),
    );
  }
}
