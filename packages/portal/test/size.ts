/**
 * Experiments and facilities big enough that a per-allocation-unit transaction
 * (two store ops per unit, at most 128 per transaction) could not carry them.
 */
import { generateFacility } from "@merge/facility-model";
import type { Experiment, Facility } from "@merge/xir";
import type { FacilityRecord } from "../src/objects.ts";

type XNode = Experiment["nodes"][number];
type XLink = Experiment["links"][number];

/**
 * `lans` LANs of `perLan` nodes each; the first node of every LAN also joins a backbone LAN (when lans > 1
 * and `backbone`, the default).
 */
export function lansXir(name: string, lans: number, perLan: number, { backbone: joined = true } = {}): Experiment {
  const nodes: XNode[] = [];
  const links: XLink[] = [];
  const backbone: XLink["endpoints"] = [];
  for (let l = 0; l < lans; l++) {
    const endpoints: XLink["endpoints"] = [];
    for (let i = 0; i < perLan; i++) {
      const head = i === 0 && lans > 1 && joined;
      const n = `n${l}-${i}`;
      nodes.push({
        name: n,
        constraints: [],
        sockets: Array.from({ length: head ? 2 : 1 }, (_, index) => ({ index, addrs: [], constraints: [] })),
        properties: {},
      });
      endpoints.push({ node: n, socket: 0 });
      if (head) backbone.push({ node: n, socket: 1 });
    }
    links.push({ name: `lan${l}`, endpoints, constraints: [], properties: {} });
  }
  if (backbone.length > 1) links.push({ name: "backbone", endpoints: backbone, constraints: [], properties: {} });
  return { xir: "1.0", name, parameters: {}, nodes, links } as Experiment;
}

/** A generated facility as the admin API takes it. */
export function generatedFacility(nodes: number) {
  const name = `gen${nodes}`;
  return { name, endpoint: `https://${name}.example.org:6000`, model: generateFacility({ nodes, name }) };
}

/** The record of `model` as an active facility, as the portal stores it: what realizing on it needs. */
export function activeFacility(model: Facility): FacilityRecord {
  const now = new Date().toISOString();
  return {
    name: model.name,
    description: "",
    endpoint: `https://${model.name}:6000`,
    certificate: "",
    state: "active",
    registered: now,
    updated: now,
    model,
  };
}
