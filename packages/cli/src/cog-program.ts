// cog: the command line of facility operators. Every command group is a module
// commands/cog-<group>.ts exporting register(program); this program finds them
// itself, so a new group is one new file and no edit here.
// cog.ts runs it.
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Command } from "commander";
import { helpAfterErrors, usageExits } from "./commands/usage.ts";

export type RegisterCog = (program: Command) => void;

const commands = join(dirname(fileURLToPath(import.meta.url)), "commands");

/** The program with every command group found in `dir` (default: commands/ beside this file). */
export async function cogProgram(dir = commands): Promise<Command> {
  const program = usageExits(
    new Command("cog").description(
      "Merge testbed facility operations: resource models, materializations, tasks, nodes",
    ),
  ).addHelpText(
    "after",
    `
On call (the store is npm start's by default; --store URL or $COG_STORE for another):
  cog list mz                          # materializations and their progress
  cog list tasks                       # work pending or in error
  cog show tasks r1.demo.admin         # the actions in error, with their messages
  cog clear r1.demo.admin              # retry them
  cog list nodes                       # nodes no worker is driving to their target state
  cog model check facility.json        # validate a resource model

Exit status: 0 ok, 1 failed, 2 usage error. List and show commands take --json.`,
  );
  const groups = readdirSync(dir)
    .filter((f) => f.startsWith("cog-") && f.endsWith(".ts") && !f.endsWith(".test.ts"))
    .sort();
  for (const file of groups) {
    // One broken group must not take the others down: say so and go on without it.
    let mod: { register?: RegisterCog };
    try {
      // The literal pattern lets the CLI's bundler include every group of commands/.
      mod = (await (dir === commands ? import(`./commands/${file}`) : import(pathToFileURL(join(dir, file)).href))) as {
        register?: RegisterCog;
      };
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
  helpAfterErrors(program);
  return program;
}
