/**
 * Python models: runs an MX v1 `mergexp` script and returns the XIR experiment
 * it describes, un-reticulated; the compiler then validates, analyses and
 * reticulates it exactly as it does a TypeScript model.
 *
 * A model is code from whoever pushed it, so it runs contained: python3 in a
 * subprocess with a time limit, an address-space limit, a fresh temporary
 * working directory (removed afterwards) and no network. As root that means
 * fresh network and mount namespaces, a file system of its own (confine.sh:
 * /usr, /lib, the package, the working directory) and the unprivileged
 * `nobody` user; otherwise an audit hook inside Python refuses sockets (best
 * effort). Both ways an audit hook also refuses processes, native code and
 * files outside the standard library, the package and the working directory.
 * The report travels back on file descriptor 3, so nothing the script prints
 * can corrupt it.
 */
import { spawn, spawnSync } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Experiment } from "@merge/xir";
import { type Diagnostic, ModelError, type SourceLocation } from "./diagnostics.ts";

/** The `mergexp` package and the script that runs a model with it. */
export const PYTHON_DIR = fileURLToPath(new URL("../python", import.meta.url));
/** Where the package is seen from inside the namespace sandbox's own root. */
const CONFINED_DIR = "/mergexp";

/** How a script is kept from the network and the host. */
export type Sandbox = "namespace" | "hooks";

