/**
 * The prepared resource internet: every facility's resources, ports and cables
 * numbered globally and laid out in typed arrays, so a realization walks the
 * switch mesh without building objects. Built once per resource internet; the
 * portal can cache it as long as the facility models do not change.
 */
import {
  type AllocMode,
  DEFAULT_VIRT_KINDS,
  type Port,
  type Resource,
  type ResourceInternet,
  type Scalar,
  type VirtKind,
} from "@merge/xir";
import { MergeError } from "@merge/xir/errors";

export const KIND_NODE = 0;
export const KIND_SWITCH = 1;
export const KIND_EMULATOR = 2;
export const KIND_INFRAPOD = 3;
export const KIND_STORAGE = 4;
export const KIND_GATEWAY = 5;
const KINDS: Record<Resource["kind"], number> = {
  node: KIND_NODE,
  switch: KIND_SWITCH,
  emulator: KIND_EMULATOR,
  "infrapod-server": KIND_INFRAPOD,
  storage: KIND_STORAGE,
  gateway: KIND_GATEWAY,
};

/** Testbed nodes with identical properties, allocation modes and experiment ports. */
export interface HostClass {
  id: number;
  props: Record<string, Scalar>;
  alloc: AllocMode[];
  /** Virtual node kinds the class's hypervisors make, in order of preference (containers when undeclared). */
  kinds: readonly VirtKind[];
  /** Experiment-network ports, in the resource's order (identical names across the class). */
  ports: Port[];
  /** Member resources, sorted by leaf rank (so neighbours in the array are neighbours in the mesh). */
  members: Int32Array;
  /** Leaf rank of each member (parallel to `members`). */
  memberRank: Int32Array;
}

export interface InternetIndex {
  internet: ResourceInternet;
  facilityNames: string[];
  facilityOf: Map<string, number>;
  /** Global resource arrays. */
  resources: Resource[];
  resFacility: Int32Array;
  resKind: Uint8Array;
  /** Per facility: resource id → global resource index. */
  resIds: Map<string, number>[];
  /** Ports of resource r are [resPortStart[r], resPortStart[r+1]). */
  resPortStart: Int32Array;
  ports: Port[];
  portRes: Int32Array;
  /** Edge (cable or interconnect) at a port, -1 when none; only experiment-network and gateway ports. */
  portEdge: Int32Array;
  /** The port at the other end of that edge, -1 when none. */
  portPeer: Int32Array;
  /** Edges: facility cables first (named by cable id), then interconnects (by interconnect id). */
  edgeName: string[];
  edgeCap: Float64Array;
  edgeLatency: Float64Array;
  edgeInterconnect: Uint8Array;
  /** Facility of a cable, -1 for interconnects. */
  edgeFacility: Int32Array;
  edgeCount: number;
  /** Switches: VLAN domain (global index into domainNames), VXLAN capability. -1 for non-switches. */
  resDomain: Int32Array;
  resVxlan: Uint8Array;
  /** `${facility}\u0000${domain}` per domain index. */
  domainNames: string[];
  domainFacility: Int32Array;
  /** Testbed nodes: the leaf switch their first experiment port is cabled to, -1 when none. */
  resLeaf: Int32Array;
  /** Leaf switches: a total order keeping leaves of one fabric, then one facility, together. */
  leafRank: Int32Array;
  /** Per leaf rank: its fabric (upstream switch, or the leaf itself) and facility, for locality levels. */
  rankFabric: Int32Array;
  rankFacility: Int32Array;
  classes: HostClass[];
  resClass: Int32Array;
  /** Position of a testbed node within its class's `members`. */
  resClassPos: Int32Array;
  /** Per facility: emulators and infrapod servers (global indices). */
  emulators: number[][];
  infrapodServers: number[][];
  /** Per facility: cable id → edge; and interconnect id → edge. */
  cableIds: Map<string, number>[];
  interconnectIds: Map<string, number>;
}

const XP = new Set(["xpnet", "gateway"]);

/**
 * Properties that say where a resource is rather than what it is: matched per
 * resource, never part of a host class (a `rack` property would otherwise make
 * every rack a class of its own and hide how abundant its hardware is).
 */
