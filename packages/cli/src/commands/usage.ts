// Usage errors the same way in mrg, cog and mergectl. Kept apart from client.ts
// so that cog, which never talks to a portal, does not load the portal client.
import { readFileSync } from "node:fs";
import { type Command, Help, type Option } from "commander";

/** This installation's version (packages/cli/package.json), for `--version`. */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/**
 * Usage errors (unknown command or option, missing argument) exit with status 2,
 * and each command's error points at its own --help. Call on the program before
 * adding commands (commander copies the setting to each new command), and
 * `helpAfterErrors` once every command is added.
 */
export function usageExits(program: Command): Command {
  if (!program.parent) program.version(cliVersion(), "-V, --version", "print the version");
  // Subcommands inherit this: a flag the command cannot do without says so in --help.
  program.configureHelp({
    optionDescription(this: Help, o: Option): string {
      const d = Help.prototype.optionDescription.call(this, o);
      return o.mandatory ? `${d} (required)` : d;
    },
  });
  return program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
}

export function helpAfterErrors(cmd: Command, path: string = cmd.name()): void {
  cmd.showHelpAfterError(`(see '${path} --help')`);
  for (const sub of cmd.commands) helpAfterErrors(sub, `${path} ${sub.name()}`);
}
