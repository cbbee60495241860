/**
 * Confinement: how every model program (TypeScript, Python, any kind added
 * later) runs, since a model is code from whoever pushed it. One mechanism for
 * all runners:
 *
 * - `namespace` (running as root): fresh network, mount and pid namespaces
 *   (`unshare`), a root of its own built by confine.sh (read-only binds of
 *   only what the runner needs, the scratch directory at CONFINED_WORK), a dedicated
 *   unprivileged uid per run (not shared with any other process, so the
 *   process limit is the run's own), no capabilities, no_new_privs.
 * - `userns` (not root, where the kernel allows unprivileged user
 *   namespaces): the same, inside `unshare --map-root-user`; the run keeps the
 *   portal's uid outside the namespace (no uid switch is possible there).
 * - `none`: neither works. Model programs are then refused (ConfinementError)
 *   unless MERGE_UNSAFE_UNCONFINED_MODELS=1 is set, which runs them with only
 *   the runners' in-language guards (Python's audit hook, Node's permission
 *   model) and rlimits: unsafe for a shared portal.
 *
 * Limits in every mechanism: wall-clock time (then the whole process group is
 * killed; in a pid namespace, killing its init kills everything in it), death
 * with the thread that started the run (PR_SET_PDEATHSIG), rlimits
 * set by `prlimit` (CPU seconds, data segment, file size, open files, processes,
 * no core dumps), and a cap on what the program prints and reports.
 */
import { spawn, spawnSync } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { threadId } from "node:worker_threads";
import { MergeError } from "@merge/xir/errors";

export type Confinement = "namespace" | "userns" | "none";

/** The env variable that allows running model programs unconfined (unsafe; for a single-user portal). */
export const UNSAFE_ENV = "MERGE_UNSAFE_UNCONFINED_MODELS";

const CONFINE_SH = fileURLToPath(new URL("./confine.sh", import.meta.url));

/** Thrown when no confinement works here and the unsafe opt-out is not set. */
export class ConfinementError extends MergeError<"model"> {
  constructor(message: string) {
    super("model", "confinement", message);
  }
}

let detected: Confinement | undefined;

