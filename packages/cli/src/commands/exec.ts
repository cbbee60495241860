// mrg exec <node> <rlz.exp.proj> -- command args...: run a command in a
// materialized node through the portal; output streams as it comes and mrg
// exits with the command's exit code.
import type { Command } from "commander";
import { action, CliError, parseName, portalOptions, signedIn } from "../client.ts";

interface Flags {
  portal?: string;
  timeout?: string;
}

export function registerExec(program: Command): void {
  portalOptions(
    program
      .command("exec <node> <rlz.exp.proj> [command...]")
      .description(
        "run a command in a node (no shell; put it after --), e.g. mrg exec c0 r.e.p -- busybox ping -c 3 server",
      )
      .option("--timeout <seconds>", "kill the command after this long"),
  ).action(
    action(async (node: string, id: string, argv: string[], f: Flags) => {
      const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
      if (!argv.length) {
        throw new CliError(
          `interactive shells are not offered yet; run a command instead: mrg exec ${node} ${id} -- busybox sh -c '...'`,
        );
      }
      const timeoutSec = f.timeout === undefined ? undefined : Number(f.timeout);
      if (timeoutSec !== undefined && !(timeoutSec > 0))
        throw new CliError(`--timeout '${f.timeout}': expected seconds > 0`);
      const ac = new AbortController();
      process.once("SIGINT", () => ac.abort());
      let exit: number | undefined;
      try {
        for await (const line of signedIn(f).exec(proj, exp, rlz, node, argv, { timeoutSec, signal: ac.signal })) {
          if ("stdout" in line) process.stdout.write(line.stdout);
          else if ("stderr" in line) process.stderr.write(line.stderr);
          else if ("exit" in line) exit = line.exit;
          else throw new CliError(`${node}: ${line.error}`);
        }
      } catch (e) {
        if (ac.signal.aborted) exit = 130;
        else throw e;
      }
      if (exit === undefined)
        throw new CliError(`${node}: the output ended without an exit code; the command may still run`);
      process.exitCode = exit;
    }),
  );
}
