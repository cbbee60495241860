/**
 * What the linux data plane holds of a materialization: its nodes with their
 * infranet and experiment addresses, its links with their emulation, as plain
 * data. There is one way in: the specs of the materialization plan's fragments
 * (`@merge/materialize`), one at a time as rex sends them (backend.ts) or all
 * of a facility's fragments at once (`recordOf`, the data plane's batched
 * `materialize`). state.ts keeps it across restarts.
 */
import type { EmulationSpec, Fragment, InfrapodSpec, LinkSpec, NodeProfileReport, NodeSpec } from "@merge/materialize";
import type { LinkEmulation } from "@merge/xir";
import { formatIPv4, network, parseIPv4, parsePrefix, size } from "@merge/xir/ipv4";

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
  /**
   * Host CPU bandwidth in cores (the cgroup quota per 100 ms period): the
   * model's `cpu.share` × the cores (× 1 when no cores were realized); absent: the cores.
   */
  cpuCap?: number;
  infranet: { address: string; mac: string };
  interfaces: { socket: number; addrs: string[] }[];
  routes: { dest: string; gateway: string; socket: number }[];
  /** Present: the node is a VM (QEMU, vm.ts) rather than a container. */
  vm?: {
    /** NIC model per socket (`virtio`, `e1000`, `e1000e`, `rtl8139`); virtio where absent. */
    nics?: Record<number, string>;
    /** The model's `clock.dilation`: the guest clock runs this many times slower (vm.ts, dilation.ts). */
    clockDilation?: number;
  };
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

/** A materialization's record as its infrapod spec starts it: no nodes or links yet. */
export function emptyRecord(spec: Pick<InfrapodSpec, "mzid" | "infranet" | "nameResolution">): MzPlan {
  return {
    mzid: spec.mzid,
    infranet: { subnet: spec.infranet.subnet, gateway: spec.infranet.gateway },
    nameResolution: spec.nameResolution ?? "experiment",
    nodes: [],
    links: [],
  };
}

export function nodeRecord(spec: NodeSpec): NodePlan {
  const plan: NodePlan = {
    name: spec.node,
    // The container's infranet MAC comes from its (unique) infranet address:
    // resource MACs repeat when several virtual nodes share a hypervisor port.
    infranet: { address: spec.infranet.address, mac: macFromIp(spec.infranet.address) },
    interfaces: spec.interfaces.map((i) => ({ socket: i.socket, addrs: i.addrs })),
    routes: spec.routes,
  };
  if (spec.image) plan.image = spec.image;
  // Limits only for virtual nodes; a physical node has its whole machine.
  if (spec.mode === "virtual" && spec.alloc.cores > 0) plan.cores = spec.alloc.cores;
  if (spec.mode === "virtual" && spec.alloc.memory > 0) plan.memory = spec.alloc.memory;
  const share = spec.mode === "virtual" ? spec.profile?.cpuShare : undefined;
  if (share) plan.cpuCap = share * (plan.cores ?? 1);
  if (spec.kind === "vm") {
    const nics: Record<number, string> = {};
    for (const i of spec.interfaces) if (i.model) nics[i.socket] = i.model;
    plan.vm = { nics };
    if (spec.profile?.clockDilation) plan.vm.clockDilation = spec.profile.clockDilation;
  }
  return plan;
}

/** What a virtual container got: its cgroup's limits (a VM's profile is vm.ts's). */
export function containerProfile(node: NodePlan): NodeProfileReport {
  const cap = cpuCapOf(node);
  return {
    kind: "container",
    ...(node.cores ? { cores: node.cores } : {}),
    ...(node.memory ? { memoryMiB: Math.round(node.memory / 2 ** 20) } : {}),
    ...(cap ? { cpuCap: cap } : {}),
  };
}

/** The host cores of CPU bandwidth a virtual node may take (its cgroup quota per period); undefined: unlimited. */
export function cpuCapOf(node: Pick<NodePlan, "cores" | "cpuCap">): number | undefined {
  return node.cpuCap ?? node.cores;
}

