/**
 * Teardown and the leftovers check. Everything of a materialization carries its
 * prefix, so `sweep(prefix)` removes it all whatever state it was left in (a
 * failed or interrupted materialization, a crashed facility): the processes
 * in its namespaces, the namespaces (which takes every interface in them with
 * them), host interfaces, nftables tables, cgroups, mounts, and its files.
 * `leftovers(prefix)` lists what exists; after a sweep it is empty.
 */
import { readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { run } from "./command.ts";
import { PREFIX_RE } from "./names.ts";
import { killAll, listNetns, type Proc, processesIn } from "./processes.ts";

export interface Leftovers {
  netns: string[];
  links: string[];
  processes: { pid: number; comm: string; netns: string }[];
  mounts: string[];
  nftTables: string[];
  cgroups: string[];
  dirs: string[];
  /** wireguard-go control sockets (`/var/run/wireguard/<prefix>….sock`), stale once their process is gone. */
  wireguard: string[];
}

const WG_RUN = "/var/run/wireguard";

const CGROUP_ROOTS = ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"];

function ours(prefix: string, name: string): boolean {
  return name === prefix || name.startsWith(prefix);
}

export async function leftovers(prefix: string, dataDir: string): Promise<Leftovers> {
  if (!PREFIX_RE.test(prefix)) throw new Error(`bad prefix "${prefix}"`);
  const netns = listNetns().filter((n) => ours(prefix, n));
  const links = hostLinks(prefix);
  const mzdir = join(dataDir, "mz", prefix);
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(`${mzdir}/`) || m === mzdir || m.startsWith(`/run/netns/${prefix}`));
  const nft = await run("nft", ["list", "tables"]);
  const nftTables = nft.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((w) => w[0] === "table" && ours(prefix, w[2] ?? ""))
    .map((w) => `${w[1]} ${w[2]}`);
  const cgroups: string[] = [];
  for (const root of CGROUP_ROOTS) {
    try {
      for (const e of readdirSync(root)) if (ours(prefix, e)) cgroups.push(join(root, e));
    } catch {}
  }
  const dirs: string[] = [];
  try {
    readdirSync(mzdir);
    dirs.push(mzdir);
  } catch {}
  const processes = processesIn(netns);
  const seen = new Set(processes.map((p) => p.pid));
  for (const p of [...containerProcesses(prefix, dataDir), ...wireguardProcesses(prefix)])
    if (!seen.has(p.pid)) {
      seen.add(p.pid);
      processes.push(p);
    }
  let wireguard: string[] = [];
  try {
    wireguard = readdirSync(WG_RUN)
      .filter((f) => f.endsWith(".sock") && ours(prefix, f))
      .map((f) => join(WG_RUN, f));
  } catch {}
  return { netns, links, processes, mounts, nftTables, cgroups, dirs, wireguard };
}

/**
 * The host's interfaces carrying the prefix: every interface of this process's network namespace is in
 * /proc/net/dev, read without the kernel's netlink lock. A link dump (`ip link show`) waits on that lock
 * while the kernel deletes namespaces, each holding it a while: after a teardown of hundreds of nodes,
 * seconds. An interface the kernel is still deleting shows, and is deleted again (a no-op) by the sweep.
 */
function hostLinks(prefix: string): string[] {
  // Two header lines, then `<name>: <counters>` (a name holds no colon).
  return readFileSync("/proc/net/dev", "utf8")
    .split("\n")
    .slice(2)
    .map((l) => l.split(":")[0]?.trim() ?? "")
    .filter((n) => n && ours(prefix, n));
}

/**
 * wireguard-go processes of the prefix's interfaces. They run in the host's
 * namespace when the interface was moved into one of ours (the underlay's
 * socket stays outside), so looking by namespace does not find them; their
 * argv names the interface, which carries the prefix.
 */
function wireguardProcesses(prefix: string): Proc[] {
  const out: Proc[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
      if (!(argv[0] ?? "").endsWith("wireguard-go") || !ours(prefix, argv[1] ?? "")) continue;
      out.push({ pid: Number(e), comm: "wireguard-go", netns: readlinkSync(`/proc/${e}/ns/net`) });
    } catch {}
  }
  return out;
}

/**
 * Processes of the prefix's containers, found by their root: an overlay whose
 * upper layer is one of the prefix's node directories (mrg-node mounts it from a
 * template namespace rooted at the data directory, so the path reads
 * `/mz/<prefix>/nodes/…`). This finds a container even when its network
 * namespace lost its name (deleted while the container still ran), where
 * looking by namespace name cannot.
 */
