/**
 * Small facilities written directly as XIR, shaped for one rule at a time, and
 * small experiments. Racks of nodes under leaves, leaves under a spine.
 */
import assert from "node:assert/strict";
import { formatProblem, type RealizeResult } from "@merge/realize";
import type {
  AllocMode,
  Cable,
  Constraint,
  Experiment,
  Facility,
  Interconnect,
  Link,
  Node,
  Port,
  Realization,
  Resource,
  ResourceInternet,
  Scalar,
  TagRange,
} from "@merge/xir";

export const GiB = 1024 ** 3;
export const Gbps = 1e9;
export const Mbps = 1e6;
export const ms = 1e6;

export interface NodeSpec {
  id: string;
  props?: Record<string, Scalar>;
  alloc?: AllocMode[];
  /** Experiment ports: capacity and NIC model each; default one 10 Gbit/s port. */
  ports?: { capacity: number; model?: string }[];
}

export interface FacilitySpec {
  name: string;
  racks: NodeSpec[][];
  /** Leaves are VLAN-only unless told; the spine (when >1 rack) is VXLAN. */
  leafVxlan?: boolean;
  /** A VLAN domain per leaf instead of one for the whole xpnet. */
  domainPerLeaf?: boolean;
  uplink?: number;
  emulators?: number;
  /** Emulator port capacity. */
  emulatorCapacity?: number;
  infrapodServers?: number;
  gateway?: boolean;
  vlan?: TagRange[];
  vni?: TagRange[];
}

export function facility(spec: FacilitySpec): Facility {
  const resources: Resource[] = [];
  const cables: Cable[] = [];
  const vlan: Record<string, TagRange[]> = {};
  const vlanRanges = spec.vlan ?? [{ first: 100, last: 3999 }];
  let cableNo = 0;
  const cable = (a: string, ap: string, b: string, bp: string) =>
    cables.push({
      id: `c${cableNo++}`,
      ends: [
        { resource: a, port: ap },
        { resource: b, port: bp },
      ],
    });
  const addSwitch = (id: string, ports: Port[], role: NonNullable<Resource["switch"]>) =>
    resources.push({ id, kind: "switch", alloc: [], props: {}, ports, switch: role });
  const multi = spec.racks.length > 1;
  const spinePorts: Port[] = [];
  if (multi) {
    addSwitch("spine", spinePorts, { layer: "spine", network: "xpnet", vxlan: true, vlanDomain: "spine" });
    vlan.spine = vlanRanges;
  }
  const ileafPorts: Port[] = [];
  addSwitch("ileaf", ileafPorts, { layer: "leaf", network: "infranet", vxlan: true, vlanDomain: "infranet" });
  vlan.infranet = vlanRanges;
  const iport = (owner: string, ownerPort: string) => {
    const name = `swp${ileafPorts.length + 1}`;
    ileafPorts.push({ name, role: "infranet", capacity: 10 * Gbps });
    cable("ileaf", name, owner, ownerPort);
  };
  const leafPorts: Port[][] = [];
  spec.racks.forEach((rack, i) => {
    const ports: Port[] = [];
    leafPorts.push(ports);
    const domain = spec.domainPerLeaf ? `leaf${i}` : "xp";
    vlan[domain] = vlanRanges;
    addSwitch(`leaf${i}`, ports, {
      layer: "leaf",
      network: "xpnet",
      vxlan: spec.leafVxlan ?? false,
      vlanDomain: domain,
    });
    if (multi) {
      ports.push({ name: "up", role: "xpnet", capacity: spec.uplink ?? 100 * Gbps });
      spinePorts.push({ name: `swp${i}`, role: "xpnet", capacity: spec.uplink ?? 100 * Gbps });
      cable(`leaf${i}`, "up", "spine", `swp${i}`);
    }
    for (const n of rack) {
      const nodePorts: Port[] = [{ name: "eth0", role: "infranet", capacity: 1 * Gbps, model: "e1000e" }];
      (n.ports ?? [{ capacity: 10 * Gbps, model: "i40e" }]).forEach((p, k) => {
        nodePorts.push({
          name: `eth${k + 1}`,
          role: "xpnet",
          capacity: p.capacity,
          ...(p.model ? { model: p.model } : {}),
        });
        const sp = `swp${ports.length + 1}`;
        ports.push({ name: sp, role: "xpnet", capacity: p.capacity });
        cable(n.id, `eth${k + 1}`, `leaf${i}`, sp);
      });
      resources.push({
        id: n.id,
        kind: "node",
        alloc: n.alloc ?? ["physical"],
        props: n.props ?? { "proc.cores": 8, "memory.capacity": 16 * GiB, "disk.capacity": 256 * GiB },
        ports: nodePorts,
      });
      iport(n.id, "eth0");
    }
  });
  for (let e = 0; e < (spec.emulators ?? 1); e++) {
    const id = `emu${e}`;
    const cap = spec.emulatorCapacity ?? 10 * Gbps;
    resources.push({
      id,
      kind: "emulator",
      alloc: [],
      props: {},
      ports: [{ name: "eth1", role: "xpnet", capacity: cap }],
    });
    // Emulators hang off the spine, or off the only leaf.
    const owner = multi ? spinePorts : leafPorts[0]!;
    const sw = multi ? "spine" : "leaf0";
    const sp = `emu${e}`;
    owner.push({ name: sp, role: "xpnet", capacity: cap });
    cable(id, "eth1", sw, sp);
  }
  for (let s = 0; s < (spec.infrapodServers ?? 1); s++) {
    const id = `ifr${s}`;
    resources.push({
      id,
      kind: "infrapod-server",
      alloc: [],
      props: {},
      ports: [{ name: "eth1", role: "infranet", capacity: 10 * Gbps }],
    });
    iport(id, "eth1");
  }
  if (spec.gateway) {
    resources.push({
      id: "gw",
      kind: "gateway",
      alloc: [],
      props: {},
      ports: [
        { name: "eth1", role: "xpnet", capacity: 100 * Gbps },
        { name: "wan", role: "gateway", capacity: 100 * Gbps },
      ],
    });
    const owner = multi ? spinePorts : leafPorts[0]!;
    const sw = multi ? "spine" : "leaf0";
    owner.push({ name: "gw", role: "xpnet", capacity: 100 * Gbps });
    cable("gw", "eth1", sw, "gw");
  }
  return {
    xir: "1.0",
    name: spec.name,
    resources,
    cables,
    tags: { vlan, vni: spec.vni ?? [{ first: 1000, last: 99999 }] },
  };
}

