/**
 * The operator's typed builder for a facility resource model, in the spirit of
 * CDK constructs: declare resources, cable their ports, declare tag pools, then
 * `build()` an XIR `Facility`.
 *
 *   const f = new FacilityBuilder("phobos");
 *   const leaf = f.switch("ileaf", { layer: "leaf", network: "infranet", ports: 48, capacity: gbps(10) });
 *   const n = f.node("n0", { cores: 8, memory: gb(32), nics: [{ role: "infranet", capacity: gbps(1) }] });
 *   f.cable(n.port("eth0"), leaf.port("swp1"));
 *
 * Mistakes the builder can see at the call (a duplicate id, an unknown port, a
 * port cabled twice) throw there; whole-model rules (uplinks, infranet cabling,
 * tag ranges) are checked by `build()` through `checkFacility`.
 */
import type {
  AllocMode,
  Cable,
  Facility,
  HypervisorInfo,
  NetworkRole,
  Port,
  PortRef,
  PortRole,
  Resource,
  ResourceKind,
  Scalar,
  SwitchInfo,
  TagPools,
  TagRange,
} from "@merge/xir";
import { describe, FacilityModelError, portIndexOf, portList } from "./problem.ts";
import { checkFacility } from "./validate.ts";

/** `both` = dual personality: bare metal or hypervisor, whichever a realization needs. */
export type AllocSpec = "physical" | "virtual" | "both" | readonly AllocMode[];

export interface PortSpec {
  name: string;
  role: PortRole;
  /** bits/s; use `gbps()` */
  capacity: number;
  model?: string;
  mac?: string;
}

/** A NIC with one or more ports, named `eth0`, `eth1`, ... in declaration order. */
export interface NicSpec {
  role: PortRole;
  capacity: number;
  model?: string;
  /** Ports on this NIC; default 1. */
  ports?: number;
}

interface HostSpec {
  /** Explicitly named ports (kept first, in this order). */
  ports?: readonly PortSpec[];
  /** NICs whose ports get the next free `ethN` names. */
  nics?: readonly NicSpec[];
  /** Extra properties matched against experiment constraints. */
  props?: Record<string, Scalar>;
}

export interface NodeSpec extends HostSpec {
  cores: number;
  /** bytes; use `gb()` */
  memory: number;
  /** bytes each; `disk.capacity` is their sum, `disk.count` their number. */
  disks?: readonly number[];
  gpus?: { model: string; count: number };
  /** Default `x86_64`. */
  platform?: string;
  /** Default `physical`. */
  alloc?: AllocSpec;
  /**
   * A hypervisor's offer to virtual nodes: kinds (`vm`, `container`, in order of
   * preference) and overcommit ratios for cores and memory. Needs a virtual alloc.
   */
  virt?: HypervisorInfo;
  /** Hardware class name, e.g. `r640`; shown in summaries, matchable as `hardware`. */
  hardware?: string;
  rack?: string;
}

export interface ServerSpec extends HostSpec {
  cores?: number;
  memory?: number;
  disks?: readonly number[];
  hardware?: string;
  rack?: string;
}

export interface SwitchSpec {
  layer: SwitchInfo["layer"];
  network: NetworkRole;
  /** Can terminate VXLAN. Default: fabric switches yes, leaves and spines (pure underlay) no. */
  vxlan?: boolean;
  /** Default `<network>`: one VLAN domain per network. */
  vlanDomain?: string;
  /** Downlink ports `swp1..swpN`. */
  ports: number;
  /** Downlink line rate, bits/s. */
  capacity: number;
  /** Uplink ports, named on after the downlinks. */
  uplinks?: { count: number; capacity: number };
  /** Adds a management port `eth0` (1 Gbit/s) for the mgmt network. */
  mgmt?: boolean;
  model?: string;
  rack?: string;
}

export interface BuilderOptions {
  /** Give every server/node port without a MAC a deterministic locally administered one. Default true. */
  macs?: boolean;
  /**
   * Generated cable ids: `ends` (default) names both ends, `n0/eth0~ileaf/swp1`;
   * `serial` is `c0`, `c1`, ... (far less memory for generated facilities).
   */
  cableIds?: "ends" | "serial";
}

const ONE_GBPS = 1e9;
const ALLOC: Record<"physical" | "virtual" | "both", readonly AllocMode[]> = {
  physical: Object.freeze(["physical"]) as readonly AllocMode[],
  virtual: Object.freeze(["virtual"]) as readonly AllocMode[],
  both: Object.freeze(["physical", "virtual"]) as readonly AllocMode[],
};
const NO_ALLOC: readonly AllocMode[] = Object.freeze([]) as readonly AllocMode[];

