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

/** The program with every command group found in `dir` (default: commands/ beside this file). */
export async function cogProgram(dir = commands): Promise<Command> {
  const program = new Command("cog")
    .description("Merge testbed facility operations: resource models, materializations, tasks, nodes")
    .showHelpAfterError("(run 'cog --help' for usage)");
  const groups = readdirSync(dir)
    .filter((f) => f.startsWith("cog-") && f.endsWith(".ts") && !f.endsWith(".test.ts"))
    .sort();
  for (const file of groups) {
    // One broken group must not take the others down: say so and go on without it.
    let mod: { register?: RegisterCog };
    try {
      mod = (await import(pathToFileURL(join(dir, file)).href)) as { register?: RegisterCog };
    } catch (e) {
      process.stderr.write(
        `cog: commands/${file} failed to load, its commands are unavailable: ${(e as Error).message}\n`,
      );
      continue;
    }
    if (typeof mod.register !== "function") {
      process.stderr.write(`cog: commands/${file} does not export register(program: Command); skipped\n`);
      continue;
    }
    mod.register(program);
  }
  return program;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const program = await cogProgram();
  await program.parseAsync(process.argv);
}