export const LOCATION_PROPS: ReadonlySet<string> = new Set(["host", "facility", "rack"]);

export class InternetError extends MergeError<"realize"> {
  constructor(message: string, options?: ErrorOptions) {
    super("realize", "internet", message, options);
  }
}

/** Number, cross-reference and order the resource internet. Throws InternetError on dangling references. */
export function prepareInternet(internet: ResourceInternet): InternetIndex {
  const facilityNames = internet.facilities.map((f) => f.name);
  const facilityOf = new Map<string, number>();
  facilityNames.forEach((n, i) => {
    if (facilityOf.has(n)) throw new InternetError(`resource internet: facility '${n}' appears twice`);
    facilityOf.set(n, i);
  });

  const resources: Resource[] = [];
  const resFacilityList: number[] = [];
  const resIds: Map<string, number>[] = internet.facilities.map(() => new Map());
  internet.facilities.forEach((f, fi) => {
    const ids = resIds[fi]!;
    for (const r of f.resources) {
      if (ids.has(r.id)) throw new InternetError(`facility ${f.name}: resource '${r.id}' appears twice`);
      ids.set(r.id, resources.length);
      resources.push(r);
      resFacilityList.push(fi);
    }
  });
  const n = resources.length;
  const resFacility = Int32Array.from(resFacilityList);
  const resKind = new Uint8Array(n);
  const resPortStart = new Int32Array(n + 1);
  const ports: Port[] = [];
  const portResList: number[] = [];
  // Resources with many ports (switches) get a name index; others are scanned.
  const portIndex = new Map<number, Map<string, number>>();
  for (let r = 0; r < n; r++) {
    const res = resources[r]!;
    resKind[r] = KINDS[res.kind];
    resPortStart[r] = ports.length;
    if (res.ports.length > 16) portIndex.set(r, new Map(res.ports.map((p, i) => [p.name, ports.length + i])));
    for (const p of res.ports) {
      ports.push(p);
      portResList.push(r);
    }
  }
  resPortStart[n] = ports.length;
  const portRes = Int32Array.from(portResList);
  const portEdge = new Int32Array(ports.length).fill(-1);
  const portPeer = new Int32Array(ports.length).fill(-1);
  // Any cable, whatever the network: only used to place nodes without experiment ports.
  const anyPeer = new Int32Array(ports.length).fill(-1);
  const findPort = (r: number, name: string): number | undefined => {
    const idx = portIndex.get(r);
    if (idx) return idx.get(name);
    for (let p = resPortStart[r]!; p < resPortStart[r + 1]!; p++) if (ports[p]!.name === name) return p;
    return undefined;
  };

  const edgeName: string[] = [];
  const edgeCapList: number[] = [];
  const edgeLatencyList: number[] = [];
  const edgeIcList: number[] = [];
  const edgeFacilityList: number[] = [];
  const cableIds: Map<string, number>[] = internet.facilities.map(() => new Map());
  const interconnectIds = new Map<string, number>();
  const portOf = (fi: number, ref: { resource: string; port: string }, where: string): number => {
    const r = resIds[fi]!.get(ref.resource);
    if (r === undefined) throw new InternetError(`${where}: unknown resource '${ref.resource}'`);
    const p = findPort(r, ref.port);
    if (p === undefined) throw new InternetError(`${where}: resource '${ref.resource}' has no port '${ref.port}'`);
    return p;
  };
  const link = (a: number, b: number, name: string, cap: number, latency: number, ic: boolean) => {
    const e = edgeName.length;
    edgeName.push(name);
    edgeCapList.push(cap);
    edgeLatencyList.push(latency);
    edgeIcList.push(ic ? 1 : 0);
    edgeFacilityList.push(ic ? -1 : resFacility[portRes[a]!]!);
    anyPeer[a] = b;
    anyPeer[b] = a;
    // Only experiment-network and gateway ports carry experiment links.
    if (XP.has(ports[a]!.role) && XP.has(ports[b]!.role)) {
      portEdge[a] = e;
      portEdge[b] = e;
      portPeer[a] = b;
      portPeer[b] = a;
    }
  };
  internet.facilities.forEach((f, fi) => {
    for (const c of f.cables) {
      const a = portOf(fi, c.ends[0], `facility ${f.name}: cable ${c.id}`);
      const b = portOf(fi, c.ends[1], `facility ${f.name}: cable ${c.id}`);
      cableIds[fi]!.set(c.id, edgeName.length);
      link(a, b, c.id, Math.min(ports[a]!.capacity, ports[b]!.capacity), 0, false);
    }
  });
  for (const ic of internet.interconnects) {
    const fa = facilityOf.get(ic.a.facility);
    const fb = facilityOf.get(ic.b.facility);
    if (fa === undefined || fb === undefined) {
      throw new InternetError(
        `interconnect ${ic.id}: unknown facility '${fa === undefined ? ic.a.facility : ic.b.facility}'`,
      );
    }
    const a = portOf(fa, ic.a, `interconnect ${ic.id}`);
    const b = portOf(fb, ic.b, `interconnect ${ic.id}`);
    interconnectIds.set(ic.id, edgeName.length);
    link(a, b, ic.id, ic.capacity, ic.latency, true);
  }

  // Switches: VLAN domains and VXLAN capability.
  const resDomain = new Int32Array(n).fill(-1);
  const resVxlan = new Uint8Array(n);
  const domainNames: string[] = [];
  const domainFacilityList: number[] = [];
  const domainOf = new Map<string, number>();
  for (let r = 0; r < n; r++) {
    const sw = resources[r]!.switch;
    if (!sw) continue;
    const key = `${facilityNames[resFacility[r]!]}\u0000${sw.vlanDomain}`;
    let d = domainOf.get(key);
    if (d === undefined) {
      d = domainNames.length;
      domainOf.set(key, d);
      domainNames.push(key);
      domainFacilityList.push(resFacility[r]!);
    }
    resDomain[r] = d;
    resVxlan[r] = sw.vxlan ? 1 : 0;
  }

  // Locality: each testbed node's leaf, each leaf's fabric, and an order of leaves.
  const resLeaf = new Int32Array(n).fill(-1);
  for (let r = 0; r < n; r++) {
    if (resKind[r] !== KIND_NODE) continue;
    let fallback = -1;
    for (let p = resPortStart[r]!; p < resPortStart[r + 1]!; p++) {
      const peer = portPeer[p]!;
      if (peer >= 0 && resKind[portRes[peer]!] === KIND_SWITCH) {
        resLeaf[r] = portRes[peer]!;
        break;
      }
      const any = anyPeer[p]!;
      if (fallback < 0 && any >= 0 && resKind[portRes[any]!] === KIND_SWITCH) fallback = portRes[any]!;
    }
    if (resLeaf[r]! < 0 && fallback >= 0) resLeaf[r] = fallback;
  }
  const leaves = [...new Set(Array.from(resLeaf).filter((l) => l >= 0))];
  const fabricOf = new Map<number, number>();
  for (const l of leaves) {
    let fabric = l;
    for (let p = resPortStart[l]!; p < resPortStart[l + 1]!; p++) {
      const peer = portPeer[p]!;
      if (peer < 0) continue;
      const s = portRes[peer]!;
      if (resKind[s] === KIND_SWITCH && resources[s]!.switch?.layer !== "leaf") {
        fabric = s;
        break;
      }
    }
    fabricOf.set(l, fabric);
  }
  leaves.sort((a, b) => resFacility[a]! - resFacility[b]! || fabricOf.get(a)! - fabricOf.get(b)! || a - b);
  const leafRank = new Int32Array(n).fill(-1);
  const rankFabric = new Int32Array(leaves.length);
  const rankFacility = new Int32Array(leaves.length);
  leaves.forEach((l, i) => {
    leafRank[l] = i;
    rankFabric[i] = fabricOf.get(l)!;
    rankFacility[i] = resFacility[l]!;
  });

  // Host classes: identical properties, modes and experiment ports.
  const classes: HostClass[] = [];
  const classOf = new Map<string, number>();
  const resClass = new Int32Array(n).fill(-1);
  const membersOf: number[][] = [];
  for (let r = 0; r < n; r++) {
    const res = resources[r]!;
    if (resKind[r] !== KIND_NODE || res.alloc.length === 0) continue;
    const xp = res.ports.filter((p) => p.role === "xpnet");
    const keys = Object.keys(res.props)
      .filter((k) => !LOCATION_PROPS.has(k))
      .sort();
    let sig = [...res.alloc].sort().join(",");
    if (res.virt) sig += `\u0002${JSON.stringify(res.virt)}`;
    for (const k of keys) sig += `\u0000${k}=${typeof res.props[k]}:${String(res.props[k])}`;
    for (const p of xp) sig += `\u0001${p.name}/${p.capacity}/${p.model ?? ""}`;
    let c = classOf.get(sig);
    if (c === undefined) {
      c = classes.length;
      classOf.set(sig, c);
      classes.push({
        id: c,
        props: res.props,
        alloc: [...res.alloc],
        kinds: res.virt?.kinds ?? DEFAULT_VIRT_KINDS,
        ports: xp,
        members: new Int32Array(0),
        memberRank: new Int32Array(0),
      });
      membersOf.push([]);
    }
    resClass[r] = c;
    membersOf[c]!.push(r);
  }
  const rankOf = (r: number) => {
    const l = resLeaf[r]!;
    return l >= 0 ? leafRank[l]! : 0x7fffffff;
  };
  const resClassPos = new Int32Array(n).fill(-1);
  classes.forEach((cls, c) => {
    const m = membersOf[c]!.sort((a, b) => rankOf(a) - rankOf(b) || a - b);
    cls.members = Int32Array.from(m);
    cls.memberRank = Int32Array.from(m, rankOf);
    m.forEach((r, i) => {
      resClassPos[r] = i;
    });
  });

  const emulators: number[][] = facilityNames.map(() => []);
  const infrapodServers: number[][] = facilityNames.map(() => []);
  for (let r = 0; r < n; r++) {
    if (resKind[r] === KIND_EMULATOR) emulators[resFacility[r]!]!.push(r);
    if (resKind[r] === KIND_INFRAPOD) infrapodServers[resFacility[r]!]!.push(r);
  }

  return {
    internet,
    facilityNames,
    facilityOf,
    resources,
    resFacility,
    resKind,
    resIds,
    resPortStart,
    ports,
    portRes,
    portEdge,
    portPeer,
    edgeName,
    edgeCap: Float64Array.from(edgeCapList),
    edgeLatency: Float64Array.from(edgeLatencyList),
    edgeInterconnect: Uint8Array.from(edgeIcList),
    edgeFacility: Int32Array.from(edgeFacilityList),
    edgeCount: edgeName.length,
    resDomain,
    resVxlan,
    domainNames,
    domainFacility: Int32Array.from(domainFacilityList),
    resLeaf,
    leafRank,
    rankFabric,
    rankFacility,
    classes,
    resClass,
    resClassPos,
    emulators,
    infrapodServers,
    cableIds,
    interconnectIds,
  };
}