/** Resources in a built facility are grouped by kind in this order, declaration order within. */
export const KIND_ORDER: readonly ResourceKind[] = [
  "switch",
  "node",
  "emulator",
  "infrapod-server",
  "storage",
  "gateway",
];

/** One declared resource: its XIR form and which of its ports are cabled. */
interface Entry {
  res: Resource;
  /** This resource's ports start here in the builder's `cabledBy`. */
  base: number;
  byName?: Map<string, number>;
  /** Switches: ports [0, downlinks) are downlinks, [downlinks, uplinksEnd) uplinks. */
  downlinks: number;
  uplinksEnd: number;
  nextDown: number;
  nextUp: number;
}

/** A declared resource; `port(name)` refers to one of its ports for cabling. */
export class ResourceHandle {
  constructor(
    /** @internal */ readonly builder: FacilityBuilder,
    /** @internal */ readonly entry: Entry,
  ) {}

  get id(): string {
    return this.entry.res.id;
  }

  get kind(): ResourceKind {
    return this.entry.res.kind;
  }

  get resource(): Readonly<Resource> {
    return this.entry.res;
  }

  /** A port by name; throws naming the resource's ports when there is none. */
  port(name: string): PortRef {
    portIndex(this.entry, name);
    return { resource: this.entry.res.id, port: name };
  }

  /** The first port of this role (any role when omitted) not yet cabled; throws when all are. */
  freePort(role?: PortRole): PortRef {
    return ref(this.entry, this.freeIndex(role));
  }

  /** @internal */
  freeIndex(role?: PortRole): number {
    const { res, base } = this.entry;
    const cabledBy = this.builder.cabledBy;
    for (let i = 0; i < res.ports.length; i++) {
      if (cabledBy[base + i] === 0 && (role === undefined || (res.ports[i] as Port).role === role)) return i;
    }
    throw new Error(`${describe(res)}: every ${role ? `${role} ` : ""}port is already cabled`);
  }
}

export class SwitchHandle extends ResourceHandle {
  get info(): SwitchInfo {
    return this.entry.res.switch as SwitchInfo;
  }

  /** The next downlink port not yet cabled. */
  downlink(): PortRef {
    return ref(this.entry, this.downlinkIndex());
  }

  /** The next uplink port not yet cabled. */
  uplink(): PortRef {
    return ref(this.entry, this.uplinkIndex());
  }

  /** @internal */
  downlinkIndex(): number {
    const e = this.entry;
    while (e.nextDown < e.downlinks && this.builder.cabledBy[e.base + e.nextDown] !== 0) e.nextDown++;
    if (e.nextDown >= e.downlinks) {
      throw new Error(`${describe(e.res)}: all ${e.downlinks} downlink ports are cabled; declare more ports`);
    }
    return e.nextDown;
  }

  /** @internal */
  uplinkIndex(): number {
    const e = this.entry;
    if (e.nextUp < e.downlinks) e.nextUp = e.downlinks;
    while (e.nextUp < e.uplinksEnd && this.builder.cabledBy[e.base + e.nextUp] !== 0) e.nextUp++;
    if (e.nextUp >= e.uplinksEnd) {
      throw new Error(
        `${describe(e.res)}: all ${e.uplinksEnd - e.downlinks} uplink ports are cabled; declare more uplinks`,
      );
    }
    return e.nextUp;
  }
}

function ref(e: Entry, i: number): PortRef {
  return { resource: e.res.id, port: (e.res.ports[i] as Port).name };
}

export class FacilityBuilder {
  private readonly entries = new Map<string, Entry>();
  private readonly byKind = new Map<ResourceKind, Resource[]>();
  private readonly cables: Cable[] = [];
  /** Explicit cable ids; generated ones are unique because no port is cabled twice. */
  private readonly cableIds = new Set<string>();
  /** @internal Per port of every resource (at its entry's base): 1 + index of its cable, 0 when free. */
  cabledBy = new Int32Array(1024);
  private portCount = 0;
  private readonly vlan: Record<string, TagRange[]> = {};
  private readonly vni: TagRange[] = [];
  private readonly macs: boolean;
  private readonly serialIds: boolean;
  private readonly macPrefix: string;
  private macCounter = 0;

  constructor(
    readonly name: string,
    options: BuilderOptions = {},
  ) {
    if (!name) throw new Error("a facility needs a name");
    this.macs = options.macs ?? true;
    this.serialIds = options.cableIds === "serial";
    this.macPrefix = `02:${HEX[hashByte(name)]}`;
  }

