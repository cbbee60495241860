/**
 * What is free on a host now, as its agent measures it for the realization
 * engine (a shared host of a wide-area facility carries other experiments and
 * other work: the model's figures say what it has, this says what is left).
 * Memory: the machine's `MemAvailable`, or less where the agent's own cgroup
 * (v1 or v2) has a limit: the limit less what the cgroup uses, page cache that
 * can be dropped aside. A host given to the facility as a cgroup (or a machine
 * of that size) reports that. Cores: the machine's less its one-minute load.
 */
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** A `key value` line of a stat file (meminfo's are in kB). */
function statOf(text: string | undefined, key: string): number | undefined {
  const m = text && new RegExp(`^${key}:?\\s+(\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

function memAvailable(): number | undefined {
  const kb = statOf(read("/proc/meminfo"), "MemAvailable");
  return kb === undefined ? undefined : kb * 1024;
}

/** Bytes this process's memory cgroup may still take (limit less usage less inactive file pages); undefined: no limit. */
export function cgroupMemoryRoom(procCgroup = read("/proc/self/cgroup") ?? ""): number | undefined {
  const lines = procCgroup.split("\n").map((l) => l.split(":"));
  const v1 = lines.find((w) => w[1]?.split(",").includes("memory"))?.[2];
  if (v1 !== undefined) {
    const dir = `/sys/fs/cgroup/memory${v1 === "/" ? "" : v1}`;
    const stat = read(`${dir}/memory.stat`);
    const limit = statOf(stat, "hierarchical_memory_limit");
    const usage = Number(read(`${dir}/memory.usage_in_bytes`));
    // The kernel's "no limit" is a page-rounded 2^63.
    if (limit === undefined || limit >= 2 ** 62 || !Number.isFinite(usage)) return undefined;
    return Math.max(0, limit - (usage - (statOf(stat, "total_inactive_file") ?? 0)));
  }
  const v2 = lines.find((w) => w[0] === "0" && w[1] === "")?.[2];
  if (v2 === undefined) return undefined;
  const root = read("/sys/fs/cgroup/cgroup.controllers") !== undefined ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified";
  // The tightest limit on the way up (a parent's limit binds its children).
  let room: number | undefined;
  for (let path = v2; ; path = path.slice(0, path.lastIndexOf("/")) || "/") {
    const dir = `${root}${path === "/" ? "" : path}`;
    const max = read(`${dir}/memory.max`)?.trim();
    const current = Number(read(`${dir}/memory.current`));
    if (max && max !== "max" && Number.isFinite(current)) {
      const left = Number(max) - (current - (statOf(read(`${dir}/memory.stat`), "inactive_file") ?? 0));
      room = Math.min(room ?? Number.POSITIVE_INFINITY, Math.max(0, left));
    }
    if (path === "/") break;
  }
  return room;
}

export function freeNow(): { coresFree: number; memoryFree: number } {
  const cores = availableParallelism();
  const available = memAvailable() ?? 0;
  const room = cgroupMemoryRoom();
  return {
    coresFree: Math.max(0, Math.round((cores - (loadavg()[0] ?? 0)) * 100) / 100),
    memoryFree: room === undefined ? available : Math.min(available, room),
  };
}
