/**
 * TypeScript models from someone else (a portal's users): compiles model text
 * in a confined child (confinement.ts, the same confinement as Python models)
 * and returns the CompileResult. The child (run-typescript.ts) runs the whole
 * compile (the model under tsx, then validation, analysis, reticulation), so
 * nothing of the model runs, and no heavy compile work happens, in the caller.
 *
 * Inside, besides the namespaces, Node's permission model confines the
 * process too: it may read only the model, the scratch directory and the
 * modules the compile needs, and write only the scratch directory. Worker
 * threads and child processes stay allowed because tsx needs them (its loader
 * hooks run in a worker; esbuild is a child process); the namespace root holds
 * no program besides node, esbuild, setpriv and env, so a model that spawns
 * one gets nothing the sandbox does not already give it.
 *
 * Only the closure of what the compile imports is visible: this package, its
 * dependencies (@merge/xir, ajv, ...) and tsx with esbuild, each read-only at
 * its own path. Types are checked before, in the caller (typeCheckSource: in
 * memory, reading only the library; no model code runs in a type-check).
 */
import { existsSync, lstatSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CompileResult } from "./compile.ts";
import {
  type Confinement,
  type Limits,
  makeScratch,
  modelLimits,
  OUTPUT_LIMIT,
  removeScratch,
  requireConfinement,
  runConfined,
  workDir,
} from "./confinement.ts";
import type { Diagnostic } from "./diagnostics.ts";
import { typeCheckSource } from "./typecheck.ts";

export interface TypeScriptRunOptions {
  /** Wall-clock limit; default 30 s. */
  timeoutMs?: number;
  /** JavaScript heap limit; default 1024 MiB (a 55,000-node model needs some 600). */
  memoryMb?: number;
  /** Default `auto`: the host's confinement; `none` only with the unsafe opt-out (requireConfinement). */
  confinement?: "auto" | Confinement;
  /** Type-check first (default true): in this process, in memory (typeCheckSource), warm between calls. */
  typeCheck?: boolean;
}

export interface TypeScriptModelResult extends CompileResult {
  confinement: Confinement;
}

const RUNNER = fileURLToPath(new URL("./run-typescript.ts", import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
const PROJECT_MODULES = join(PACKAGE_DIR, "..", "..", "node_modules");
/** What the child imports: the modeling library and tsx (with esbuild). TypeScript's checker runs in the caller. */
const ROOT_MODULES = ["@merge/model", "tsx"];
const REPORT_LIMIT = 512 * 1024 * 1024;
const MODEL_FILE = "model.ts";

/** Compiles TypeScript model text confined; `filename` names it in diagnostics. */
export async function runTypeScriptSource(
  source: string,
  filename = "model.ts",
  opts: TypeScriptRunOptions = {},
): Promise<TypeScriptModelResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const memoryMb = opts.memoryMb ?? 1024;
  if (!(timeoutMs > 0) || !(memoryMb >= 64)) {
    throw new RangeError(
      `runTypeScriptSource: timeoutMs must be > 0 and memoryMb >= 64, got ${timeoutMs}, ${memoryMb}`,
    );
  }
  const confinement = requireConfinement(opts.confinement ?? "auto");
  // Types first, in this process: the checker reads only the text and the library (no model code runs).
  if (opts.typeCheck !== false) {
    const typeErrors = await typeCheckSource(source, filename);
    if (typeErrors.length) return { ok: false, diagnostics: typeErrors, confinement };
  }
  const scratch = makeScratch(confinement);
  try {
    // The model sits in the scratch directory; its imports of @merge/model resolve through this link.
    writeFileSync(join(scratch.work, MODEL_FILE), source);
    writeFileSync(join(scratch.work, "package.json"), '{"type":"module"}\n');
    symlinkSync(PROJECT_MODULES, join(scratch.work, "node_modules"), "dir");
    const work = workDir(confinement, scratch);
    const readOnly = readablePaths();
    const node = realpathSync(process.execPath);
    const tsx = join(PROJECT_MODULES, "tsx", "dist", "loader.mjs");
    const run = await runConfined({
      confinement,
      scratch,
      readOnly,
      limits: limitsFor(timeoutMs, memoryMb),
      command: [
        node,
        `--max-old-space-size=${memoryMb}`,
        "--stack-size=4000",
        "--experimental-permission",
        ...readOnly.map((p) => `--allow-fs-read=${p}`),
        `--allow-fs-read=${work}`,
        `--allow-fs-write=${work}`,
        "--allow-worker",
        "--allow-child-process",
        "--disable-warning=ExperimentalWarning",
        "--disable-warning=SecurityWarning",
        "--import",
        `file://${tsx}`,
        RUNNER,
        join(work, MODEL_FILE),
        filename,
      ],
      env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", HOME: work, TMPDIR: work },
      stopOnOutput: true,
    });
    return { ...interpret(run, filename, timeoutMs, memoryMb), confinement };
  } finally {
    removeScratch(scratch);
  }
}

function limitsFor(timeoutMs: number, memoryMb: number): Limits {
  // The heap plus room for buffers, tsx's WebAssembly lexer and esbuild; threads count as
  // processes: node's own (~12), tsx's hooks worker, esbuild's (Go).
  return modelLimits(timeoutMs, memoryMb + 1024, { processes: 96, openFiles: 256, reportBytes: REPORT_LIMIT });
}

let readable: string[] | undefined;

/** The system libraries node links, node itself, and the module closure of ROOT_MODULES (real paths and the links to them). */
export function readablePaths(): string[] {
  if (readable) return readable;
  const system = ["/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32"].filter((p) => existsSync(p));
  const paths = new Set<string>([...system, realpathSync(process.execPath), RUNNER]);
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const at = join(PROJECT_MODULES, name);
    if (!existsSync(at)) return; // an optional dependency for another platform
    paths.add(at);
    if (lstatSync(at).isSymbolicLink()) paths.add(realpathSync(at));
    const pkg = JSON.parse(readFileSync(join(at, "package.json"), "utf8")) as Record<string, unknown>;
    for (const field of ["dependencies", "optionalDependencies", "peerDependencies"]) {
      for (const dep of Object.keys((pkg[field] as Record<string, string> | undefined) ?? {})) visit(dep);
    }
  };
  for (const m of ROOT_MODULES) visit(m);
  readable = [...paths];
  return readable;
}

