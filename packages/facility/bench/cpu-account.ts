/**
 * CPU time of everything this process starts (its children, their daemons,
 * containers: they inherit the cgroup) between two reads, from a cpuacct
 * cgroup (v1) or the unified hierarchy's cpu.stat (v2). Wall time on a shared,
 * loaded host measures the load as much as the work; CPU time does not.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface CpuAccount {
  /** CPU ms used by the cgroup so far. */
  ms(): number;
  /** Move this process back out and remove the cgroup (after whatever ran in it is gone). */
  close(): void;
}

const V1 = "/sys/fs/cgroup/cpuacct";
const V2 = "/sys/fs/cgroup";

/**
 * Put this process in a fresh accounting cgroup (a new directory, never one left by an earlier run: its
 * counter would carry that run's CPU), checked to hold this process; undefined where neither hierarchy is
 * writable. Fails loudly when the move did not take: a figure from the wrong cgroup is worse than none.
 */
export function cpuAccount(name: string): CpuAccount | undefined {
  const v1 = existsSync(join(V1, "cpuacct.usage"));
  const v2 = !v1 && existsSync(join(V2, "cgroup.controllers"));
  if (!v1 && !v2) return undefined;
  // v2: a child of our own cgroup, so we stay under whatever limits the host put us in.
  const own = /^0::(.*)$/m.exec(readFileSync("/proc/self/cgroup", "utf8"))?.[1] ?? "/";
  const root = v1 ? V1 : join(V2, own);
  const leaf = `${name}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const dir = join(root, leaf);
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, "cgroup.procs"), String(process.pid));
  } catch {
    return undefined;
  }
  const mine = readFileSync("/proc/self/cgroup", "utf8")
    .split("\n")
    .some((l) => (v1 ? /^\d+:[^:]*\bcpuacct\b[^:]*:/.test(l) : l.startsWith("0::")) && l.endsWith(`/${leaf}`));
  if (!mine) throw new Error(`cpu accounting: this process is not in ${dir} after moving there`);
  const ms = v1
    ? () => Number(readFileSync(join(dir, "cpuacct.usage"), "utf8").trim()) / 1e6
    : () => Number(/usage_usec (\d+)/.exec(readFileSync(join(dir, "cpu.stat"), "utf8"))?.[1] ?? 0) / 1e3;
  return {
    ms,
    close() {
      try {
        writeFileSync(join(root, "cgroup.procs"), String(process.pid));
        rmdirSync(dir);
      } catch {
        // a straggler still in it: the empty cgroup stays behind, nothing else to undo
      }
    },
  };
}

/**
 * The case's figures from two readings of the cgroup and of this process: `cpu_ms` is everything the case
 * started (this process included), so it is about at least `self_cpu_ms` + `tools_cpu_ms` (those are sampled
 * by the scheduler's tick, the cgroup's counted exactly: they differ by a few percent). One far smaller means
 * the accounting counted something else (`cpu_suspect` says so) rather than a figure to compare.
 */
export function cpuFigures(
  cgroupMs: number | undefined,
  own: { self: number; tools: number },
): { cpu_ms?: number; self_cpu_ms: number; tools_cpu_ms: number; cpu_suspect?: string } {
  const f = { self_cpu_ms: own.self, tools_cpu_ms: own.tools };
  if (cgroupMs === undefined) return f;
  const cpu = Math.round(cgroupMs);
  const floor = Math.round(0.8 * (own.self + own.tools)) - 50;
  return cpu < floor
    ? { cpu_ms: cpu, ...f, cpu_suspect: `the cgroup counted ${cpu} ms, less than this process and its tools` }
    : { cpu_ms: cpu, ...f };
}

/**
 * CPU ms of this process (`self`) and of its children it has waited for
 * (`tools`: iproute2 batches, mrg-node's starters, nsenter — not the
 * containers or daemons, which outlive their parents), from /proc/self/stat.
 */
export function ownCpu(): { self: number; tools: number } {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
  // Fields 14..17 of stat (utime, stime, cutime, cstime) are 11..14 after the command; clock ticks of 10 ms.
  const tick = 10;
  return { self: ((f[11] ?? 0) + (f[12] ?? 0)) * tick, tools: ((f[13] ?? 0) + (f[14] ?? 0)) * tick };
}
