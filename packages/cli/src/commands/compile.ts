// mrg compile <model.ts|model.py> [--out file] [--graph] [--canonical]
// XIR goes to stdout (or --out) as pretty JSON with sorted keys (--canonical:
// the compact canonical form that revisions are hashed over); diagnostics go to
// stderr as `file:line:col: severity: message [code]`; exit status 1 on errors.
import { writeFileSync } from "node:fs";
import { relative } from "node:path";
import type { Diagnostic } from "@merge/model";
import type { Command } from "commander";
import { loadTypeScript } from "../typescript.ts";

export interface CompileFlags {
  out?: string;
  graph?: boolean;
  canonical?: boolean;
}

export function registerCompile(program: Command): void {
  program
    .command("compile <model>")
    .description("compile a model (model.ts or model.py) to XIR JSON")
    .option("--out <file>", "write XIR to a file instead of stdout")
    .option("--graph", "emit a node/link graph JSON for the web UI instead of XIR")
    .option("--canonical", "emit compact canonical JSON (sorted keys, no whitespace)")
    .action(async (model: string, flags: CompileFlags) => {
      process.exitCode = await runCompile(model, flags);
    });
}

export async function runCompile(model: string, flags: CompileFlags): Promise<number> {
  // Loaded here, not at the top: every other mrg command starts faster without the compiler.
  await loadTypeScript();
  const { compileFile, formatDiagnostic, toGraph } = await import("@merge/model");
  const { canonicalJSON } = await import("@merge/xir");
  // A type-check server keeps the TypeScript compiler warm between runs (MERGE_TYPECHECK_SERVER=0: none).
  const result = await compileFile(model, { typeCheckServer: process.env.MERGE_TYPECHECK_SERVER !== "0" });
  for (const d of result.diagnostics) process.stderr.write(`${formatDiagnostic(relativeTo(d))}\n`);
  if (!result.ok || !result.xir) {
    const errors = result.diagnostics.filter((d) => d.severity === "error").length;
    process.stderr.write(`mrg compile: ${model}: ${errors} error(s)\n`);
    return 1;
  }
  const doc = flags.graph ? toGraph(result.xir) : result.xir;
  const canonical = canonicalJSON(doc);
  const text = flags.canonical ? `${canonical}\n` : `${JSON.stringify(JSON.parse(canonical), null, 2)}\n`;
  if (flags.out) writeFileSync(flags.out, text);
  else process.stdout.write(text);
  return 0;
}

function relativeTo(d: Diagnostic): Diagnostic {
  if (!d.location) return d;
  const rel = relative(process.cwd(), d.location.file);
  return { ...d, location: { ...d.location, file: rel.startsWith("..") ? d.location.file : rel } };
}
