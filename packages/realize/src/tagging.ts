/**
 * Tags for a link's virtual networks. Every cable carries one form: a switch
 * port on a VLAN-only switch carries the network's VLAN id for that switch's
 * VLAN domain, a port on a VXLAN switch its VNI for the facility; the port at
 * the other end of such a cable (emulator, gateway, hypervisor) carries the
 * same. Bare-metal access ports are untagged; trunked bare-metal ports always
 * carry a VLAN id (the node makes VLAN sub-interfaces). Gateways carry the VNI
 * across interconnects. VLAN-only switches between two VXLAN switches of a
 * path are underlay and carry no tag.
 */
import type { LinkSegment, TagRange, Waypoint } from "@merge/xir";
import type { AllocationRecord } from "./allocation.ts";
import type { Attempt, ProblemLog } from "./context.ts";
import { type InternetIndex, KIND_EMULATOR, KIND_GATEWAY, KIND_SWITCH } from "./internet.ts";
import type { Placement } from "./placement.ts";
import { TagPool } from "./tags.ts";
import type { Usage } from "./usage.ts";

/** A virtual network being built: the tags and cables one segment group holds. */
export interface VirtualNet {
  use: string;
  edges: Set<number>;
  segments: { endpoints: { node: string; socket: number }[]; ports: number[] }[];
}

/** One virtual network's ports by role, which decide each port's tag. */
interface NetPorts {
  /** Bare-metal ports carrying several sockets (VLAN trunks). */
  trunk: Set<number>;
  /** Bare-metal ports carrying one socket. */
  access: Set<number>;
  /** Hypervisor ports carrying a VM's socket. */
  vm: Set<number>;
  /** VLAN-only switch ports between two VTEPs. */
  underlay: Set<number>;
}

/** The VLAN and VNI pools of one attempt; tags taken are recorded as they are handed out. */
export class Tagger {
  private readonly vlanPools = new Map<number, TagPool>();
  private readonly vniPools = new Map<number, TagPool>();
  private readonly ix: InternetIndex;
  private readonly usage: Usage;
  private readonly records: AllocationRecord[];
  private readonly id: string;
  private readonly problems: ProblemLog;
  private readonly placed: ReadonlyMap<string, Placement>;
  private readonly socketPos: ReadonlyMap<string, number>;

  constructor(a: Attempt) {
    this.ix = a.demand.ix;
    this.usage = a.usage;
    this.records = a.records;
    this.id = a.demand.id;
    this.problems = a.problems;
    this.placed = a.placed;
    this.socketPos = a.demand.socketPos;
  }

  /** A VNI of facility `f` for `use`, recorded; undefined when the pool is exhausted. */
  vni(f: number, use: string): number | undefined {
    const t = this.vniPool(f).take();
    if (t !== undefined) {
      this.records.push({ kind: "vni", realization: this.id, facility: this.ix.facilityNames[f]!, tag: t, use });
    }
    return t;
  }

  vniPool(f: number): TagPool {
    let pool = this.vniPools.get(f);
    if (!pool) {
      pool = new TagPool(sortedRanges(this.ix.internet.facilities[f]!.tags.vni), this.usage.vniUsed[f]!);
      this.vniPools.set(f, pool);
    }
    return pool;
  }

  private vlanPool(d: number): TagPool {
    let pool = this.vlanPools.get(d);
    if (!pool) {
      const [f, name] = this.ix.domainNames[d]!.split("\u0000");
      const fac = this.ix.internet.facilities[this.ix.facilityOf.get(f!)!]!;
      pool = new TagPool(sortedRanges(fac.tags.vlan[name!] ?? []), this.usage.vlanUsed[d]!);
      this.vlanPools.set(d, pool);
    }
    return pool;
  }