export function interconnect(a: string, b: string, capacity: number, latency: number, id = `${a}-${b}`): Interconnect {
  return {
    id,
    a: { facility: a, resource: "gw", port: "wan" },
    b: { facility: b, resource: "gw", port: "wan" },
    capacity,
    latency,
    shared: true,
  };
}

/** `count` nodes named `${prefix}${i}` with these properties. */
export function nodes(prefix: string, count: number, spec: Omit<NodeSpec, "id"> = {}): NodeSpec[] {
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}${i}`, ...spec }));
}

// ---- experiments ----

export function c(prop: string, op: Constraint["op"], value: Constraint["value"]): Constraint {
  return { prop, op, value };
}

export function node(
  name: string,
  constraints: Constraint[] = [],
  sockets = 0,
  socketConstraints: Constraint[][] = [],
): Node {
  return {
    name,
    constraints,
    sockets: Array.from({ length: sockets }, (_, i) => ({
      index: i,
      addrs: [],
      constraints: socketConstraints[i] ?? [],
    })),
    properties: {},
  };
}

/**
 * An experiment from nodes and links given as lists of node names; sockets are
 * created on demand in link order.
 */
export function experiment(
  name: string,
  ns: Node[],
  links: { name?: string; ends: string[]; constraints?: Constraint[] }[],
): Experiment {
  const byName = new Map(ns.map((n) => [n.name, n]));
  const next = new Map<string, number>();
  const out: Link[] = links.map((l, i) => ({
    name: l.name ?? `l${i}`,
    constraints: l.constraints ?? [],
    properties: {},
    endpoints: l.ends.map((n) => {
      const node = byName.get(n);
      if (!node) throw new Error(`fixture: no node ${n}`);
      const k = next.get(n) ?? 0;
      next.set(n, k + 1);
      if (!node.sockets.some((s) => s.index === k)) node.sockets.push({ index: k, addrs: [], constraints: [] });
      return { node: n, socket: k };
    }),
  }));
  return { xir: "1.0", name, parameters: {}, nodes: ns, links: out };
}

/** The realization of a result that must succeed; otherwise the test fails naming the problems. */
export function ok(r: RealizeResult): Realization {
  if (!r.ok) assert.fail(`realization failed: ${r.problems.map(formatProblem).join("; ")}`);
  return r.realization;
}

/** The problems of a result that must fail, formatted. */
export function problems(r: RealizeResult): string[] {
  assert.equal(r.ok, false, "realization should fail");
  return r.ok ? [] : r.problems.map(formatProblem);
}

/** An internet of one facility. */
export const one = (f: Facility): ResourceInternet => ({ facilities: [f], interconnects: [] });
