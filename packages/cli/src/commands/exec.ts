// mrg exec <node> <rlz.exp.proj> -- command args...: run a command in a
// materialized node through the portal (the shell WebSocket with argv); mrg's
// stdin is the command's when it is a pipe or a file or with -i (a terminal
// without -i: closed at once, as docker exec does), closed at its end, output streams as it comes and
// mrg exits with the command's exit code. Without a command: an interactive
// shell (raw terminal when stdin is one; piped input is read line by line).
import { Readable } from "node:stream";
import type { ShellSession } from "@merge/portal/client";
import type { Command } from "commander";
import { action, CliError, parseName, portalOptions, signedIn, UsageError } from "../client.ts";

interface Flags {
  portal?: string;
  timeout?: string;
  interactive?: boolean;
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
      .option(
        "-i, --interactive",
        "send what is typed on this terminal to the command (stdin that is a terminal is closed at once without -i)",
      )
      .addHelpText(
        "after",
        `
Exits with the command's exit status. The command's stdin is mrg's when it is
a pipe or a file, or with -i, streamed as it comes and closed at its end; when
it is a terminal and -i is not given, the command's stdin is closed at once
(so a command that reads it does not wait for Ctrl-D). The same holds for
containers and VMs. mrg ends when the command exits, even if a child it left
in the background still runs.
Examples:
  mrg exec c0 r1.demo.admin -- ping -c 3 server
  echo hi | mrg exec c0 r1.demo.admin -- cat
  mrg exec -i c0 r1.demo.admin -- sh             # type commands, Ctrl-D ends
  mrg exec server r1.demo.admin -- sh -c 'ip addr | grep inet'
  mrg exec c0 r1.demo.admin                     # interactive shell`,
      ),
    { json: false },
  ).action(
    action(async (node: string, id: string, argv: string[], f: Flags) => {
      const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
      const timeoutSec = f.timeout === undefined ? undefined : Number(f.timeout);
      if (timeoutSec !== undefined && !(timeoutSec > 0))
        throw new UsageError(`--timeout '${f.timeout}': expected seconds > 0`);
      // A terminal's input goes to a command only when asked (-i); a pipe's or a file's always.
      const input = process.stdin.isTTY && !f.interactive ? Readable.from([]) : undefined;
      process.exitCode = argv.length
        ? await command(f, { proj, exp, rlz, node }, argv, timeoutSec, input ? { input } : {})
        : await shell(f, proj, exp, rlz, node);
    }),
  );
}

/** A node of a materialization, as the commands name it. */
export interface NodeRef {
  proj: string;
  exp: string;
  rlz: string;
  node: string;
}

/**
 * Run `argv` in the node with `input` (this process's stdin unless given) as
 * its stdin, closed at the input's end; its output to `out` (stdout/stderr by
 * default). Resolves with its exit code (130 after Ctrl-C).
 */
export async function command(
  f: { portal?: string },
  at: NodeRef,
  argv: string[],
  timeoutSec?: number,
  io: { input?: Readable; stdout?: (b: Uint8Array) => void } = {},
): Promise<number> {
  const input = io.input ?? process.stdin;
  const s = await signedIn(f).shell(
    at.proj,
    at.exp,
    at.rlz,
    at.node,
    { tty: false, argv, ...(timeoutSec ? { timeoutSec } : {}) },
    { stdout: io.stdout ?? ((b) => process.stdout.write(b)), stderr: (t) => process.stderr.write(t) },
  );
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    s.close();
  };
  process.once("SIGINT", onSigint);
  const stop = forward(input, s);
  try {
    return await s.done.catch((e: Error) => {
      if (interrupted) return 130;
      throw new CliError(`${at.node}: ${e.message}`);
    });
  } finally {
    process.off("SIGINT", onSigint);
    stop();
  }
}

/** Frames sent but not yet on the wire before input stops being read (back-pressure for large uploads). */
const IN_FLIGHT = 8;

/** Forward `input` to the session, then end of input; returns a function that stops forwarding. */
function forward(input: Readable, s: ShellSession): () => void {
  let inFlight = 0;
  let stopped = false;
  const onData = (b: Buffer) => {
    if (++inFlight >= IN_FLIGHT) input.pause();
    s.stdin(new Uint8Array(b)).then(() => {
      if (--inFlight < IN_FLIGHT && !stopped) input.resume();
    });
  };
  const onEnd = () => s.eof();
  input.on("data", onData);
  input.once("end", onEnd);
  input.resume();
  return () => {
    stopped = true;
    input.off("data", onData);
    input.off("end", onEnd);
    input.pause();
  };
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
  const onResize = () => s.resize(size());
  if (tty) {
    stdin.setRawMode(true);
    process.stdout.on("resize", onResize);
  }
  const stop = forward(stdin, s);
  try {
    return await s.done.catch((e: Error) => {
      throw new CliError(`${node}: ${e.message}`);
    });
  } finally {
    stop();
    if (tty) {
      process.stdout.off("resize", onResize);
      stdin.setRawMode(false);
    }
  }
}
