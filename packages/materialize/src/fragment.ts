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