export interface PythonRunOptions {
  /** Wall-clock limit; default 30 s (generous: a busy host runs a 10,000-node script in seconds). */
  timeoutMs?: number;
  /** Address-space limit; default 512 MiB. */
  memoryMb?: number;
  /** Interpreter; default `$MERGE_PYTHON`, then `/usr/bin/python3`, then `python3` on PATH. */
  python?: string;
  /** Default `auto`: `namespace` when running as root and it works, else `hooks`. */
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

const NOBODY = 65534;
const OUTPUT_LIMIT = 64 * 1024;
/** Lines of the script's output repeated in the `model-output` warning. */
const PRINTED_LINES = 20;
const REPORT_LIMIT = 512 * 1024 * 1024;
/** After the wall-clock limit: SIGINT (Python reports the line it was on), then SIGKILL. */
const KILL_GRACE_MS = 1000;

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
  const place = makePlace(sandbox);
  try {
    const args = [
      "-s",
      "-S",
      "-B",
      join(packageDir(sandbox), "run_model.py"),
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
    const run = await execute([...confine(sandbox, place), python, ...args], place, sandbox, source, timeoutMs);
    return interpret(run, file, { timeoutMs, memoryMb, sandbox });
  } finally {
    rmSync(place.dir, { recursive: true, force: true });
  }
}

/** A run's temporary directory: `work` (the script's working directory) and `root` (its own root). */
interface Place {
  dir: string;
  work: string;
  root: string;
}

function makePlace(sandbox: Sandbox): Place {
  const dir = mkdtempSync(join(tmpdir(), "mergexp-"));
  const work = join(dir, "work");
  const root = join(dir, "root");
  mkdirSync(work, { mode: 0o700 });
  mkdirSync(root, { mode: 0o755 });
  if (sandbox === "namespace") chownSync(work, NOBODY, NOBODY);
  return { dir, work, root };
}

function packageDir(sandbox: Sandbox): string {
  return sandbox === "namespace" ? CONFINED_DIR : PYTHON_DIR;
}

/** The command prefix that contains a script: fresh namespaces, its own root, then `nobody`. */
function confine(sandbox: Sandbox, place: Place): string[] {
  if (sandbox === "hooks") return [];
  return [
    "unshare",
    "--net",
    "--mount",
    "--propagation",
    "private",
    "--",
    "/bin/sh",
    join(PYTHON_DIR, "confine.sh"),
    place.root,
    place.work,
    PYTHON_DIR,
    "--",
  ];
}

let namespaceWorks: boolean | undefined;

function chooseSandbox(want: "auto" | Sandbox): Sandbox {
  if (want === "hooks") return "hooks";
  if (namespaceWorks === undefined) {
    const probe = ["--net", "--mount", "--propagation", "private", "--", "true"];
    namespaceWorks = process.getuid?.() === 0 && spawnSync("unshare", probe).status === 0;
  }
  if (namespaceWorks) return "namespace";
  if (want === "namespace") {
    throw new Error("runPythonSource: the namespace sandbox needs root and unshare; use sandbox 'hooks' or 'auto'");
  }
  return "hooks";
}

const pythons = new Map<string, string>();

/** The first interpreter that runs (as `nobody` too, for the namespace sandbox) and is Python >= 3.9. */
function findPython(explicit: string | undefined, sandbox: Sandbox): string {
  const key = `${explicit ?? ""}\0${sandbox}`;
  const known = pythons.get(key);
  if (known) return known;
  const candidates = explicit ? [explicit] : [process.env.MERGE_PYTHON, "/usr/bin/python3", "python3"];
  const tried: string[] = [];
  const runner = JSON.stringify(join(packageDir(sandbox), "run_model.py"));
  // Also proves the runner is readable (by `nobody`, in its own root, for the
  // namespace sandbox), and resolves the interpreter to a path, which the
  // clean PATH of a run need not find.
  const check = `import sys; open(${runner}).close(); print(sys.version_info >= (3, 9), sys.executable)`;
  for (const c of candidates) {
    if (!c) continue;
    tried.push(c);
    const place = makePlace(sandbox);
    try {
      const probe = [...confine(sandbox, place), c, "-s", "-S", "-c", check];
      const r = spawnSync(probe[0] as string, probe.slice(1), { encoding: "utf8", cwd: place.work, timeout: 10_000 });
      const [ok, executable] = r.status === 0 ? r.stdout.trim().split(" ", 2) : [];
      if (ok === "True" && executable) {
        pythons.set(key, executable);
        return executable;
      }
    } finally {
      rmSync(place.dir, { recursive: true, force: true });
    }
  }
  throw new ModelError([
    {
      severity: "error",
      code: "python-missing",
      message: `no usable Python 3.9+ interpreter that can read ${join(PYTHON_DIR, "run_model.py")} (tried ${tried.join(", ")}${sandbox === "namespace" ? " as user nobody in a root of /usr, /lib and the package: the interpreter must live under /usr or /bin" : ""}); set MERGE_PYTHON`,
    },
  ]);
}

interface Run {
  report: string;
  reportTooLarge: boolean;
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

function execute(
  command: string[],
  place: Place,
  sandbox: Sandbox,
  source: string | Buffer,
  timeoutMs: number,
): Promise<Run> {
  const home = sandbox === "namespace" ? "/work" : place.work;
  return new Promise((resolve, reject) => {
    const child = spawn(command[0] as string, command.slice(1), {
      cwd: place.work,
      // A clean environment replaces -I's -E, so that hashing is seeded and
      // set iteration (hence the XIR) is the same on every run.
      env: {
        PATH: "/usr/local/bin:/usr/bin:/bin",
        LANG: "C.UTF-8",
        LC_ALL: "C.UTF-8",
        HOME: home,
        TMPDIR: home,
        PYTHONPATH: packageDir(sandbox),
        PYTHONHASHSEED: "0",
        PYTHONIOENCODING: "utf-8",
        PYTHONDONTWRITEBYTECODE: "1",
      },
      stdio: ["pipe", "pipe", "pipe", "pipe"],
    });
    const out = collector(OUTPUT_LIMIT);
    const err = collector(OUTPUT_LIMIT);
    const report = collector(REPORT_LIMIT);
    child.stdout?.on("data", out.add);
    child.stderr?.on("data", err.add);
    const fd3 = child.stdio[3] as NodeJS.ReadableStream | null;
    fd3?.on("data", (chunk: Buffer) => {
      report.add(chunk);
      if (report.overflowed) child.kill("SIGKILL");
    });
    fd3?.on("error", () => {});
    child.stdin?.on("error", () => {}); // the script may exit before reading all of stdin
    child.stdin?.end(source);
    let timedOut = false;
    let kill: NodeJS.Timeout | undefined;
    const interrupt = setTimeout(() => {
      timedOut = true;
      child.kill("SIGINT");
      kill = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(interrupt);
      clearTimeout(kill);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(interrupt);
      clearTimeout(kill);
      resolve({
        report: report.text(),
        reportTooLarge: report.overflowed,
        stdout: out.text(),
        stderr: err.text(),
        code,
        signal,
        timedOut,
      });
    });
  });
}

function collector(limit: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  const c = {
    overflowed: false,
    add: (chunk: Buffer) => {
      if (size + chunk.length > limit) {
        c.overflowed = true;
        chunks.push(chunk.subarray(0, Math.max(0, limit - size)));
        size = limit;
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
    },
    text: () => Buffer.concat(chunks).toString("utf8") + (c.overflowed ? "\n[... cut]" : ""),
  };
  return c;
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
