// cog: the command line of facility operators. Every command group is a module
// commands/cog-<group>.ts exporting register(program); this program finds them
// itself, so a new group is one new file and no edit here.
// Run it with tsx (npx tsx packages/cli/src/cog.ts). No shebang line here: with one,
// tsx fails to parse a module that uses import().
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Command } from "commander";

export type RegisterCog = (program: Command) => void;

const commands = join(dirname(fileURLToPath(import.meta.url)), "commands");

export async function cogProgram(): Promise<Command> {
  const program = new Command("cog")
    .description("Merge testbed facility operations: resource models, materializations, tasks, nodes")
    .showHelpAfterError("(run 'cog --help' for usage)");
  const groups = readdirSync(commands)
    .filter((f) => f.startsWith("cog-") && f.endsWith(".ts") && !f.endsWith(".test.ts"))
    .sort();
  for (const file of groups) {
    const mod = (await import(pathToFileURL(join(commands, file)).href)) as { register?: RegisterCog };
    if (typeof mod.register !== "function") {
      throw new Error(`cog: commands/${file} must export register(program: Command)`);
    }
    mod.register(program);
  }
  return program;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const program = await cogProgram();
  await program.parseAsync(process.argv);
}