  /** The segments of one virtual network with their tags; undefined (with a problem) when a pool is exhausted. */
  tag(vn: VirtualNet, link: string): LinkSegment[] | undefined {
    const ix = this.ix;
    const np: NetPorts = { trunk: new Set(), access: new Set(), vm: new Set(), underlay: new Set() };
    for (const seg of vn.segments) {
      for (const ep of seg.endpoints) {
        const p = this.placed.get(ep.node)!;
        const k = this.socketPos.get(`${ep.node}\u0000${ep.socket}`)!;
        if (p.mode === "virtual") np.vm.add(p.ports[k]!);
        else (p.virtual[k] ? np.trunk : np.access).add(p.ports[k]!);
      }
    }
    // VLAN-only switches between two VTEPs of a path see only encapsulated
    // traffic (pure underlay, e.g. spines) and need no tag.
    for (const seg of vn.segments) {
      let first = -1;
      let last = -1;
      for (let i = 0; i < seg.ports.length; i++) {
        if (!isVtep(ix, np, seg.ports[i]!)) continue;
        if (first < 0) first = i;
        last = i;
      }
      for (let i = first + 1; i < last; i++) {
        const r = ix.portRes[seg.ports[i]!]!;
        if (ix.resKind[r] === KIND_SWITCH && !ix.resVxlan[r]) np.underlay.add(seg.ports[i]!);
      }
    }
    const vlanDomains = new Set<number>();
    const vniFacilities = new Set<number>();
    for (const seg of vn.segments) {
      if (seg.ports.length < 2) continue; // bridged inside one hypervisor
      for (const port of seg.ports) {
        const d = wantVlan(ix, np, port);
        if (d >= 0) vlanDomains.add(d);
        const f = wantVni(ix, np, port);
        if (f >= 0) vniFacilities.add(f);
      }
    }
    const vlan = new Map<number, number>();
    const vni = new Map<number, number>();
    for (const d of [...vlanDomains].sort((p, q) => p - q)) {
      const pool = this.vlanPool(d);
      const t = pool.take();
      const [f, name] = ix.domainNames[d]!.split("\u0000");
      if (t === undefined) {
        this.problems.push({
          element: "link",
          name: link,
          message: `no free VLAN id in VLAN domain ${name} of facility ${f} (pool ${pool.describe()} is exhausted)`,
        });
        return undefined;
      }
      vlan.set(d, t);
      this.records.push({ kind: "vlan", realization: this.id, facility: f!, domain: name!, tag: t, use: vn.use });
    }
    for (const f of [...vniFacilities].sort((p, q) => p - q)) {
      const t = this.vni(f, vn.use);
      if (t === undefined) {
        this.problems.push({
          element: "link",
          name: link,
          message: `no free VNI in facility ${ix.facilityNames[f]} (pool ${this.vniPool(f).describe()} is exhausted)`,
        });
        return undefined;
      }
      vni.set(f, t);
    }
    return vn.segments.map((s) => ({
      endpoints: s.endpoints,
      waypoints: s.ports.map((port) => {
        const r = ix.portRes[port]!;
        const w: Waypoint = {
          facility: ix.facilityNames[ix.resFacility[r]!]!,
          resource: ix.resources[r]!.id,
          port: ix.ports[port]!.name,
        };
        if (s.ports.length < 2) return w;
        const d = wantVlan(ix, np, port);
        if (d >= 0) w.vlan = vlan.get(d);
        const f = wantVni(ix, np, port);
        if (f >= 0) w.vni = vni.get(f);
        return w;
      }),
    }));
  }
}

/** VTEPs encapsulate: VXLAN switches, hypervisors (for their VMs), emulators, gateways. */
function isVtep(ix: InternetIndex, np: NetPorts, port: number): boolean {
  const r = ix.portRes[port]!;
  const kind = ix.resKind[r];
  return (
    (kind === KIND_SWITCH && ix.resVxlan[r] === 1) || kind === KIND_EMULATOR || kind === KIND_GATEWAY || np.vm.has(port)
  );
}

/** The VLAN domain whose id a port carries, -1 for none. */
function wantVlan(ix: InternetIndex, np: NetPorts, port: number): number {
  if (np.underlay.has(port)) return -1;
  const r = ix.portRes[port]!;
  const peer = ix.portPeer[port]!;
  if (ix.resKind[r] === KIND_SWITCH) {
    return !ix.resVxlan[r] || (peer >= 0 && np.trunk.has(peer)) ? ix.resDomain[r]! : -1;
  }
  if (np.access.has(port) || peer < 0 || np.underlay.has(peer)) return -1;
  const s = ix.portRes[peer]!;
  if (ix.resKind[s] !== KIND_SWITCH) return -1;
  return np.trunk.has(port) || !ix.resVxlan[s] ? ix.resDomain[s]! : -1;
}

/** The facility whose VNI a port carries, -1 for none. */
function wantVni(ix: InternetIndex, np: NetPorts, port: number): number {
  const r = ix.portRes[port]!;
  if (ix.resKind[r] === KIND_SWITCH) return ix.resVxlan[r] ? ix.resFacility[r]! : -1;
  if (np.access.has(port) || np.trunk.has(port)) return -1;
  const peer = ix.portPeer[port]!;
  if (peer < 0) return -1;
  const s = ix.portRes[peer]!;
  if (ix.resKind[s] !== KIND_SWITCH || np.underlay.has(peer) || ix.resVxlan[s]) return ix.resFacility[r]!;
  return -1;
}

function sortedRanges(r: readonly TagRange[]): TagRange[] {
  return [...r].sort((a, b) => a.first - b.first);
}
