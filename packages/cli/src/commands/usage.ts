// Usage errors the same way in mrg, cog and mergectl. Kept apart from client.ts
// so that cog, which never talks to a portal, does not load the portal client.
import type { Command } from "commander";

/**
 * Usage errors (unknown command or option, missing argument) exit with status 2,
 * and each command's error points at its own --help. Call on the program before
 * adding commands (commander copies the setting to each new command), and
 * `helpAfterErrors` once every command is added.
 */
export function usageExits(program: Command): Command {
  return program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
}

export function helpAfterErrors(cmd: Command, path: string = cmd.name()): void {
  cmd.showHelpAfterError(`(see '${path} --help')`);
  for (const sub of cmd.commands) helpAfterErrors(sub, `${path} ${sub.name()}`);
}
