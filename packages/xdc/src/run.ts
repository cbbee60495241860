/** Running host tools: to completion, with output, and a clear error when they fail. */
import { run } from "@merge/facility/linux";

export { check, type Result, run } from "@merge/facility/linux";

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