  /** A testbed node, allocatable as bare metal, as a hypervisor, or both. */
  node(id: string, spec: NodeSpec): ResourceHandle {
    if (!Number.isInteger(spec.cores) || spec.cores <= 0) {
      throw new Error(`node ${id}: cores must be a whole number above 0, got ${spec.cores}`);
    }
    if (!(spec.memory > 0)) throw new Error(`node ${id}: memory must be a number of bytes above 0, e.g. gb(64)`);
    let disk = 0;
    for (const d of spec.disks ?? []) disk += d;
    // One literal for the usual keys keeps 100,000 nodes' props compact.
    const props: Record<string, Scalar> = spec.disks?.length
      ? {
          "proc.cores": spec.cores,
          "memory.capacity": spec.memory,
          platform: spec.platform ?? "x86_64",
          "disk.capacity": disk,
          "disk.count": spec.disks.length,
        }
      : { "proc.cores": spec.cores, "memory.capacity": spec.memory, platform: spec.platform ?? "x86_64" };
    if (spec.gpus && spec.gpus.count > 0) {
      props["gpu.model"] = spec.gpus.model;
      props["gpu.count"] = spec.gpus.count;
    }
    if (spec.hardware) props.hardware = spec.hardware;
    if (spec.rack) props.rack = spec.rack;
    Object.assign(props, spec.props);
    const alloc = typeof spec.alloc === "string" ? ALLOC[spec.alloc] : (spec.alloc ?? ALLOC.physical);
    if (spec.virt && !alloc.includes("virtual")) {
      throw new Error(`node ${id}: virt (kinds, overcommit) is for hypervisors; give it alloc "virtual" or "both"`);
    }
    const entry = this.add(id, "node", alloc, props, hostPorts(id, spec), undefined, 0);
    if (spec.virt) entry.res.virt = structuredClone(spec.virt);
    return new ResourceHandle(this, entry);
  }

  /** A network emulator: links with emulated characteristics are cut in half through it. */
  emulator(id: string, spec: ServerSpec): ResourceHandle {
    return this.server(id, "emulator", spec);
  }

  /** A server hosting per-materialization infrapods (DHCP/DNS, node configuration). */
  infrapodServer(id: string, spec: ServerSpec): ResourceHandle {
    return this.server(id, "infrapod-server", spec);
  }

  /** A storage server: images, mass storage. */
  storage(id: string, spec: ServerSpec): ResourceHandle {
    return this.server(id, "storage", spec);
  }

  /** A gateway for inter-facility links: ports of role `gateway` face other facilities. */
  gateway(id: string, spec: ServerSpec): ResourceHandle {
    return this.server(id, "gateway", spec);
  }

  switch(id: string, spec: SwitchSpec): SwitchHandle {
    if (!Number.isInteger(spec.ports) || spec.ports < 0) {
      throw new Error(`switch ${id}: ports must be a whole number of downlink ports, got ${spec.ports}`);
    }
    const up = spec.uplinks?.count ?? 0;
    // Pushed, not preallocated: packed arrays stay fast for whoever walks the ports later.
    const ports: Port[] = [];
    for (let i = 0; i < spec.ports; i++) ports.push({ name: swp(i + 1), role: spec.network, capacity: spec.capacity });
    const upCapacity = spec.uplinks?.capacity ?? spec.capacity;
    for (let u = 0; u < up; u++)
      ports.push({ name: swp(spec.ports + u + 1), role: spec.network, capacity: upCapacity });
    if (spec.mgmt) ports.push({ name: "eth0", role: "mgmt", capacity: ONE_GBPS });
    if (spec.model) for (const p of ports) p.model = spec.model;
    const info: SwitchInfo = {
      layer: spec.layer,
      network: spec.network,
      vxlan: spec.vxlan ?? spec.layer === "fabric",
      vlanDomain: spec.vlanDomain ?? spec.network,
    };
    const props: Record<string, Scalar> = {};
    if (spec.rack) props.rack = spec.rack;
    const entry = this.add(id, "switch", NO_ALLOC, props, ports, info, spec.ports);
    entry.uplinksEnd = spec.ports + up;
    return new SwitchHandle(this, entry);
  }

  /**
   * A cable between two ports. Throws when a port does not exist or is already
   * cabled. The id defaults to `a.resource/a.port~b.resource/b.port` (or `cN`,
   * see `BuilderOptions.cableIds`). The cable keeps `a` and `b` as its ends.
   */
  cable(a: PortRef, b: PortRef, options: { id?: string } = {}): Cable {
    const ea = this.entry(a.resource, "cable");
    const eb = this.entry(b.resource, "cable");
    return this.join(ea, portIndex(ea, a.port), eb, portIndex(eb, b.port), options.id, a, b);
  }

