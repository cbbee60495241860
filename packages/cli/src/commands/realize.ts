// mrg realize --local <model.ts|model.py|xir.json> --facility <sample|facility.json|internet.json> [--json] [--best-effort]
// Realizes an experiment offline, without a portal: the engine runs here
// against a sample facility or a facility / resource internet JSON file, with
// nothing allocated, and prints the embedding (node → resource, link →
// waypoints with tags) or, with --json, the raw realization. `mrg realize`
// without --local asks a portal (commands/realization.ts); this adds --local.
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import type { Experiment, ResourceInternet } from "@merge/xir";
import type { Command } from "commander";
import { CliError, UsageError } from "../errors.ts";
import { loadTypeScript } from "../typescript.ts";

export interface LocalFlags {
  local?: boolean;
  facility?: string;
  json?: boolean;
  name?: string;
  bestEffort?: boolean;
}

export function registerRealizeLocal(program: Command): void {
  let cmd = program.commands.find((c) => c.name() === "realize");
  if (!cmd) {
    cmd = program
      .command("realize <model>")
      .description("realize an experiment")
      .option("--json", "print JSON")
      .action(() => {
        throw new CliError("mrg realize: only --local is available here");
      });
  }
  cmd
    .option("--local", "realize offline here, against --facility, reserving nothing")
    .option(
      "--facility <facility>",
      "with --local: where the facility model is, as for 'cog model show': facility.json, internet.json, facility.ts or sample:<name> (sample:phobos, sample:gen:<nodes>; a bare sample name like phobos works too)",
    )
    .option("--name <rlz.exp.proj>", "with --local: the realization's name");
  // With --local the portal command must not run: realize here, then end.
  cmd.hook("preAction", async (command) => {
    const flags = command.opts<LocalFlags>();
    if (!flags.local) return;
    const code = await runRealizeLocal(String(command.args[0] ?? ""), flags);
    await new Promise<void>((done) => process.stdout.write("", () => done()));
    process.exit(code);
  });
}

export async function runRealizeLocal(model: string, flags: LocalFlags): Promise<number> {
  // Loaded here, not at the top: every other mrg command starts faster without the engine and compiler.
  const { formatEmbedding, formatProblem, InternetError, prepareInternet, realize } = await import("@merge/realize");
  const { MODEL_SOURCE_FORMS } = await import("@merge/facility-model");
  try {
    if (!model) throw new UsageError("mrg realize --local: name a model (model.ts, model.py or XIR .json)");
    if (!flags.facility) {
      throw new UsageError(`mrg realize --local: --facility is required: ${MODEL_SOURCE_FORMS}`);
    }
    const experiment = await loadExperiment(model);
    const internet = await loadInternet(flags.facility);
    const ix = prepareInternet(internet);
    const r = realize(experiment, ix, undefined, {
      ...(flags.name ? { id: flags.name } : {}),
      ...(flags.bestEffort ? { bestEffort: true, maxProblems: 1000 } : {}),
    });
    if (!r.ok) {
      if (r.closest) {
        process.stdout.write(
          flags.json
            ? `${JSON.stringify(r.closest, null, 2)}\n`
            : `closest mapping found:\n${formatEmbedding(r.closest)}\n`,
        );
      }
      process.stderr.write(
        `mrg realize --local: ${experiment.name} cannot be realized on ${flags.facility}${r.closest ? "; the closest mapping leaves these unmet" : ""}:\n`,
      );
      for (const p of r.problems) process.stderr.write(`  ${formatProblem(p)}\n`);
      return 1;
    }
    process.stdout.write(
      flags.json ? `${JSON.stringify(r.realization, null, 2)}\n` : `${formatEmbedding(r.realization)}\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof CliError || err instanceof InternetError) {
      process.stderr.write(`${err.message}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
    throw err;
  }
}

async function loadExperiment(path: string): Promise<Experiment> {
  await loadTypeScript();
  const { compileFile, formatDiagnostic } = await import("@merge/model");
  if (extname(path) === ".json") {
    const { formatSchemaErrors, validateExperiment } = await import("@merge/xir");
    const doc = readJson(path);
    const v = validateExperiment(doc);
    if (!v.ok) throw new CliError(`${path}: not a valid XIR experiment:\n${formatSchemaErrors(v.errors)}`);
    return v.value;
  }
  const result = await compileFile(path);
  for (const d of result.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  if (!result.ok || !result.xir) throw new CliError(`mrg realize --local: ${path} does not compile`);
  return result.xir;
}

/**
 * The facility to realize on, in any form `cog model show` accepts (the same
 * loader); a bare sample name (`phobos`, `gen:40`) means `sample:<name>`.
 */
async function loadInternet(facility: string): Promise<ResourceInternet> {
  const { formatProblem, loadModel, MODEL_SOURCE_FORMS, ModelSourceError, SAMPLES } = await import(
    "@merge/facility-model"
  );
  const bare = SAMPLES[facility] !== undefined || /^(gen|internet):/.test(facility);
  if (!bare && !facility.startsWith("sample:") && !FILE_FORMS.has(extname(facility))) {
    throw new CliError(
      `--facility ${facility}: not a sample (${Object.keys(SAMPLES).join(", ")}) and not a .json file or facility module; give one of ${MODEL_SOURCE_FORMS}`,
    );
  }
  let loaded: Awaited<ReturnType<typeof loadModel>>;
  try {
    loaded = await loadModel(bare ? `sample:${facility}` : facility);
  } catch (err) {
    if (err instanceof ModelSourceError) throw new CliError(`--facility ${facility}: ${err.message}`);
    throw err;
  }
  if (loaded.kind === "invalid") {
    throw new CliError(
      `${facility}: not a valid facility model or resource internet:\n${loaded.problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`,
    );
  }
  if (loaded.kind === "internet") return loaded.internet;
  return { facilities: [loaded.facility], interconnects: [] };
}

const FILE_FORMS = new Set([".json", ".ts", ".mts", ".js", ".mjs"]);

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CliError(`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`${path}: not JSON: ${(err as Error).message}`);
  }
}
