/**
 * What a host has, measured on it rather than taken from the model: the cores
 * this process may use, memory (the cgroup's limit when lower than the
 * machine's) and the space free where its data directory is.
 */
import { readFileSync, statfsSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";

export interface HostMeasure {
  cores: number;
  /** bytes */
  memory: number;
  /** bytes free for the data directory's file system */
  disk: number;
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
  };
}