  private join(
    ea: Entry,
    ia: number,
    eb: Entry,
    ib: number,
    explicit?: string,
    a = ref(ea, ia),
    b = ref(eb, ib),
  ): Cable {
    const id =
      explicit ?? (this.serialIds ? `c${this.cables.length}` : `${a.resource}/${a.port}~${b.resource}/${b.port}`);
    if (ea === eb && ia === ib) throw new Error(`cable ${id}: both ends are the same port`);
    const byA = this.cabledBy[ea.base + ia] as number;
    const byB = this.cabledBy[eb.base + ib] as number;
    if (byA !== 0 || byB !== 0) {
      const ref = byA !== 0 ? a : b;
      const other = (this.cables[(byA || byB) - 1] as Cable).id;
      throw new Error(`cable ${id}: port ${ref.resource}.${ref.port} is already cabled by ${other}`);
    }
    if (explicit !== undefined) {
      if (this.cableIds.has(id)) throw new Error(`cable id ${id} is already used`);
      this.cableIds.add(id);
    }
    const cable: Cable = { id, ends: [a, b] };
    this.cables.push(cable);
    this.cabledBy[ea.base + ia] = this.cables.length;
    this.cabledBy[eb.base + ib] = this.cables.length;
    return cable;
  }

  /**
   * Cable a host's first free port on the switch's network to the switch's next
   * free downlink.
   */
  connect(host: ResourceHandle, sw: SwitchHandle): Cable {
    this.owns(host, sw);
    return this.join(host.entry, host.freeIndex(sw.info.network), sw.entry, sw.downlinkIndex());
  }

  /** `count` cables from `lower`'s free uplinks to `upper`'s free downlinks. */
  uplink(lower: SwitchHandle, upper: SwitchHandle, count = 1): Cable[] {
    const out: Cable[] = [];
    this.owns(lower, upper);
    for (let i = 0; i < count; i++)
      out.push(this.join(lower.entry, lower.uplinkIndex(), upper.entry, upper.downlinkIndex()));
    return out;
  }

  /** Cable the switch's management port to a mgmt switch. */
  manage(sw: SwitchHandle | ResourceHandle, mgmt: SwitchHandle): Cable {
    this.owns(sw, mgmt);
    return this.join(sw.entry, sw.freeIndex("mgmt"), mgmt.entry, mgmt.downlinkIndex());
  }

  private owns(...handles: ResourceHandle[]): void {
    for (const h of handles) {
      if (h.builder !== this)
        throw new Error(`${describe(h.entry.res)} belongs to facility ${h.builder.name}, not ${this.name}`);
    }
  }

  /** VLAN ids usable in a VLAN domain (1..4094). */
  vlans(domain: string, ...ranges: TagRange[]): this {
    const pool = this.vlan[domain] ?? [];
    pool.push(...ranges.map((r) => ({ first: r.first, last: r.last })));
    this.vlan[domain] = pool;
    return this;
  }

  /** VXLAN network identifiers usable in this facility (1..16777215). */
  vnis(...ranges: TagRange[]): this {
    this.vni.push(...ranges.map((r) => ({ first: r.first, last: r.last })));
    return this;
  }

  /** A declared resource by id. */
  get(id: string): ResourceHandle {
    const e = this.entry(id, "get");
    return e.res.kind === "switch" ? new SwitchHandle(this, e) : new ResourceHandle(this, e);
  }

  /**
   * The XIR facility: resources grouped by kind (switches, nodes, emulators,
   * infrapod servers, storage, gateways), declaration order within a kind; cables
   * in declaration order. Throws `FacilityModelError` listing every error found by
   * `checkFacility` unless `validate: false`.
   */
  build(options: { validate?: boolean } = {}): Facility {
    const resources: Resource[] = [];
    for (const kind of KIND_ORDER) {
      const list = this.byKind.get(kind);
      if (list) for (const r of list) resources.push(r);
    }
    const tags: TagPools = { vlan: { ...this.vlan }, vni: [...this.vni] };
    const facility: Facility = { xir: "1.0", name: this.name, resources, cables: [...this.cables], tags };
    if (options.validate ?? true) {
      const errors = checkFacility(facility).filter((p) => p.severity === "error");
      if (errors.length) throw new FacilityModelError(`facility ${this.name}`, errors);
    }
    return facility;
  }

