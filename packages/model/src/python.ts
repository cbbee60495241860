/**
 * Python models: runs an MX v1 `mergexp` script and returns the XIR experiment
 * it describes, un-reticulated; the compiler then validates, analyses and
 * reticulates it exactly as it does a TypeScript model.
 *
 * A model is code from whoever pushed it, so it runs confined (confinement.ts,
 * shared with the TypeScript runner): python3 with a time limit, rlimits, a
 * fresh scratch directory (removed afterwards) and, as root or in a user
 * namespace, fresh network/mount/pid namespaces with a root of its own holding
 * only /usr, /lib*, /bin and the package, and an unprivileged uid. Without
 * namespaces (`hooks`) an audit hook inside Python refuses sockets (best
 * effort). Both ways an audit hook also refuses processes, native code and
 * files outside the standard library, the package and the working directory.
 * The report travels back on file descriptor 3, so nothing the script prints
 * can corrupt it.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Experiment } from "@merge/xir";
import {
  availableConfinement,
  type Confinement,
  confinedCommand,
  type Limits,
  makeScratch,
  modelLimits,
  OUTPUT_LIMIT,
  type Run,
  removeScratch,
  runConfined,
  workDir,
} from "./confinement.ts";
import { type Diagnostic, ModelError, type SourceLocation } from "./diagnostics.ts";

/** The `mergexp` package and the script that runs a model with it (seen at the same path inside the sandbox). */
export const PYTHON_DIR = fileURLToPath(new URL("../python", import.meta.url));

/** How a script is kept from the network and the host: a confinement of confinement.ts, or only Python's audit hooks. */
export type Sandbox = "namespace" | "userns" | "hooks";

export interface PythonRunOptions {
  /** Wall-clock limit; default 30 s (generous: a busy host runs a 10,000-node script in seconds). */
  timeoutMs?: number;
  /** Address-space limit; default 512 MiB. */
  memoryMb?: number;
  /** Interpreter; default `$MERGE_PYTHON`, then `/usr/bin/python3`, then `python3` on PATH. */
  python?: string;
  /** Default `auto`: the host's confinement (availableConfinement), else `hooks`. */
  sandbox?: "auto" | Sandbox;
}

export interface PythonModelResult {
  experiment: Experiment;
  /** Warnings (suspicious values, what the script printed). Errors are thrown as ModelError. */
  diagnostics: Diagnostic[];
  /** What the script printed: stdout, then stderr, each cut at 64 KiB. */
  output: string;
  /**
   * XIR paths (`nodes[3]`, `links[0].constraints[1]`) to the script line that
   * made them, in the shape of the compiler's OriginMap.
   */
  origins: Map<string, { location: SourceLocation }>;
  sandbox: Sandbox;
}

/** Lines of the script's output repeated in the `model-output` warning. */
const PRINTED_LINES = 20;
const REPORT_LIMIT = 512 * 1024 * 1024;
/** Where the interpreter and its standard library live: all a confined script sees besides the package and /work. */
const SYSTEM_PATHS = ["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin"];

/** Runs the Python model in `file`. Throws ModelError, located in the script, when it fails. */
export async function runPythonModel(file: string, opts: PythonRunOptions = {}): Promise<PythonModelResult> {
  let source: Buffer;
  try {
    source = readFileSync(file);
  } catch (e) {
    throw new ModelError([
      { severity: "error", code: "model-unreadable", message: `cannot read ${file}: ${(e as Error).message}` },
    ]);
  }
  return runPythonSource(source, file, opts);
}

