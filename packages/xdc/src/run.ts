/** Running host tools: to completion, with output, and a clear error when they fail. */
import { spawn } from "node:child_process";

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env });
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
    child.stdin.end(opts.input ?? "");
  });
}

export async function check(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** `ip -batch`, tolerating "already there" / "already gone" so every call can be repeated. */
export async function ipBatch(lines: string[], tolerant = false, ns?: string): Promise<void> {
  if (lines.length === 0) return;
  const r = await run("ip", [...(ns ? ["-n", ns] : []), "-force", "-batch", "-"], { input: `${lines.join("\n")}\n` });
  if (r.code === 0) return;
  const bad = r.stderr
    .split("\n")
    .filter(
      (l) =>
        l.trim() !== "" &&
        !(
          tolerant && /File exists|Cannot find device|No such file|does not exist|Cannot open network namespace/.test(l)
        ),
    );
  if (bad.length > 0 && !bad.every((l) => /^Command failed/.test(l))) throw new Error(`ip: ${bad.join("; ")}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
