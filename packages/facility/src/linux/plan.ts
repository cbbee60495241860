/**
 * What the linux data plane materializes, as plain data: the nodes with their
 * infranet and experiment addresses, the links with their emulation. Built
 * from the experiment XIR (`planFromExperiment`) or, piece by piece, from the
 * backend specs rex sends (see backend.ts).
 */

import { linkEmulation } from "@merge/materialize";
import type { Experiment, LinkEmulation } from "@merge/xir";

/** A link's emulation: link values and the directions set apart (`@merge/xir` LinkEmulation). */
export type EmulationParams = LinkEmulation;

export interface InfranetPlan {
  /** IPv4 subnet in CIDR form, e.g. `172.30.0.0/16`. */
  subnet: string;
  /** The infrapod's address on it (DHCP/DNS/foundry). */
  gateway: string;
}

export interface NodePlan {
  name: string;
  image?: string;
  /** Limits; absent = unlimited. */
  cores?: number;
  memory?: number;
  infranet: { address: string; mac: string };
  interfaces: { socket: number; addrs: string[] }[];
  /** Present: the node is a VM (QEMU, vm.ts) rather than a container. */
  vm?: {
    /** NIC model per socket (`virtio`, `e1000`, `e1000e`, `rtl8139`); virtio where absent. */
    nics?: Record<number, string>;
    /** Host CPU bandwidth in cores for the QEMU process (cgroup quota); default the node's cores. */
    cpuCap?: number;
  };
  routes: { dest: string; gateway: string; socket: number }[];
}

export interface LinkPlan {
  name: string;
  endpoints: { node: string; socket: number }[];
  /** Present: the link runs through the emulator. */
  emulation?: EmulationParams;
}

export interface MzPlan {
  mzid: string;
  infranet: InfranetPlan;
  nameResolution: "experiment" | "infranet";
  nodes: NodePlan[];
  links: LinkPlan[];
}

export function ipToInt(ip: string): number {
  const p = ip.split(".").map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) {
    throw new Error(`bad IPv4 address "${ip}"`);
  }
  return ((p[0] ?? 0) * 2 ** 24 + (p[1] ?? 0) * 2 ** 16 + (p[2] ?? 0) * 2 ** 8 + (p[3] ?? 0)) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function parseCidr(cidr: string): { base: number; bits: number; address: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(cidr);
  if (!m || Number(m[2]) > 32) throw new Error(`bad CIDR "${cidr}": expected a.b.c.d/n`);
  const bits = Number(m[2]);
  const address = ipToInt(m[1] as string);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return { base: (address & mask) >>> 0, bits, address };
}

/** The node's host number on the infranet (names its port in the infrapod). */
export function infranetHost(infranet: InfranetPlan, address: string): number {
  const { base, bits } = parseCidr(infranet.subnet);
  const a = ipToInt(address);
  const host = a - base;
  if (host <= 0 || host >= 2 ** (32 - bits) - 1)
    throw new Error(`infranet address ${address} is not a host of ${infranet.subnet}`);
  return host;
}

/**
 * A plan straight from an experiment: every node on this host, infranet
 * addresses in order from the subnet, links emulated when their constraints
 * ask for latency, loss or capacity.
 */
export function planFromExperiment(
  xp: Experiment,
  opts: { mzid: string; infranet?: InfranetPlan; macSeed?: (node: string) => string },
): MzPlan {
  const infranet = opts.infranet ?? { subnet: "172.30.0.0/16", gateway: "172.30.0.1" };
  const { base, bits } = parseCidr(infranet.subnet);
  if (xp.nodes.length + 10 >= 2 ** (32 - bits)) {
    throw new Error(`infranet ${infranet.subnet} is too small for ${xp.nodes.length} nodes`);
  }
  const nodes: NodePlan[] = xp.nodes.map((n, i) => {
    const cores = n.constraints.find((c) => c.prop === "proc.cores" && typeof c.value === "number");
    const memory = n.constraints.find((c) => c.prop === "memory.capacity" && typeof c.value === "number");
    const address = intToIp(base + 10 + i);
    const plan: NodePlan = {
      name: n.name,
      infranet: { address, mac: opts.macSeed ? opts.macSeed(n.name) : macFromIp(address) },
      interfaces: n.sockets.map((s) => ({ socket: s.index, addrs: s.addrs })),
      routes: n.routes ?? [],
    };
    if (n.image) plan.image = n.image;
    if (cores) plan.cores = cores.value as number;
    if (memory) plan.memory = memory.value as number;
    // A node that asks for a VM (virt.kind == "vm") boots QEMU, its sockets' NIC models as asked.
    if (n.constraints.some((c) => c.prop === "virt.kind" && c.op === "==" && c.value === "vm")) {
      const nics: Record<number, string> = {};
      for (const s of n.sockets) {
        const m = s.constraints.find((c) => c.prop === "port.model" && c.op === "==" && typeof c.value === "string");
        if (m) nics[s.index] = m.value as string;
      }
      plan.vm = { nics };
    }
    return plan;
  });
  const links: LinkPlan[] = xp.links.map((l) => {
    const plan: LinkPlan = { name: l.name, endpoints: l.endpoints.map((e) => ({ node: e.node, socket: e.socket })) };
    const emu = linkEmulation(l, xp);
    if (emu) plan.emulation = emu;
    return plan;
  });
  return { mzid: opts.mzid, infranet, nameResolution: xp.parameters.nameResolution ?? "experiment", nodes, links };
}

/** A locally administered MAC derived from the infranet address (stable, unique on the infranet). */
export function macFromIp(address: string): string {
  const n = ipToInt(address);
  return ["02", "6d", (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]
    .map((x) => (typeof x === "string" ? x : x.toString(16).padStart(2, "0")))
    .join(":");
}