/** Runs a Python model given as text (e.g. a pushed revision); `file` names it in diagnostics. */
export async function runPythonSource(
  source: string | Buffer,
  file: string,
  opts: PythonRunOptions = {},
): Promise<PythonModelResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const memoryMb = opts.memoryMb ?? 512;
  if (!(timeoutMs > 0) || !(memoryMb >= 64)) {
    throw new RangeError(`runPythonSource: timeoutMs must be > 0 and memoryMb >= 64, got ${timeoutMs}, ${memoryMb}`);
  }
  const sandbox = chooseSandbox(opts.sandbox ?? "auto");
  const python = findPython(opts.python, sandbox);
  const scratch = makeScratch(confinementOf(sandbox));
  try {
    const args = [
      "-s",
      "-S",
      "-B",
      join(PYTHON_DIR, "run_model.py"),
      "--filename",
      file,
      "--result-fd",
      "3",
      "--memory-mb",
      String(memoryMb),
      "--cpu-seconds",
      String(Math.ceil(timeoutMs / 1000) + 1),
    ];
    if (sandbox === "hooks") args.push("--no-sockets");
    // Only there is the uid the run's own, so RLIMIT_NPROC bounds its threads (pythonLimits).
    if (sandbox === "namespace") args.push("--threads");
    const home = workDir(confinementOf(sandbox), scratch);
    const run = await runConfined({
      confinement: confinementOf(sandbox),
      scratch,
      readOnly: readOnlyPaths(),
      // run_model.py sets its own tighter limits (address space, no processes) once started.
      limits: pythonLimits(timeoutMs, memoryMb),
      command: [python, ...args],
      // A clean environment replaces -I's -E, so that hashing is seeded and
      // set iteration (hence the XIR) is the same on every run.
      env: {
        PATH: "/usr/local/bin:/usr/bin:/bin",
        LANG: "C.UTF-8",
        LC_ALL: "C.UTF-8",
        HOME: home,
        TMPDIR: home,
        PYTHONPATH: PYTHON_DIR,
        PYTHONHASHSEED: "0",
        PYTHONIOENCODING: "utf-8",
        PYTHONDONTWRITEBYTECODE: "1",
      },
      stdin: source,
      interrupt: "SIGINT",
      stopOnOutput: true,
    });
    return interpret(run, file, { timeoutMs, memoryMb, sandbox });
  } finally {
    removeScratch(scratch);
  }
}

function confinementOf(sandbox: Sandbox): Confinement {
  return sandbox === "hooks" ? "none" : sandbox;
}

function readOnlyPaths(): string[] {
  return [...SYSTEM_PATHS.filter((p) => existsSync(p)), PYTHON_DIR];
}

function pythonLimits(timeoutMs: number, memoryMb: number): Limits {
  return modelLimits(timeoutMs, memoryMb + 256, { processes: 16, openFiles: 64, reportBytes: REPORT_LIMIT });
}

function chooseSandbox(want: "auto" | Sandbox): Sandbox {
  if (want === "hooks") return "hooks";
  const have = availableConfinement();
  if (want === "auto") return have === "none" ? "hooks" : have;
  if (have === want || (want === "userns" && have === "namespace")) return want;
  throw new Error(
    `runPythonSource: the ${want} sandbox is not available here (${have}); use sandbox 'hooks' or 'auto'`,
  );
}

const pythons = new Map<string, string>();

/** The first interpreter that runs (confined too, for a namespace sandbox) and is Python >= 3.9. */
function findPython(explicit: string | undefined, sandbox: Sandbox): string {
  const key = `${explicit ?? ""}\0${sandbox}`;
  const known = pythons.get(key);
  if (known) return known;
  const candidates = explicit ? [explicit] : [process.env.MERGE_PYTHON, "/usr/bin/python3", "python3"];
  const tried: string[] = [];
  const runner = JSON.stringify(join(PYTHON_DIR, "run_model.py"));
  // Also proves the runner is readable (by the sandbox's uid, in its own
  // root), and resolves the interpreter to a path, which the clean PATH of a
  // run need not find.
  const check = `import sys; open(${runner}).close(); print(sys.version_info >= (3, 9), sys.executable)`;
  const confinement = confinementOf(sandbox);
  for (const c of candidates) {
    if (!c) continue;
    tried.push(c);
    const scratch = makeScratch(confinement);
    try {
      const limits = pythonLimits(10_000, 256);
      const probe = confinedCommand(confinement, scratch, readOnlyPaths(), limits, [c, "-s", "-S", "-c", check]);
      const r = spawnSync(probe[0] as string, probe.slice(1), { encoding: "utf8", cwd: scratch.work, timeout: 10_000 });
      const [ok, executable] = r.status === 0 ? r.stdout.trim().split(" ", 2) : [];
      if (ok === "True" && executable) {
        pythons.set(key, executable);
        return executable;
      }
    } finally {
      removeScratch(scratch);
    }
  }
  throw new ModelError([
    {
      severity: "error",
      code: "python-missing",
      message: `no usable Python 3.9+ interpreter that can read ${join(PYTHON_DIR, "run_model.py")} (tried ${tried.join(", ")}${sandbox === "hooks" ? "" : " confined, in a root of /usr, /lib and the package: the interpreter must live under /usr or /bin"}); set MERGE_PYTHON`,
    },
  ]);
}

