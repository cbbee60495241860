/**
 * Running host tools. iproute2 work goes through `ip -force -batch -` (and
 * `tc`), one process for many commands: commands queued in the same tick are
 * coalesced into one batch, so both a whole materialization and many parallel
 * per-resource calls pay for one process, not one per command.
 */
import { spawn } from "node:child_process";
import { Coalescer } from "./coalesce.ts";

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** What a run is given: its standard input, or that and its environment. */
export type RunInput = string | { input?: string; env?: NodeJS.ProcessEnv };

/** Run a program to completion; never throws for a non-zero exit (see `check`). */
export function run(cmd: string, args: string[], given?: RunInput): Promise<Result> {
  const { input, env } = typeof given === "object" ? given : { input: given, env: undefined };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
  });
}

/** Run and throw a clear error on failure. */
export async function check(cmd: string, args: string[], given?: RunInput): Promise<string> {
  const r = await run(cmd, args, given);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

/** Errors that mean "already in the target state" for an ensure-style command. */
const HARMLESS = [
  /File exists/,
  /handle of zero/,
  /Address already assigned/,
  /Cannot find device/,
  // tc's word for a device gone between its lookup and the change (a namespace being deleted meanwhile).
  /No such device/,
  /No such file or directory/,
  /Cannot open network namespace/,
];

interface Pending {
  lines: string[];
  tolerant: boolean;
  /** The batch's namespace being gone is success (removals: everything in it is gone too). */
  absentOk: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * A coalescing batch runner for one tool (`ip` or `tc`), optionally in one
 * network namespace (`-n NS`). `submit(lines)` resolves when its lines ran;
 * a failed line rejects the submission it came from (tolerant submissions
 * ignore "exists"/"not found", which is what makes ensure/remove idempotent).
 */
export class IprouteBatch {
  /**
   * One process at a time: what is submitted while a batch runs goes in the next one. Many per-resource
   * calls (rex's node setups on a host agent) arrive a few at a time; a process each cost a fork of this
   * (large) process, tens of ms on a loaded host, with the event loop blocked meanwhile.
   */
  private readonly batches = new Coalescer<Pending>((batch) => this.flush(batch));

  constructor(
    private readonly tool: "ip" | "tc" | "bridge",
    private readonly netns?: string,
  ) {}

  submit(lines: string[], opts: { tolerant?: boolean; absentOk?: boolean } = {}): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) =>
      this.batches.add({ lines, tolerant: opts.tolerant ?? true, absentOk: opts.absentOk ?? false, resolve, reject }),
    );
  }

  private async flush(batch: Pending[]): Promise<void> {
    const owner: number[] = [];
    const all: string[] = [];
    batch.forEach((p, i) => {
      for (const l of p.lines) {
        all.push(l);
        owner.push(i);
      }
    });
    const args = [...(this.netns ? ["-n", this.netns] : []), "-force", "-batch", "-"];
    let r: Result;
    try {
      const tb = Date.now();
      r = await run(this.tool, args, `${all.join("\n")}\n`);
      // MRG_LINUX_TRACE: each batch's start (ms, mod 100 s), duration, tool, namespace, lines and first line.
      if (process.env.MRG_LINUX_TRACE)
        console.error(
          `batch ${tb % 100000} +${Date.now() - tb} ${this.tool} ${this.netns ?? "-"} ${all.length} ${all[0]}`,
        );
      // Some commands (`neigh`, `link set … type`) dump the links first; a change meanwhile (another batch)
      // interrupts the dump and the tool stops. Every line is idempotent: run the batch again.
      for (let k = 0; k < 3 && r.stderr.includes("Dump was interrupted"); k++) {
        if (process.env.MRG_LINUX_TRACE) console.error(`batch again (dump interrupted): ${all[0]}`);
        r = await run(this.tool, args, `${all.join("\n")}\n`);
      }
    } catch (e) {
      for (const p of batch) p.reject(e as Error);
      return;
    }
    // stderr: message lines, then "Command failed -:N" naming the 1-based line.
    const failed = new Map<number, string[]>();
    let msg: string[] = [];
    let last = 0;
    for (const line of r.stderr.split("\n")) {
      const m = /^Command failed -:(\d+)/.exec(line);
      if (m) {
        const n = Number(m[1]) - 1;
        const owned = failed.get(owner[n] ?? -1) ?? [];
        owned.push(`${all[n]}: ${msg.join(" ").trim()}`);
        failed.set(owner[n] ?? -1, owned);
        msg = [];
        last = n;
      } else if (line.trim()) msg.push(line.trim());
    }
    // A message with no "Command failed" after it: the tool gave up (bad argument) at the line after the last reported one.
    if (msg.length > 0 || (r.code !== 0 && failed.size === 0)) {
      const n = failed.size > 0 ? last + 1 : 0;
      const text = msg.join(" ").trim() || `exit ${r.code}`;
      for (let i = owner[n] ?? 0; i < batch.length; i++) {
        const owned = failed.get(i) ?? [];
        owned.push(`${this.tool} batch stopped near "${all[n] ?? ""}": ${text}`);
        failed.set(i, owned);
      }
    }
    const nsGone = this.netns !== undefined && r.stderr.includes(`Cannot open network namespace "${this.netns}"`);
    batch.forEach((p, i) => {
      if (nsGone) {
        if (p.absentOk) p.resolve();
        else p.reject(new Error(`${this.tool} -n ${this.netns}: the namespace does not exist`));
        return;
      }
      const errs = failed.get(i);
      const real = errs?.filter(
        (e) => !(p.tolerant && !e.includes("batch stopped") && HARMLESS.some((h) => h.test(e))),
      );
      if (real && real.length > 0)
        p.reject(new Error(`${this.tool}${this.netns ? ` -n ${this.netns}` : ""}: ${real.join("; ")}`));
      else p.resolve();
    });
  }
}