/** A link as created: emulated links get their parameters from the emulation spec (`emulatedRecords`). */
export function linkRecord(spec: Pick<LinkSpec, "link" | "endpoints" | "emulator">): LinkPlan {
  const l: LinkPlan = { name: spec.link, endpoints: spec.endpoints.map((e) => ({ node: e.node, socket: e.socket })) };
  if (spec.emulator) l.emulation = {};
  return l;
}

/**
 * One facility's fragments (`planMaterialization(...).facilities[i].fragments`)
 * as the record the batched `materialize` builds at once: what rex's calls
 * build one by one. Teardown and power fragments have no place in it.
 */
export function recordOf(fragments: readonly Fragment[]): MzPlan {
  const pod = fragments.find((f) => f.op === "infrapod.setup");
  if (!pod) throw new Error("the fragments have no infrapod.setup: a materialization starts with its infrapod");
  const mz = emptyRecord(pod.infrapod);
  const links = new Map<string, LinkPlan>();
  const emulations: EmulationSpec[] = [];
  for (const [i, f] of fragments.entries()) {
    const mzid = "infrapod" in f ? f.infrapod.mzid : "node" in f ? f.node.mzid : "link" in f ? f.link.mzid : undefined;
    if (mzid !== undefined && mzid !== mz.mzid)
      throw new Error(`fragments[${i}] (${f.op}) is of materialization ${mzid}, not ${mz.mzid}`);
    if (f.op === "node.setup") mz.nodes.push(nodeRecord(f.node));
    else if (f.op === "link.create") links.set(f.link.link, linkRecord(f.link));
    else if (f.op === "emulation.setup") emulations.push(f.emulation);
    else if (f.op !== "infrapod.setup")
      throw new Error(`fragments[${i}]: ${f.op} is not part of bringing a materialization up`);
  }
  for (const e of emulations) {
    for (const x of e.links) {
      const l = links.get(x.link) ?? linkRecord({ link: x.link, endpoints: x.endpoints });
      l.emulation = { ...x.params };
      links.set(x.link, l);
    }
  }
  mz.links = [...links.values()];
  return mz;
}

/** An infranet subnet as numbers; throws naming the field when malformed. */
function infranetSubnet(infranet: InfranetPlan): { base: number; prefix: number } {
  const p = parsePrefix(infranet.subnet);
  if (!p) throw new Error(`infranet subnet "${infranet.subnet}" is not an IPv4 prefix (e.g. 172.30.0.0/16)`);
  return { base: network(p.addr, p.prefix), prefix: p.prefix };
}

/** The prefix length of the infranet (for addresses on it). */
export function infranetBits(infranet: InfranetPlan): number {
  return infranetSubnet(infranet).prefix;
}

/** The infranet's network address and netmask, dotted (dnsmasq's dhcp-range). */
export function infranetRange(infranet: InfranetPlan): { base: string; mask: string } {
  const { base, prefix } = infranetSubnet(infranet);
  return { base: formatIPv4(base), mask: formatIPv4(2 ** 32 - size(prefix)) };
}

/** The node's host number on the infranet (names its port in the infrapod). */
export function infranetHost(infranet: InfranetPlan, address: string): number {
  const { base, prefix } = infranetSubnet(infranet);
  const a = parseIPv4(address);
  const host = a === undefined ? -1 : a - base;
  if (host <= 0 || host >= size(prefix) - 1)
    throw new Error(`infranet address ${address} is not a host of ${infranet.subnet}`);
  return host;
}

/** A locally administered MAC derived from the infranet address (stable, unique on the infranet). */
export function macFromIp(address: string): string {
  const n = parseIPv4(address);
  if (n === undefined) throw new Error(`infranet address "${address}" is not an IPv4 address`);
  return [0x02, 0x6d, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]
    .map((x) => x.toString(16).padStart(2, "0"))
    .join(":");
}
