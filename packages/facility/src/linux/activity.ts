/**
 * What a container node did so far, for the portal's idle detection: CPU time
 * of its processes, packets on its experiment interfaces (not the infranet's
 * eth0), and ssh sessions open now. Counters only grow while the node runs
 * (a restart starts them again); the portal compares samples.
 */
import { readFileSync } from "node:fs";
import { run } from "./command.ts";
import { processesIn } from "./processes.ts";

export interface NodeActivity {
  node: string;
  /** CPU seconds of the node's processes (live ones, with their reaped children's). */
  cpuSeconds: number;
  /** Packets received and sent on its experiment interfaces. */
  rxPackets: number;
  txPackets: number;
  /** sshd session processes in the node now (one per login). */
  sshSessions: number;
  /** What is not measured, and why (a VM, the sim backend, a node not running); absent when all is. */
  unmeasured?: string;
}

/** The kernel's clock ticks per second for /proc/<pid>/stat times (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** utime + stime + cutime + cstime of a /proc/<pid>/stat line, in seconds. */
export function statCpuSeconds(stat: string): number {
  // Fields after the command (which may hold spaces and parentheses): state is field 3, utime 14.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + (Number(rest[i]) || 0), 0);
  return ticks / USER_HZ;
}

/** Packets on the interfaces `counts` picks, from `ip -s -j link`. */
function packetsOn(ipJson: string, counts: (ifname: string) => boolean): { rx: number; tx: number } {
  const links = JSON.parse(ipJson) as {
    ifname: string;
    stats64?: { rx?: { packets?: number }; tx?: { packets?: number } };
  }[];
  let rx = 0;
  let tx = 0;
  for (const l of links) {
    if (!counts(l.ifname)) continue;
    rx += l.stats64?.rx?.packets ?? 0;
    tx += l.stats64?.tx?.packets ?? 0;
  }
  return { rx, tx };
}

/** Packets on every interface but loopback and the infranet (eth0), from `ip -s -j link`. */
export function experimentPackets(ipJson: string): { rx: number; tx: number } {
  return packetsOn(ipJson, (name) => name !== "lo" && name !== "eth0");
}

/** An sshd process serving a login (`sshd: user@pts/0`, `sshd: user@notty`), not the listener. */
export function isSshSession(cmdline: string): boolean {
  return /^sshd: \S+@/.test(cmdline.replaceAll("\0", " "));
}

/** A container node's activity, from its network namespace's processes and interfaces. */
export async function containerActivity(node: string, netns: string): Promise<NodeActivity> {
  let cpuSeconds = 0;
  let sshSessions = 0;
  for (const p of processesIn([netns])) {
    try {
      cpuSeconds += statCpuSeconds(readFileSync(`/proc/${p.pid}/stat`, "utf8"));
      if (p.comm.startsWith("sshd") && isSshSession(readFileSync(`/proc/${p.pid}/cmdline`, "utf8"))) sshSessions++;
    } catch {
      // the process ended meanwhile
    }
  }
  const ip = await run("ip", ["-n", netns, "-s", "-j", "link", "show"]);
  if (ip.code !== 0) {
    return { node, cpuSeconds, rxPackets: 0, txPackets: 0, sshSessions, unmeasured: `packets: ${ip.stderr.trim()}` };
  }
  const { rx, tx } = experimentPackets(ip.stdout);
  return { node, cpuSeconds: Math.round(cpuSeconds * 100) / 100, rxPackets: rx, txPackets: tx, sshSessions };
}

/** Packets on a VM's experiment NICs: the taps QEMU holds (`t1`, `t2`, …; `t0` is the infranet's), from `ip -s -j link`. */
export function vmPackets(ipJson: string): { rx: number; tx: number } {
  // Only the taps: each NIC's frames also cross its veth and bridge, which would count them thrice.
  return packetsOn(ipJson, (name) => /^t[1-9][0-9]*$/.test(name));
}

/** Counts the guest's ssh logins (`sshd: user@…` processes) with busybox alone; prints one number. */
export const GUEST_LOGINS = `n=0; for f in /proc/[0-9]*/cmdline; do case "$(tr '\\0' ' ' 2>/dev/null < "$f")" in "sshd: "*@*) n=$((n+1));; esac; done; echo $n`;

/**
 * A VM node's activity from the host side: CPU time of its QEMU process (every
 * vCPU thread is in it), packets on its experiment taps, and logins asked of the
 * guest through its agent (`guestLogins`; what cannot be measured is said).
 */
export async function vmActivity(
  node: string,
  netns: string,
  pid: number | undefined,
  guestLogins: () => Promise<{ code: number; output: Buffer }>,
): Promise<NodeActivity> {
  if (!pid) {
    return { node, cpuSeconds: 0, rxPackets: 0, txPackets: 0, sshSessions: 0, unmeasured: "the VM is not running" };
  }
  const missing: string[] = [];
  let cpuSeconds = 0;
  try {
    cpuSeconds = statCpuSeconds(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch (e) {
    missing.push(`CPU: ${(e as Error).message}`);
  }
  let packets = { rx: 0, tx: 0 };
  const ip = await run("ip", ["-n", netns, "-s", "-j", "link", "show"]);
  if (ip.code === 0) packets = vmPackets(ip.stdout);
  else missing.push(`packets: ${ip.stderr.trim()}`);
  let sshSessions = 0;
  try {
    const r = await guestLogins();
    const n = Number(r.output.toString().trim());
    if (r.code !== 0 || !Number.isInteger(n)) throw new Error(`exit ${r.code}: ${r.output.toString().trim()}`);
    sshSessions = n;
  } catch (e) {
    missing.push(`logins: ${(e as Error).message}`);
  }
  return {
    node,
    cpuSeconds: Math.round(cpuSeconds * 100) / 100,
    rxPackets: packets.rx,
    txPackets: packets.tx,
    sshSessions,
    ...(missing.length ? { unmeasured: missing.join("; ") } : {}),
  };
}
