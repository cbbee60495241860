/**
 * Processes by network namespace: how the data plane finds what runs inside a
 * materialization's namespaces (containers, dnsmasq, foundry, emulators),
 * without trusting any pid file; and by the data directory a facility, rex
 * worker or host agent runs on (what `cog host sweep` asks first).
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { resolve } from "node:path";

export interface Proc {
  pid: number;
  comm: string;
  netns: string;
}

/** Inode of a named network namespace, or undefined if it does not exist. */
export function netnsInode(name: string): number | undefined {
  try {
    return statSync(`/run/netns/${name}`).ino;
  } catch {
    return undefined;
  }
}

/** Every process whose network namespace is one of these (by name). */
export function processesIn(netnsNames: string[]): Proc[] {
  const byIno = new Map<string, string>();
  for (const n of netnsNames) {
    const ino = netnsInode(n);
    if (ino !== undefined) byIno.set(`net:[${ino}]`, n);
  }
  if (byIno.size === 0) return [];
  const out: Proc[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let link: string;
    try {
      link = readlinkSync(`/proc/${e}/ns/net`);
    } catch {
      continue;
    }
    const ns = byIno.get(link);
    if (!ns) continue;
    let comm = "";
    try {
      comm = readFileSync(`/proc/${e}/comm`, "utf8").trim();
    } catch {}
    out.push({ pid: Number(e), comm, netns: ns });
  }
  return out;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie holds no namespaces or mounts any more.
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== "Z";
}

/** The fields of /proc/<pid>/stat after the command name (state, ppid, …, utime at [11], stime at [12]). */
export function statFields(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ");
  } catch {
    return undefined;
  }
}

/** This process and its ancestors (`npx`, a shell): their command lines name what we were asked for. */
function selfAndAncestors(): Set<number> {
  const out = new Set<number>();
  for (let pid = process.pid; pid > 1 && !out.has(pid); ) {
    out.add(pid);
    pid = Number(statFields(pid)?.[1]);
  }
  return out;
}

/**
 * Live processes run with `--data-dir DIR` (or `--data-dir=DIR`; a relative DIR from that
 * process's working directory): a facility, rex worker or host agent on a backend's data
 * directory. Not this process or its ancestors (`npx cog … --data-dir DIR`), and not what
 * runs inside (a node's init names the directory, but as a plain argument).
 */
export function processesOn(dir: string): { pid: number; command: string }[] {
  const want = resolve(dir);
  const skip = selfAndAncestors();
  const out: { pid: number; command: string }[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || skip.has(Number(e))) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0").filter(Boolean);
    } catch {
      continue;
    }
    let cwd: string | undefined;
    try {
      cwd = readlinkSync(`/proc/${e}/cwd`);
    } catch {}
    const names = argv.some((a, i) => {
      const v = a.startsWith("--data-dir=") ? a.slice("--data-dir=".length) : argv[i - 1] === "--data-dir" ? a : "";
      if (!v || (!v.startsWith("/") && !cwd)) return false;
      return resolve(cwd ?? "/", v) === want;
    });
    if (names && alive(Number(e))) out.push({ pid: Number(e), command: argv.slice(0, 6).join(" ") });
  }
  return out;
}

/** SIGKILL these pids and wait (up to `ms`) until they are gone. */
export async function killAll(pids: number[], ms = 5000): Promise<number[]> {
  for (const p of pids) {
    try {
      process.kill(p, "SIGKILL");
    } catch {}
  }
  const end = Date.now() + ms;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    left = left.filter(alive);
  }
  return left;
}

export function listNetns(): string[] {
  try {
    return readdirSync("/run/netns");
  } catch {
    return [];
  }
}

/** Those of these namespaces that do not exist yet, each once. */
export function missingNetns(names: Iterable<string>): string[] {
  const have = new Set(listNetns());
  return [...new Set(names)].filter((n) => !have.has(n));
}

/**
 * The live process a pid file names, if it is in network namespace `netns`: a pid file outlives its
 * process, and the kernel may have given the number to another, so the file alone is not trusted.
 */
export function pidInNetns(pidFile: string, netns: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  const ino = netnsInode(netns);
  if (!pid || ino === undefined || !alive(pid)) return undefined;
  try {
    return readlinkSync(`/proc/${pid}/ns/net`) === `net:[${ino}]` ? pid : undefined;
  } catch {
    return undefined;
  }
}
