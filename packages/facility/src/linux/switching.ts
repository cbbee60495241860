/**
 * Namespaces where the testbed itself switches frames: an infrapod's infranet bridge (or a host's infranet
 * switch), the xpnet's LAN bridges, the emulator's ports. IPv6 is off in them, set before their ports exist (a
 * new interface takes its namespace's default). Otherwise each port and bridge sent MLD reports and router
 * solicitations as it came up: frames from no node on the experimenter's links, and on the infranet multicast
 * that `bcast_flood off` lets through to every node (n² frames). The nodes' own IPv6 on experiment interfaces is
 * theirs (the infranet's `eth0` is IPv4 only: mrg-node).
 */
import { check } from "./command.ts";
import type { Env } from "./env.ts";
import { missingNetns } from "./processes.ts";

/**
 * How an experiment LAN's bridge is made (`link add … type bridge ${LAN_BRIDGE}`): multicast is flooded as a plain
 * segment floods it. With IGMP/MLD snooping the bridge joined the all-snoopers group and reported that onto the
 * LAN, and with no querier on an experimenter's LAN it would stop forwarding a group once memberships aged out.
 */
export const LAN_BRIDGE = "mcast_snooping 0";

/** Turn IPv6 off in `ns` (its interfaces now and later). */
export function switchingOnly(ns: string): Promise<string> {
  return check("ip", [
    "netns",
    "exec",
    ns,
    "sysctl",
    "-qw",
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
  ]);
}

/** Make whichever of these switching namespaces do not exist yet, IPv6 off (idempotent). */
export async function switchingNamespaces(env: Pick<Env, "ip">, names: string[]): Promise<void> {
  const make = missingNetns(names);
  if (!make.length) return;
  await env.ip.submit(make.map((n) => `netns add ${n}`));
  await Promise.all(make.map(switchingOnly));
}
