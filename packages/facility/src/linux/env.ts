/**
 * What every part of the data plane shares: the data directory, the detected
 * capabilities, the native programs, and the batch runners (one per tool and
 * namespace, so concurrent callers coalesce into few processes).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Capabilities } from "./capabilities.ts";
import { check, IprouteBatch } from "./command.ts";
import type { NatOptions } from "./nat.ts";

export interface Env {
  dataDir: string;
  caps: Capabilities;
  bin: { node: string; emu: string | null; reach: string; foundry: string };
  /** ip in the host namespace. */
  ip: IprouteBatch;
  ipIn(netns: string): IprouteBatch;
  tcIn(netns: string): IprouteBatch;
  /** `bridge -batch` in a namespace (FDB entries), coalesced like `ipIn`. */
  bridgeIn(netns: string): IprouteBatch;
  log(message: string): void;
  /**
   * Where a materialization's files live (node writable layers, foundry, nex):
   * `tmpfs` (default) is one mount per materialization, so teardown drops it
   * at once; `disk` keeps node writes on the data directory's filesystem
   * (survives host reboots; deleting many small files is slower).
   */
  nodeDisk: "tmpfs" | "disk";
  /** A shared host's NAT for control access to its nodes (nat.ts); absent: none. */
  nat?: NatOptions;
  /** Image used when a node's image is not built here (absent: that is an error). */
  imageFallback?: string;
  /** Image for nodes whose model names none (`DataPlaneOptions.defaultImage`). */
  defaultImage?: string;
  /**
   * The facility's site: the namespace holding its wide-area address, where
   * its gateway tunnels to other facilities have their sockets (linux/wan.ts
   * on one machine). Absent: external links cannot be carried.
   */
  site?: { netns: string; address: string };
  /** The portal's shared storage on this host (`DataPlaneOptions.storage`, storage.ts). */
  storage?: string;
}

export function makeEnv(
  dataDir: string,
  caps: Capabilities,
  bin: Env["bin"],
  log: (m: string) => void = () => {},
  nodeDisk: Env["nodeDisk"] = "tmpfs",
): Env {
  const ips = new Map<string, IprouteBatch>();
  const tcs = new Map<string, IprouteBatch>();
  const bridges = new Map<string, IprouteBatch>();
  return {
    dataDir,
    caps,
    bin,
    ip: new IprouteBatch("ip"),
    ipIn(ns) {
      const b = ips.get(ns) ?? new IprouteBatch("ip", ns);
      ips.set(ns, b);
      return b;
    },
    tcIn(ns) {
      const b = tcs.get(ns) ?? new IprouteBatch("tc", ns);
      tcs.set(ns, b);
      return b;
    },
    bridgeIn(ns) {
      const b = bridges.get(ns) ?? new IprouteBatch("bridge", ns);
      bridges.set(ns, b);
      return b;
    },
    log,
    nodeDisk,
  };
}

/** Where a materialization keeps its files (node upper dirs, foundry, nex, emulator sockets). */
export const mzDir = (env: Env, prefix: string): string => join(env.dataDir, "mz", prefix);

export function mounted(dir: string): boolean {
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .some((l) => l.split(" ")[1] === dir);
}

/** Unmount everything under `dir`, deepest first (lazily: a busy mount goes once its last user does). */
export function unmountUnder(dir: string): void {
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync("umount", ["-l", m], { stdio: "ignore" });
}

/** Create the materialization's directory (a tmpfs of its own unless `nodeDisk` is `disk`). */
export async function ensureMzDir(env: Env, prefix: string): Promise<string> {
  const dir = mzDir(env, prefix);
  mkdirSync(dir, { recursive: true });
  if (env.nodeDisk === "tmpfs" && !mounted(dir)) {
    await check("mount", ["-t", "tmpfs", "-o", "mode=0755", `mrg-${prefix}`, dir]);
  }
  return dir;
}
