/**
 * What a facility holds, in numbers an operator checks at a glance: resources
 * by kind, allocation modes, total cores/memory/disk/GPUs, hardware classes,
 * the switch layers, tag pool sizes, cables, and how many problems.
 */
import type { Facility, NetworkRole, Port, PortRef, Resource, ResourceKind, SwitchInfo } from "@merge/xir";
import { KIND_ORDER } from "./builder.ts";
import type { Problem } from "./problem.ts";
import { rangeSize } from "./validate.ts";

export interface HardwareSummary {
  /** The `hardware` property, or `<cores>c-<memory GiB>g-<platform>` when a node has none. */
  name: string;
  count: number;
  cores: number;
  memory: number;
  disk: number;
  platform: string;
  gpus: number;
  gpuModel?: string;
  /** Hypervisor-capable nodes of this class. */
  hypervisors: number;
  xpnetPorts: number;
  /** Fastest xpnet port, bits/s. */
  xpnetCapacity: number;
}

export interface SwitchSummary {
  network: NetworkRole;
  layer: SwitchInfo["layer"];
  count: number;
  vxlan: number;
  ports: number;
}

export interface FacilitySummary {
  name: string;
  resources: number;
  byKind: Record<ResourceKind, number>;
  nodes: { total: number; physical: number; virtual: number; both: number };
  cores: number;
  memory: number;
  disk: number;
  gpus: number;
  platforms: Record<string, number>;
  hardware: HardwareSummary[];
  switches: SwitchSummary[];
  ports: number;
  portsByRole: Record<string, number>;
  cables: number;
  vlanPools: { domain: string; ids: number }[];
  vnis: number;
  gatewayPorts: number;
  problems: { errors: number; warnings: number };
}

const LAYERS = ["spine", "fabric", "leaf"] as const;
/** `xpnet-p2` before `xpnet-p10`. */
const NATURAL = new Intl.Collator("en", { numeric: true });
const NETWORKS = ["xpnet", "infranet", "mgmt"] as const;

export function summarize(f: Facility, problems: readonly Problem[] = []): FacilitySummary {
  const byKind = Object.fromEntries(KIND_ORDER.map((k) => [k, 0])) as Record<ResourceKind, number>;
  const nodes = { total: 0, physical: 0, virtual: 0, both: 0 };
  const platforms: Record<string, number> = {};
  const hardware = new Map<string, HardwareSummary>();
  const switches = new Map<string, SwitchSummary>();
  const portsByRole: Record<string, number> = {};
  let cores = 0;
  let memory = 0;
  let disk = 0;
  let gpus = 0;
  let ports = 0;
  let gatewayPorts = 0;
  for (const r of f.resources) {
    byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
    ports += r.ports.length;
    for (const p of r.ports) portsByRole[p.role] = (portsByRole[p.role] ?? 0) + 1;
    if (r.kind === "gateway") gatewayPorts += r.ports.filter((p) => p.role === "gateway").length;
    if (r.switch) {
      const k = `${r.switch.network}/${r.switch.layer}`;
      const s = switches.get(k) ?? { network: r.switch.network, layer: r.switch.layer, count: 0, vxlan: 0, ports: 0 };
      s.count++;
      if (r.switch.vxlan) s.vxlan++;
      s.ports += r.ports.length;
      switches.set(k, s);
    }
    if (r.kind !== "node") continue;
    nodes.total++;
    const physical = r.alloc.includes("physical");
    const virtual = r.alloc.includes("virtual");
    if (physical && virtual) nodes.both++;
    else if (virtual) nodes.virtual++;
    else if (physical) nodes.physical++;
    const c = num(r, "proc.cores");
    const m = num(r, "memory.capacity");
    const d = num(r, "disk.capacity");
    const g = num(r, "gpu.count");
    cores += c;
    memory += m;
    disk += d;
    gpus += g;
    const platform = String(r.props.platform ?? "unknown");
    platforms[platform] = (platforms[platform] ?? 0) + 1;
    const name =
      typeof r.props.hardware === "string" ? r.props.hardware : `${c}c-${Math.round(m / 2 ** 30)}g-${platform}`;
    let h = hardware.get(name);
    if (!h) {
      h = {
        name,
        count: 0,
        cores: c,
        memory: m,
        disk: d,
        platform,
        gpus: g,
        hypervisors: 0,
        xpnetPorts: 0,
        xpnetCapacity: 0,
      };
      if (typeof r.props["gpu.model"] === "string") h.gpuModel = r.props["gpu.model"];
      for (const p of r.ports) {
        if (p.role !== "xpnet") continue;
        h.xpnetPorts++;
        h.xpnetCapacity = Math.max(h.xpnetCapacity, p.capacity);
      }
      hardware.set(name, h);
    }
    h.count++;
    if (virtual) h.hypervisors++;
  }
  const order = (s: SwitchSummary) => NETWORKS.indexOf(s.network) * 3 + LAYERS.indexOf(s.layer);
  return {
    name: f.name,
    resources: f.resources.length,
    byKind,
    nodes,
    cores,
    memory,
    disk,
    gpus,
    platforms,
    hardware: [...hardware.values()].sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1)),
    switches: [...switches.values()].sort((a, b) => order(a) - order(b)),
    ports,
    portsByRole,
    cables: f.cables.length,
    vlanPools: Object.entries(f.tags.vlan)
      .map(([domain, ranges]) => ({ domain, ids: rangeSize(ranges) }))
      .sort((a, b) => NATURAL.compare(a.domain, b.domain)),
    vnis: rangeSize(f.tags.vni),
    gatewayPorts,
    problems: {
      errors: problems.filter((p) => p.severity === "error").length,
      warnings: problems.filter((p) => p.severity === "warning").length,
    },
  };
}

function num(r: Resource, prop: string): number {
  const v = r.props[prop];
  return typeof v === "number" ? v : 0;
}

export interface PortDetail {
  port: Port;
  /** The cable on this port and the port at its other end, when cabled. */
  cable?: string;
  peer?: PortRef;
}

/** One resource with, per port, where it is cabled: what `cog model show --resource` prints. */
export function resourceDetail(f: Facility, id: string): { resource: Resource; ports: PortDetail[] } | undefined {
  const resource = f.resources.find((r) => r.id === id);
  if (!resource) return undefined;
  const byPort = new Map<string, PortDetail>();
  const ports = resource.ports.map((port) => {
    const d: PortDetail = { port };
    byPort.set(port.name, d);
    return d;
  });
  for (const c of f.cables) {
    const [a, b] = c.ends;
    for (const [mine, other] of [
      [a, b],
      [b, a],
    ] as const) {
      if (mine.resource !== id) continue;
      const d = byPort.get(mine.port);
      if (d && d.cable === undefined) {
        d.cable = c.id;
        d.peer = other;
      }
    }
  }
  return { resource, ports };
}
