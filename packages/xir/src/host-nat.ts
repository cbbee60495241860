/**
 * The rules for a facility's host entries (`Facility.hosts`) that the JSON
 * Schema cannot say: a shared host's NAT block (ports, per node, address) and
 * NAT blocks of hosts behind one address not overlapping. Pure; the facility
 * model's checker, the facility daemon (a model it is given) and a host agent
 * (its `--nat` flags) use the same rules, so the same mistake reads the same.
 */
import type { Facility, HostNat } from "./facility.ts";

export interface HostProblem {
  /** The field at fault, e.g. `hosts.site1.nat.first`. */
  field: string;
  message: string;
}

const PORT_MIN = 1024;
const PORT_MAX = 65535;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** What is wrong with a NAT block, each naming its field under `at` (e.g. `hosts.site1.nat`). */
export function natProblems(nat: HostNat, at = "nat"): HostProblem[] {
  const out: HostProblem[] = [];
  const port = (p: number) => Number.isInteger(p) && p >= PORT_MIN && p <= PORT_MAX;
  for (const k of ["first", "last"] as const)
    if (!port(nat[k]))
      out.push({
        field: `${at}.${k}`,
        message: `port ${nat[k]} is not usable: expected a whole number within ${PORT_MIN}-${PORT_MAX} (e.g. first 20000, last 29999)`,
      });
  if (out.length === 0 && nat.last < nat.first)
    out.push({
      field: `${at}.last`,
      message: `${nat.last} is below first (${nat.first}): expected first ≤ last (e.g. 20000-29999)`,
    });
  const span = out.length === 0 ? nat.last - nat.first + 1 : undefined;
  if (!Number.isInteger(nat.perNode) || nat.perNode < 1 || (span !== undefined && nat.perNode > span))
    out.push({
      field: `${at}.perNode`,
      message: `${nat.perNode} ports a node: expected a whole number from 1 to ${span ?? "the range's size"}`,
    });
  if (typeof nat.address !== "string" || !IPV4.test(nat.address))
    out.push({
      field: `${at}.address`,
      message: `'${nat.address}' is not an IPv4 address: expected the address people reach the host on, e.g. 203.0.113.7`,
    });
  return out;
}

/**
 * What is wrong with a model's host entries: an entry for a host no resource
 * is on, a bad NAT block, and two hosts behind one address whose blocks
 * overlap (one port would lead to two nodes).
 */
export function hostProblems(f: Facility): HostProblem[] {
  const out: HostProblem[] = [];
  const named = new Set(f.resources.flatMap((r) => (r.host ? [r.host] : [])));
  const byAddress = new Map<string, { host: string; nat: HostNat }[]>();
  for (const [host, entry] of Object.entries(f.hosts ?? {})) {
    if (!named.has(host))
      out.push({
        field: `hosts.${host}`,
        message: `no resource is on host ${host}: expected one of the hosts resources name (${[...named].sort().join(", ") || "none"})`,
      });
    if (!entry.nat) continue;
    const bad = natProblems(entry.nat, `hosts.${host}.nat`);
    out.push(...bad);
    if (bad.length) continue;
    for (const other of byAddress.get(entry.nat.address) ?? [])
      if (entry.nat.first <= other.nat.last && other.nat.first <= entry.nat.last)
        out.push({
          field: `hosts.${host}.nat`,
          message: `ports ${entry.nat.first}-${entry.nat.last} on ${entry.nat.address} overlap host ${other.host}'s ${other.nat.first}-${other.nat.last} on the same address: expected disjoint ranges`,
        });
    byAddress.set(entry.nat.address, [...(byAddress.get(entry.nat.address) ?? []), { host, nat: entry.nat }]);
  }
  return out;
}
