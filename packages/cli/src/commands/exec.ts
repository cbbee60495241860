// mrg exec <node> <rlz.exp.proj> -- command args...: run a command in a
// materialized node through the portal; output streams as it comes and mrg
// exits with the command's exit code. Without a command: an interactive shell
// (raw terminal when stdin is one; piped input is read line by line).
import type { Command } from "commander";
import { action, CliError, parseName, portalOptions, signedIn, UsageError } from "../client.ts";

interface Flags {
  portal?: string;
  timeout?: string;
}

export function registerExec(program: Command): void {
  portalOptions(
    program
      .command("exec <node> <rlz.exp.proj> [command...]")
      .summary("run a command in a node (after --), or a shell")
      .description(
        "run a command in a node (put it after --; no shell, so no pipes or globs unless you run sh -c); without a command, an interactive shell",
      )
      .option("--timeout <seconds>", "kill the command after this long")
      .addHelpText(
        "after",
        `
Exits with the command's exit status.
Examples:
  mrg exec c0 r1.demo.admin -- ping -c 3 server
  mrg exec server r1.demo.admin -- sh -c 'ip addr | grep inet'
  mrg exec c0 r1.demo.admin                     # interactive shell`,
      ),
    { json: false },
  ).action(
    action(async (node: string, id: string, argv: string[], f: Flags) => {
      const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
      if (!argv.length) {
        process.exitCode = await shell(f, proj, exp, rlz, node);
        return;
      }
      const timeoutSec = f.timeout === undefined ? undefined : Number(f.timeout);
      if (timeoutSec !== undefined && !(timeoutSec > 0))
        throw new UsageError(`--timeout '${f.timeout}': expected seconds > 0`);
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

/** A shell in the node on this terminal; returns its exit code. The terminal is restored however it ends. */
async function shell(f: Flags, proj: string, exp: string, rlz: string, node: string): Promise<number> {
  const stdin = process.stdin;
  const tty = stdin.isTTY === true;
  const size = () => ({ rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 });
  const s = await signedIn(f).shell(
    proj,
    exp,
    rlz,
    node,
    { tty, ...(tty ? { size: size() } : {}) },
    { stdout: (b) => process.stdout.write(b), stderr: (t) => process.stderr.write(t) },
  );
  const onData = (b: Buffer) => s.stdin(new Uint8Array(b));
  const onEnd = () => s.eof();
  const onResize = () => s.resize(size());
  if (tty) {
    stdin.setRawMode(true);
    process.stdout.on("resize", onResize);
  }
  stdin.on("data", onData);
  stdin.once("end", onEnd);
  stdin.resume();
  try {
    return await s.done.catch((e: Error) => {
      throw new CliError(`${node}: ${e.message}`);
    });
  } finally {
    stdin.off("data", onData);
    stdin.off("end", onEnd);
    if (tty) {
      process.stdout.off("resize", onResize);
      stdin.setRawMode(false);
    }
    stdin.pause();
  }
}