function containerProcesses(prefix: string, dataDir: string): Proc[] {
  const markers = [`upperdir=/mz/${prefix}/`, `upperdir=${join(dataDir, "mz", prefix)}/`];
  let self: string;
  try {
    self = readlinkSync("/proc/self/ns/mnt");
  } catch {
    return [];
  }
  const ours = new Map<string, boolean>();
  const out: Proc[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const mnt = readlinkSync(`/proc/${e}/ns/mnt`);
      if (mnt === self) continue;
      let hit = ours.get(mnt);
      if (hit === undefined) {
        hit = readFileSync(`/proc/${e}/mountinfo`, "utf8")
          .split("\n")
          .some((l) => l.split(" ")[4] === "/" && markers.some((m) => l.includes(m)));
        ours.set(mnt, hit);
      }
      if (!hit) continue;
      let netns = "(unnamed)";
      try {
        netns = readlinkSync(`/proc/${e}/ns/net`);
      } catch {}
      out.push({ pid: Number(e), comm: readFileSync(`/proc/${e}/comm`, "utf8").trim(), netns });
    } catch {}
  }
  return out;
}

export function isClean(l: Leftovers): boolean {
  return Object.values(l).every((v) => v.length === 0);
}

/** Sweeps of one prefix while what it lists keeps growing (see `sweep`). */
const SWEEP_ROUNDS = 3;

/**
 * Remove everything carrying this prefix. Returns what could not be removed (empty when clean). A process
 * killed mid-materialization can leave its iproute2 batch running in the host's namespace (out of reach of a
 * sweep by namespace), still adding namespaces a moment after the sweep listed them: while a round ends
 * with namespaces or interfaces it did not list, another goes.
 */
export async function sweep(prefix: string, dataDir: string): Promise<Leftovers> {
  for (let round = 1; ; round++) {
    const { listed, left } = await sweepOnce(prefix, dataDir);
    const grew = [...left.netns, ...left.links].some((n) => !listed.has(n));
    if (!grew || round >= SWEEP_ROUNDS) return left;
  }
}

async function sweepOnce(prefix: string, dataDir: string): Promise<{ listed: Set<string>; left: Leftovers }> {
  const t0 = Date.now();
  const trace = (what: string) => {
    if (process.env.MRG_LINUX_TRACE) console.error(`sweep ${prefix}: ${what} at ${Date.now() - t0} ms`);
  };
  const l = await leftovers(prefix, dataDir);
  trace(`listed ${l.processes.length} processes, ${l.netns.length} namespaces`);
  // Processes first: a namespace is only gone when nothing holds it.
  let stuck = await killAll(l.processes.map((p) => p.pid));
  if (stuck.length) stuck = await killAll(stuck, 5000);
  trace("killed");
  // Namespace mounts go with `ip netns del`; the rest (the materialization's tmpfs) in one call.
  const mounts = l.mounts.filter((m) => !m.startsWith("/run/netns/"));
  if (mounts.length) await run("umount", ["-l", ...mounts.sort().reverse()]);
  trace("unmounted");
  if (l.netns.length)
    await run("ip", ["-force", "-batch", "-"], `${l.netns.map((n) => `netns del ${n}`).join("\n")}\n`);
  trace("namespaces deleted");
  const links = hostLinks(prefix);
  if (links.length) await run("ip", ["-force", "-batch", "-"], `${links.map((n) => `link del ${n}`).join("\n")}\n`);
  trace("links deleted");
  for (const t of l.nftTables) await run("nft", ["delete", "table", ...t.split(" ")]);
  for (const c of l.cgroups) await cgroupRemove(c);
  trace("nft, cgroups removed");
  for (const d of l.dirs) rmSync(d, { recursive: true, force: true });
  for (const f of l.wireguard) rmSync(f, { force: true });
  trace("files removed");
  return { listed: new Set([...l.netns, ...l.links, ...links]), left: await leftovers(prefix, dataDir) };
}

/**
 * Remove a cgroup of the prefix, killing what is still in it: a VM's QEMU (not in a node's mount namespace,
 * so not among the processes listed) can still be exiting, freeing its guest memory, and the kernel refuses
 * to remove a cgroup with a task in it (EBUSY). Gives up after 10 s; the leftovers then name it.
 */
async function cgroupRemove(dir: string): Promise<void> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT" || Date.now() > end) return;
    }
    let pids: number[] = [];
    try {
      pids = readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
    } catch {}
    await killAll(pids, 1000);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Prefixes that have anything left on this host (for a facility-wide sweep after a crash). */
export function prefixesPresent(dataDir: string): string[] {
  const found = new Set<string>();
  for (const n of listNetns()) {
    const p = n.slice(0, 8);
    if (PREFIX_RE.test(p)) found.add(p);
  }
  try {
    for (const d of readdirSync(join(dataDir, "mz"))) if (PREFIX_RE.test(d)) found.add(d);
  } catch {}
  return [...found];
}
