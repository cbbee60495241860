// mrg push <model.ts|model.py|xir.json> <exp.proj>
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import type { Command } from "commander";
import {
  action,
  CliError,
  type OutputFlags,
  parseName,
  portalOptions,
  print,
  signedIn,
  UsageError,
} from "../client.ts";

export function registerPush(program: Command): void {
  portalOptions(
    program
      .command("push <model> <exp.proj>")
      .summary("push a model as the experiment's next revision")
      .description(
        "push a model (model.ts, model.py, or XIR .json) as the experiment's next revision; the portal compiles it",
      )
      .addHelpText(
        "after",
        `
Compile errors are printed as file:line:col and the exit status is 1.
Every push takes the experiment's next revision number, also a push that does
not compile: it is kept with its errors ('mrg show revision', 'mrg list revisions'),
and realizing needs a compiled revision.
Examples:
  mrg push examples/demo.ts demo.admin
  mrg push examples/python/dumbbell.py dumbbell.admin
  mrg compile examples/demo.ts        # check a model offline first`,
      ),
  ).action(
    action(async (model: string, id: string, f: OutputFlags & { portal?: string }) => {
      const [exp, proj] = parseName(id, ["experiment", "project"]) as [string, string];
      const ext = extname(model);
      const lang = ext === ".ts" || ext === ".mts" ? "ts" : ext === ".py" ? "py" : ext === ".json" ? "xir" : undefined;
      if (lang === undefined) throw new UsageError(`${model}: push a .ts or .py model, or an XIR .json file`);
      let source: string;
      try {
        source = readFileSync(model, "utf8");
      } catch (e) {
        throw new CliError(`cannot read ${model}: ${(e as Error).message}`);
      }
      const rev = await signedIn(f).push(proj, exp, source, lang, basename(model));
      if (f.json) print(f, rev, []);
      else {
        print(f, rev, ["number", "status", "lang", "nodes", "links", "created"]);
        for (const e of rev.errors)
          process.stderr.write(`${model}:${e.line ?? 0}:${e.column ?? 0}: error: ${e.message}\n`);
      }
      if (rev.status === "error") {
        const compiled = (await signedIn(f).revisions(proj, exp)).filter((r) => r.status === "compiled");
        const latest = compiled.at(-1)?.number;
        process.stderr.write(
          `revision ${rev.number} of ${id} did not compile; fix the model and push again\n` +
            `  (a failed push keeps its number too, with its errors; ${
              latest
                ? `the latest compiled revision is ${latest}: mrg realize rN.${id} ${latest}`
                : "no revision compiled yet"
            })\n`,
        );
        process.exitCode = 1;
      }
    }),
  );
}
