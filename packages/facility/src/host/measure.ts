/**
 * What a host has, measured on it rather than taken from the model: the cores
 * this process may use, memory (the cgroup's limit when lower than the
 * machine's) and the space free where its data directory is; and what is free
 * now (`free.ts`): cores not busy, memory available to this process's cgroup.
 */
import { readFileSync, statfsSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import { freeNow } from "./free.ts";

export interface HostMeasure {
  cores: number;
  /** bytes */
  memory: number;
  /** bytes free for the data directory's file system */
  disk: number;
  /** Cores not busy now (the machine's cores less its one-minute load, at least 0). */
  coresFree: number;
  /** Bytes of memory available now (the machine's MemAvailable, or less within the agent's cgroup's limit). */
  memoryFree: number;
}

function cgroupMemoryLimit(): number | undefined {
  try {
    const v = readFileSync("/sys/fs/cgroup/memory.max", "utf8").trim();
    return v === "max" ? undefined : Number(v);
  } catch {
    return undefined;
  }
}

export function measureHost(dataDir: string): HostMeasure {
  const limit = cgroupMemoryLimit();
  const s = statfsSync(dataDir);
  return {
    cores: availableParallelism(),
    memory: limit !== undefined && Number.isFinite(limit) ? Math.min(limit, totalmem()) : totalmem(),
    disk: Number(s.bavail) * Number(s.bsize),
    ...freeNow(),
  };
}