/** Locality level between two leaf ranks: 0 same leaf, 1 same fabric, 2 same facility, 3 elsewhere. */
export function localityLevel(ix: InternetIndex, a: number, b: number): number {
  if (a === b) return 0;
  if (a < 0 || b < 0 || a >= ix.rankFabric.length || b >= ix.rankFabric.length) return 3;
  if (ix.rankFacility[a] !== ix.rankFacility[b]) return 3;
  return ix.rankFabric[a] === ix.rankFabric[b] ? 1 : 2;
}

/** Global index of a resource by facility name and id. */
export function resourceIndex(ix: InternetIndex, facility: string, id: string): number | undefined {
  const fi = ix.facilityOf.get(facility);
  return fi === undefined ? undefined : ix.resIds[fi]!.get(id);
}

/** Edge of a facility cable (facility given) or of an interconnect (facility undefined). */
export function edgeIndex(ix: InternetIndex, facility: string | undefined, id: string): number | undefined {
  if (facility === undefined) return ix.interconnectIds.get(id);
  const fi = ix.facilityOf.get(facility);
  return fi === undefined ? undefined : ix.cableIds[fi]!.get(id);
}

export function resourceName(ix: InternetIndex, r: number): string {
  return `${ix.facilityNames[ix.resFacility[r]!]}/${ix.resources[r]!.id}`;
}