/** What run_model.py writes on the result descriptor. */
type Report =
  | {
      ok: true;
      experiment: Experiment;
      sourceMap: Record<string, [number, number]>;
      warnings: PyWarning[];
    }
  | {
      ok: false;
      error: { code: string; message: string; line: number | null; column: number | null };
      /** Further findings of the same kind (the script's other v0 idioms). */
      related?: { code: string; message: string; line: number | null; column: number | null }[];
      warnings: PyWarning[];
    };
interface PyWarning {
  message: string;
  line: number | null;
  column: number | null;
}

function interpret(
  run: Run,
  file: string,
  limits: { timeoutMs: number; memoryMb: number; sandbox: Sandbox },
): PythonModelResult {
  const at = (line: number | null, column: number | null): SourceLocation | undefined =>
    line ? { file, line, column: column ?? 1 } : undefined;
  const seconds = `${Number((limits.timeoutMs / 1000).toFixed(3))} s`;
  const output = [run.stdout, run.stderr].filter((s) => s.length > 0).join("");
  let report: Report | undefined;
  if (run.report.length > 0 && !run.reportTooLarge) {
    try {
      report = JSON.parse(run.report) as Report;
    } catch {
      report = undefined;
    }
  }
  const fail = (code: string, message: string, location?: SourceLocation, extra: Diagnostic[] = []): never => {
    throw new ModelError([{ severity: "error", code, message, location }, ...extra]);
  };
  if (run.outputTooLarge) {
    fail("model-output-limit", `the script printed more than ${OUTPUT_LIMIT / 1024 / 1024} MiB and was stopped`);
  }
  if (!report) {
    if (run.reportTooLarge) fail("model-too-large", "the experiment the script made is larger than 512 MiB of XIR");
    if (run.timedOut || run.signal === "SIGXCPU") {
      fail("python-timeout", `the script did not finish within ${seconds} (an endless loop?)`);
    }
    if (run.signal === "SIGKILL" || run.signal === "SIGSEGV") {
      fail(
        "python-memory",
        `the script was killed (${run.signal}); it may have exceeded ${limits.memoryMb} MiB of memory`,
      );
    }
    fail(
      "python-crashed",
      `python exited (${run.signal ?? `code ${run.code}`}) without a result${run.stderr ? `: ${lastLines(run.stderr)}` : ""}`,
    );
  }
  const r = report as Report;
  const warnings: Diagnostic[] = r.warnings.map((w) => ({
    severity: "warning",
    code: "mergexp-warning",
    message: w.message,
    location: at(w.line, w.column),
  }));
  if (output.length > 0) {
    const lines = output.trimEnd().split("\n");
    const shown = lines.slice(0, PRINTED_LINES).join("\n");
    const more = lines.length > PRINTED_LINES ? `\n... (${lines.length - PRINTED_LINES} more lines in the output)` : "";
    warnings.push({ severity: "warning", code: "model-output", message: `the script printed:\n${shown}${more}` });
  }
  if (!r.ok) {
    const { code, message, line, column } = r.error;
    if (code === "python-interrupted" && run.timedOut) {
      fail(
        "python-timeout",
        `the script did not finish within ${seconds} (an endless loop?); it was running this line`,
        at(line, column),
        warnings,
      );
    }
    if (code === "python-memory") {
      fail("python-memory", `${message} (limit ${limits.memoryMb} MiB)`, at(line, column), warnings);
    }
    const related = (r.related ?? []).map(
      (d): Diagnostic => ({ severity: "error", code: d.code, message: d.message, location: at(d.line, d.column) }),
    );
    fail(code, message, at(line, column), [...related, ...warnings]);
  }
  const ok = r as Extract<Report, { ok: true }>;
  const origins = new Map<string, { location: SourceLocation }>();
  for (const [path, [line, column]] of Object.entries(ok.sourceMap))
    origins.set(path, { location: { file, line, column } });
  return { experiment: ok.experiment, diagnostics: warnings, output, origins, sandbox: limits.sandbox };
}

function lastLines(text: string): string {
  return text.trimEnd().split("\n").slice(-5).join("\n");
}
