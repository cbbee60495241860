/**
 * CPU time of everything this process starts (its children, their daemons,
 * containers: they inherit the cgroup) between two reads, from a cpuacct
 * cgroup (v1) or the unified hierarchy's cpu.stat (v2). Wall time on a shared,
 * loaded host measures the load as much as the work; CPU time does not.
 */
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

/** Put this process in a fresh accounting cgroup; undefined where neither hierarchy is writable. */
export function cpuAccount(name: string): CpuAccount | undefined {
  const v1 = existsSync(join(V1, "cpuacct.usage"));
  const v2 = !v1 && existsSync(join(V2, "cgroup.controllers"));
  if (!v1 && !v2) return undefined;
  // v2: a child of our own cgroup, so we stay under whatever limits the host put us in.
  const own = /^0::(.*)$/m.exec(readFileSync("/proc/self/cgroup", "utf8"))?.[1] ?? "/";
  const root = v1 ? V1 : join(V2, own);
  const dir = join(root, `${name}-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "cgroup.procs"), String(process.pid));
  } catch {
    return undefined;
  }
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
