/**
 * Fragments: the units of a materialization request. Each names the resource it
 * operates on (the commander routes by it) and carries the plain-data spec the
 * backend needs. `wire.ts` converts them to and from the wire.
 */
import type { EmulationSpec, InfranetEntry, InfrapodSpec, LinkSpec, NodeSpec, PowerAction } from "./spec.ts";

export type Fragment =
  | { resource: string; op: "infrapod.setup"; infrapod: InfrapodSpec; entries: InfranetEntry[] }
  | { resource: string; op: "node.setup" | "node.recycle" | "node.reset"; node: NodeSpec }
  | { resource: string; op: "node.power"; power: PowerAction }
  | { resource: string; op: "link.create" | "link.destroy"; link: LinkSpec }
  | { resource: string; op: "emulation.setup"; emulation: EmulationSpec };

export type FragmentOp = Fragment["op"];

/**
 * The facility hosts a fragment's work lands on, sorted, `""` standing for the
 * facility's own machine: a node's or infrapod's host, an emulation's
 * emulator's, and for a link every host one of its endpoints (or its emulator)
 * is on — a link across hosts is wired on each of them.
 */
export function fragmentHosts(f: Fragment): string[] {
  switch (f.op) {
    case "infrapod.setup":
      return infrapodHosts(f.infrapod);
    case "node.setup":
    case "node.recycle":
    case "node.reset":
      return [f.node.host ?? ""];
    case "node.power":
      return [];
    case "link.create":
    case "link.destroy":
      return linkHosts(f.link);
    case "emulation.setup":
      return [f.emulation.host ?? ""];
  }
}

/**
 * The hosts an infrapod's setup lands on: its own and, when it routes other
 * facilities' infranets through a gateway on another host, that host.
 */
export function infrapodHosts(spec: InfrapodSpec): string[] {
  const hosts = new Set([spec.host ?? "", ...(spec.peers ?? []).map((p) => p.host ?? "")]);
  return [...hosts].sort();
}

/**
 * Every host a link touches: its endpoints' (those at this facility), its
 * emulator's and, for an external link, its gateways', sorted, `""` for the
 * facility's own machine.
 */
export function linkHosts(link: LinkSpec): string[] {
  const remote = new Set(link.remote ?? []);
  const hosts = new Set(link.endpoints.flatMap((e, k) => (remote.has(k) ? [] : [e.host ?? ""])));
  if (link.emulator) hosts.add(link.emulatorHost ?? "");
  for (const x of link.external ?? []) hosts.add(x.host ?? "");
  return [...hosts].sort();
}

/** The resources a fragment touches, beyond its routing resource (for status). */
export function fragmentLabel(f: Fragment): string {
  switch (f.op) {
    case "infrapod.setup":
      return `infrapod ${f.infrapod.mzid}`;
    case "node.setup":
    case "node.recycle":
    case "node.reset":
      return `${f.op} ${f.node.node}@${f.resource}`;
    case "node.power":
      return `power ${f.power} ${f.resource}`;
    case "link.create":
    case "link.destroy":
      return `${f.op} ${f.link.link}`;
    case "emulation.setup":
      return `emulation ${f.emulation.emulation}`;
  }
}