/** What run-typescript.ts writes on the result descriptor. */
type Report = CompileResult;

function interpret(
  run: Awaited<ReturnType<typeof runConfined>>,
  filename: string,
  timeoutMs: number,
  memoryMb: number,
): CompileResult {
  const fail = (code: string, message: string): CompileResult => ({
    ok: false,
    diagnostics: [{ severity: "error", code, message }],
  });
  const seconds = `${Number((timeoutMs / 1000).toFixed(3))} s`;
  if (run.outputTooLarge) {
    return fail(
      "model-output-limit",
      `${filename} printed more than ${OUTPUT_LIMIT / 1024 / 1024} MiB and was stopped`,
    );
  }
  if (run.reportTooLarge) return fail("model-too-large", "the experiment the model made is larger than 512 MiB of XIR");
  if (run.report.length > 0) {
    try {
      const report = JSON.parse(run.report) as Report;
      return withOutput(report, run.stdout + run.stderr);
    } catch {
      // fall through: a cut or garbled report is a crash
    }
  }
  if (run.timedOut || run.signal === "SIGXCPU") {
    return fail("model-timeout", `${filename} did not finish within ${seconds} (an endless loop?)`);
  }
  const text = `${run.stdout}${run.stderr}`;
  if (/heap out of memory|Allocation failed|allocation failed/i.test(text) || run.signal === "SIGABRT") {
    return fail("model-memory", `${filename} ran out of memory (limit ${memoryMb} MiB)`);
  }
  const tail = run.stderr.trimEnd().split("\n").slice(-5).join("\n");
  return fail(
    "model-crashed",
    `the model compiler exited (${run.signal ?? `code ${run.code}`}) without a result${tail ? `: ${tail}` : ""}`,
  );
}

/** What the model printed, as a warning (like the Python runner's `model-output`). */
function withOutput(r: CompileResult, printed: string): CompileResult {
  const text = printed.trim();
  if (text.length === 0) return r;
  const lines = text.split("\n");
  const shown = lines.slice(0, 20).join("\n");
  const more = lines.length > 20 ? `\n... (${lines.length - 20} more lines in the output)` : "";
  const d: Diagnostic = { severity: "warning", code: "model-output", message: `the model printed:\n${shown}${more}` };
  return { ...r, diagnostics: [...r.diagnostics, d] };
}