  private server(id: string, kind: ResourceKind, spec: ServerSpec): ResourceHandle {
    const props: Record<string, Scalar> = {};
    if (spec.cores !== undefined) props["proc.cores"] = spec.cores;
    if (spec.memory !== undefined) props["memory.capacity"] = spec.memory;
    if (spec.disks?.length) props["disk.capacity"] = spec.disks.reduce((a, b) => a + b, 0);
    if (spec.hardware) props.hardware = spec.hardware;
    if (spec.rack) props.rack = spec.rack;
    Object.assign(props, spec.props);
    return new ResourceHandle(this, this.add(id, kind, NO_ALLOC, props, hostPorts(id, spec), undefined, 0));
  }

  private add(
    id: string,
    kind: ResourceKind,
    alloc: readonly AllocMode[],
    props: Record<string, Scalar>,
    ports: Port[],
    info: SwitchInfo | undefined,
    downlinks: number,
  ): Entry {
    if (!id) throw new Error(`a ${kind} needs an id`);
    const existing = this.entries.get(id);
    if (existing) throw new Error(`resource id ${id} is already used by ${describe(existing.res)}`);
    if (this.macs && kind !== "switch") {
      for (const p of ports) if (p.mac === undefined) p.mac = this.nextMac();
    }
    const res: Resource = { id, kind, alloc: alloc as AllocMode[], props, ports };
    if (info) res.switch = info;
    const base = this.portCount;
    this.portCount += ports.length;
    if (this.portCount > this.cabledBy.length) {
      const grown = new Int32Array(Math.max(this.portCount, this.cabledBy.length * 2));
      grown.set(this.cabledBy);
      this.cabledBy = grown;
    }
    const entry: Entry = {
      res,
      base,
      downlinks,
      uplinksEnd: downlinks,
      nextDown: 0,
      nextUp: 0,
    };
    this.entries.set(id, entry);
    const list = this.byKind.get(kind);
    if (list) list.push(res);
    else this.byKind.set(kind, [res]);
    return entry;
  }

  private entry(id: string, what: string): Entry {
    const e = this.entries.get(id);
    if (!e) throw new Error(`${what}: facility ${this.name} has no resource ${id}`);
    return e;
  }

  private nextMac(): string {
    const n = this.macCounter++;
    return `${this.macPrefix}:${HEX[(n >>> 24) & 255]}:${HEX[(n >>> 16) & 255]}:${HEX[(n >>> 8) & 255]}:${HEX[n & 255]}`;
  }
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function hashByte(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) & 255;
  return h;
}

function hostPorts(id: string, spec: HostSpec): Port[] {
  const ports: Port[] = [];
  const names = new Set<string>();
  if (!spec.ports?.length) {
    // The common case, without a Set: NIC ports only, eth0, eth1, ...
    let eth = 0;
    for (const nic of spec.nics ?? []) {
      const count = nic.ports ?? 1;
      for (let k = 0; k < count; k++, eth++) {
        const name = ETH[eth] ?? `eth${eth}`;
        ports.push(
          nic.model
            ? { name, role: nic.role, capacity: nic.capacity, model: nic.model }
            : { name, role: nic.role, capacity: nic.capacity },
        );
      }
    }
    return ports;
  }
  for (const p of spec.ports ?? []) {
    if (names.has(p.name)) throw new Error(`resource ${id}: port ${p.name} is declared twice`);
    names.add(p.name);
    const port: Port = { name: p.name, role: p.role, capacity: p.capacity };
    if (p.model) port.model = p.model;
    if (p.mac) port.mac = p.mac;
    ports.push(port);
  }
  let eth = 0;
  for (const nic of spec.nics ?? []) {
    const count = nic.ports ?? 1;
    for (let k = 0; k < count; k++) {
      while (names.has(ETH[eth] ?? `eth${eth}`)) eth++;
      const name = ETH[eth] ?? `eth${eth}`;
      names.add(name);
      eth++;
      const port: Port = { name, role: nic.role, capacity: nic.capacity };
      if (nic.model) port.model = nic.model;
      ports.push(port);
    }
  }
  return ports;
}

// Shared name strings, so 100,000 nodes do not hold 400,000 copies of "eth0".
const ETH: string[] = Array.from({ length: 16 }, (_, i) => `eth${i}`);
const SWP: string[] = Array.from({ length: 257 }, (_, i) => `swp${i}`);
const swp = (i: number): string => SWP[i] ?? `swp${i}`;

function portIndex(e: Entry, name: string): number {
  const i = portIndexOf(e, name);
  if (i < 0) throw new Error(`${describe(e.res)} has no port ${name} (it has ${portList(e.res.ports)})`);
  return i;
}
