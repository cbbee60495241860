/**
 * What every part of the data plane shares: the data directory, the detected
 * capabilities, the native programs, and the batch runners (one per tool and
 * namespace, so concurrent callers coalesce into few processes).
 */
import { join } from "node:path";
import type { Capabilities } from "./capabilities.ts";
import { Batch } from "./command.ts";

export interface Env {
  dataDir: string;
  caps: Capabilities;
  bin: { node: string; emu: string | null };
  /** ip in the host namespace. */
  ip: Batch;
  ipIn(netns: string): Batch;
  tcIn(netns: string): Batch;
  log(message: string): void;
}

export function makeEnv(
  dataDir: string,
  caps: Capabilities,
  bin: Env["bin"],
  log: (m: string) => void = () => {},
): Env {
  const ips = new Map<string, Batch>();
  const tcs = new Map<string, Batch>();
  return {
    dataDir,
    caps,
    bin,
    ip: new Batch("ip"),
    ipIn(ns) {
      const b = ips.get(ns) ?? new Batch("ip", ns);
      ips.set(ns, b);
      return b;
    },
    tcIn(ns) {
      const b = tcs.get(ns) ?? new Batch("tc", ns);
      tcs.set(ns, b);
      return b;
    },
    log,
  };
}

/** Where a materialization keeps its files (node upper dirs, foundry, nex, emulator sockets). */
export const mzDir = (env: Env, prefix: string): string => join(env.dataDir, "mz", prefix);