/** The strongest confinement this host offers (probed once per process). */
export function availableConfinement(): Confinement {
  if (detected !== undefined) return detected;
  const probe = (args: string[]) => spawnSync("unshare", [...args, "--", "true"], { timeout: 10_000 }).status === 0;
  const base = ["--net", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private"];
  if (process.getuid?.() === 0 && probe(base)) detected = "namespace";
  else if (probe(["--map-root-user", ...base])) detected = "userns";
  else detected = "none";
  return detected;
}

/** The confinement runs will use: what is available, or an error when that is none and the opt-out is not set. */
export function requireConfinement(want: "auto" | Confinement = "auto"): Confinement {
  const have = availableConfinement();
  if (want !== "auto" && want !== "none" && want !== have && !(want === "userns" && have === "namespace")) {
    throw new ConfinementError(`the ${want} confinement is not available here (this host offers: ${have})`);
  }
  const chosen = want === "auto" ? have : want;
  if (chosen === "none" && process.env[UNSAFE_ENV] !== "1") {
    throw new ConfinementError(
      `model programs cannot be confined here (no root and no unprivileged user namespaces), so they are not run; push XIR instead, or set ${UNSAFE_ENV}=1 to run them unconfined (unsafe unless every user is trusted)`,
    );
  }
  return chosen;
}

/** One line for the start-up log: which confinement model programs get. */
export function describeConfinement(): string {
  const have = availableConfinement();
  if (have === "namespace") {
    return "model programs run confined: own net/mount/pid namespaces, a private read-only root, a dedicated unprivileged uid, no capabilities, no_new_privs, rlimits";
  }
  if (have === "userns") {
    return "model programs run confined: unprivileged user namespace with own net/mount/pid namespaces, a private read-only root, no capabilities, no_new_privs, rlimits";
  }
  return process.env[UNSAFE_ENV] === "1"
    ? `model programs run UNCONFINED (${UNSAFE_ENV}=1): only in-language guards and rlimits; unsafe for a shared portal`
    : `model programs are refused: no confinement is possible here (needs root or unprivileged user namespaces); set ${UNSAFE_ENV}=1 to run them unconfined (unsafe)`;
}

/** Printing more than this stops a model: none has a reason to print megabytes. */
export const OUTPUT_LIMIT = 8 * 1024 * 1024;

export interface Limits {
  /** Wall-clock limit. */
  timeoutMs: number;
  /** CPU seconds (RLIMIT_CPU). */
  cpuSeconds: number;
  /** Data segment bytes (RLIMIT_DATA: heap and anonymous memory; unlike RLIMIT_AS it leaves V8's and WebAssembly's reservations alone). */
  dataBytes: number;
  /** Largest file the program may write (RLIMIT_FSIZE). */
  fileBytes: number;
  /** Processes and threads of the run's uid (RLIMIT_NPROC; namespace confinement only, where the uid is the run's own). */
  processes: number;
  /** Open files (RLIMIT_NOFILE). */
  openFiles: number;
  /** What the program may print on stdout plus stderr before it is stopped. */
  outputBytes: number;
  /** What it may report on the result descriptor (fd 3). */
  reportBytes: number;
}

/**
 * A model run's limits: what every runner shares (CPU a little over the wall clock, 16 MiB files,
 * the output cap), plus what differs by runtime (memory beyond the heap, processes, files, report size).
 */
export function modelLimits(
  timeoutMs: number,
  dataMb: number,
  runtime: { processes: number; openFiles: number; reportBytes: number },
): Limits {
  return {
    timeoutMs,
    cpuSeconds: Math.ceil(timeoutMs / 1000) + 2,
    dataBytes: dataMb * 1024 * 1024,
    fileBytes: 16 * 1024 * 1024,
    outputBytes: OUTPUT_LIMIT,
    ...runtime,
  };
}

/** A run's temporary directory: `work` (the program's working directory, CONFINED_WORK inside) and `root` (its own root). */
export interface Scratch {
  dir: string;
  work: string;
  root: string;
  /** The uid the program runs as (namespace confinement), or undefined. */
  uid: number | undefined;
}

/** Dedicated uids, far above any distribution's range; each run gets its own (by process and counter). */
const UID_BASE = 3_000_000;
const UID_SPAN = 1_000_000;
let runs = 0;

/**
 * Every scratch directory starts with this, then the pid and thread id that
 * made it (tests look for leftovers by it; removeThreadScratch cleans up after
 * a thread that was terminated mid-run).
 */
export const SCRATCH_PREFIX = "merge-model-";

const scratchPrefix = (thread: number) => `${SCRATCH_PREFIX}${process.pid}-${thread}-`;

export function makeScratch(confinement: Confinement): Scratch {
  const dir = mkdtempSync(join(tmpdir(), scratchPrefix(threadId)));
  const work = join(dir, "work");
  const root = join(dir, "root");
  mkdirSync(work, { mode: 0o700 });
  mkdirSync(root, { mode: 0o755 });
  let uid: number | undefined;
  if (confinement === "namespace") {
    uid = UID_BASE + ((process.pid * 997 + runs++) % UID_SPAN);
    chownSync(work, uid, uid);
  }
  return { dir, work, root, uid };
}

export function removeScratch(s: Scratch): void {
  rmSync(s.dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Removes what runs of worker thread `thread` left behind (it was terminated, so its own clean-up never ran). */
export function removeThreadScratch(thread: number): void {
  for (const d of readdirSync(tmpdir())) {
    if (d.startsWith(scratchPrefix(thread))) rmSync(join(tmpdir(), d), { recursive: true, force: true, maxRetries: 3 });
  }
}

/** What every confined root holds besides the runner's own paths: the two tools confine.sh ends with. */
const CONFINE_TOOLS = ["/usr/bin/setpriv", "/usr/bin/env"];

/**
 * The command line that runs `command` confined: limits, namespaces, the
 * private root holding `readOnly` (absolute host paths, seen at the same
 * paths inside) and the scratch directory at CONFINED_WORK.
 */
export function confinedCommand(
  confinement: Confinement,
  scratch: Scratch,
  readOnly: readonly string[],
  limits: Limits,
  command: readonly string[],
): string[] {
  const rlimits = [
    // Dies with the thread that started it (a compile thread terminated, a portal killed):
    // and with it, through unshare --kill-child, everything in the run's pid namespace.
    "setpriv",
    "--pdeathsig",
    "KILL",
    "--",
    "prlimit",
    `--cpu=${limits.cpuSeconds}:${limits.cpuSeconds + 1}`,
    `--data=${limits.dataBytes}`,
    `--fsize=${limits.fileBytes}`,
    `--nofile=${limits.openFiles}`,
    "--core=0",
    ...(confinement === "namespace" ? [`--nproc=${limits.processes}`] : []),
    "--",
  ];
  if (confinement === "none") return [...rlimits, ...command];
  const namespaces = [
    "unshare",
    ...(confinement === "userns" ? ["--map-root-user"] : []),
    "--net",
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    "--propagation",
    "private",
    "--",
  ];
  const uid = scratch.uid === undefined ? "-" : String(scratch.uid);
  const paths = [...new Set([...CONFINE_TOOLS, ...readOnly])];
  return [
    ...rlimits,
    ...namespaces,
    "/bin/sh",
    CONFINE_SH,
    scratch.root,
    scratch.work,
    uid,
    "--",
    ...paths,
    "--",
    ...command,
  ];
}

/** Where the scratch directory is seen inside a confined root. */
export const CONFINED_WORK = "/merge-scratch";

/** The working directory as the confined program sees it. */
export function workDir(confinement: Confinement, scratch: Scratch): string {
  return confinement === "none" ? scratch.work : CONFINED_WORK;
}

export interface Run {
  report: string;
  reportTooLarge: boolean;
  stdout: string;
  stderr: string;
  /** The program printed more than `outputBytes` and was stopped (when `stopOnOutput`). */
  outputTooLarge: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

export interface RunOptions {
  confinement: Confinement;
  scratch: Scratch;
  readOnly: readonly string[];
  limits: Limits;
  command: readonly string[];
  env: Record<string, string>;
  stdin?: string | Buffer;
  /** Signal sent first at the time limit (Python reports the line it was on at SIGINT); SIGKILL follows. */
  interrupt?: NodeJS.Signals;
  /** Stop the program once it printed `outputBytes` (otherwise the rest is only cut). */
  stopOnOutput?: boolean;
}

const STREAM_SHOWN = 64 * 1024;
const KILL_GRACE_MS = 1000;

/** Runs a command confined; resolves when it and everything it started are gone. */
export function runConfined(o: RunOptions): Promise<Run> {
  const command = confinedCommand(o.confinement, o.scratch, o.readOnly, o.limits, o.command);
  return new Promise((resolve, reject) => {
    const child = spawn(command[0] as string, command.slice(1), {
      cwd: o.scratch.work,
      env: o.env,
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      // Its own process group, so that the time limit reaches everything it started.
      detached: true,
    });
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const out = collector(STREAM_SHOWN);
    const err = collector(STREAM_SHOWN);
    const report = collector(o.limits.reportBytes);
    let printed = 0;
    let outputTooLarge = false;
    const printedChunk = (c: { add: (b: Buffer) => void }) => (chunk: Buffer) => {
      c.add(chunk);
      printed += chunk.length;
      if (o.stopOnOutput && printed > o.limits.outputBytes && !outputTooLarge) {
        outputTooLarge = true;
        killGroup("SIGKILL");
      }
    };
    child.stdout?.on("data", printedChunk(out));
    child.stderr?.on("data", printedChunk(err));
    const fd3 = child.stdio[3] as NodeJS.ReadableStream | null;
    fd3?.on("data", (chunk: Buffer) => {
      report.add(chunk);
      if (report.overflowed) killGroup("SIGKILL");
    });
    fd3?.on("error", () => {});
    child.stdin?.on("error", () => {}); // the program may exit before reading all of stdin
    child.stdin?.end(o.stdin ?? "");
    let timedOut = false;
    let kill: NodeJS.Timeout | undefined;
    const interrupt = setTimeout(() => {
      timedOut = true;
      if (o.interrupt) {
        killGroup(o.interrupt);
        kill = setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS);
      } else killGroup("SIGKILL");
    }, o.limits.timeoutMs);
    child.on("error", (e) => {
      clearTimeout(interrupt);
      clearTimeout(kill);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(interrupt);
      clearTimeout(kill);
      // Unconfined runs have no pid namespace to die with: nothing they started may outlive them.
      if (o.confinement === "none") killGroup("SIGKILL");
      resolve({
        report: report.text(),
        reportTooLarge: report.overflowed,
        stdout: out.text(),
        stderr: err.text(),
        outputTooLarge,
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
