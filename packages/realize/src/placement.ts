/**
 * Node placement: which resource hosts each experiment node, bare metal or as
 * a virtual machine, and which ports carry its sockets.
 *
 * Constraints are matched generically: a resource is looked at through a
 * property lookup (its class's properties, `metal`, and the location
 * properties `host`, `facility`, `rack`) and `firstUnsatisfied` decides. Scarcity: among the
 * classes that satisfy a node, the most abundant (free members per unplaced
 * node that could use them, in powers of two) is used first, virtual machines
 * before bare metal (MergeTB's default: a node that does not ask for `metal`
 * is a VM), and bare metal on machines that cannot host VMs before machines
 * that can. Locality: within that
 * tier, the free member nearest the node's anchor (a placed neighbour): same
 * leaf, then same fabric, then same facility.
 */
import {
  type Constraint,
  firstUnsatisfied,
  KIND_PROPS,
  kindExclusion,
  kindProperty,
  type Port,
  type Scalar,
  satisfies,
  type VirtKind,
} from "@merge/xir";
import type { HostClass, InternetIndex } from "./internet.ts";
import { LOCATION_PROPS, localityLevel } from "./internet.ts";
import { FREE, MINE, type Usage, VM_PROPS } from "./usage.ts";
import { constraintsOn, pickValue } from "./value.ts";

export interface SocketNeed {
  index: number;
  constraints: Constraint[];
  /** bits/s the socket's link reserves. */
  demand: number;
  /** The line rate the socket's link needs at least. */
  minRate: number;
}

export interface PortMapping {
  /** Per socket (in the node's socket order): index into the class's ports. */
  port: number[];
  virtual: boolean[];
}

export interface Candidate {
  cls: HostClass;
  mode: "physical" | "virtual";
  /** VM sizes in VM_PROPS order (physical: the whole resource). */
  sizes: number[];
  mapping: PortMapping;
  /** A virtual node: the kind the class's hypervisors make of it. */
  kind?: VirtKind;
}

export interface Placement {
  resource: number;
  mode: "physical" | "virtual";
  sizes: number[];
  /** Global port index per socket. */
  ports: number[];
  virtual: boolean[];
  rank: number;
  kind?: VirtKind;
}

/** What a VM gets when its model does not say: cores, memory, and its root file system's disk. */
export interface VmDefaults {
  cores: number;
  memory: number;
  /** The root file system every virtual node has; `disk.capacity` asks for disk beyond it. */
  disk: number;
}

/** Alive positions in a sorted array, with nearest-alive queries in both directions. */
class Skip {
  private readonly right: Int32Array;
  private readonly left: Int32Array;
  constructor(readonly size: number) {
    this.right = new Int32Array(size + 1);
    this.left = new Int32Array(size + 1);
    for (let i = 0; i <= size; i++) {
      this.right[i] = i;
      this.left[i] = i;
    }
  }
  /** First alive position >= i, or size. */
  next(i: number): number {
    let r = i;
    while (this.right[r] !== r) r = this.right[r]!;
    let c = i;
    while (this.right[c] !== r) {
      const n = this.right[c]!;
      this.right[c] = r;
      c = n;
    }
    return r;
  }
  /** Last alive position <= i, or -1. (left is shifted by one: slot 0 is the -1 sentinel.) */
  prev(i: number): number {
    let r = i + 1;
    while (this.left[r] !== r) r = this.left[r]!;
    let c = i + 1;
    while (this.left[c] !== r) {
      const n = this.left[c]!;
      this.left[c] = r;
      c = n;
    }
    return r - 1;
  }
  remove(i: number): void {
    this.right[i] = i + 1;
    this.left[i + 1] = i;
  }
  alive(i: number): boolean {
    return this.right[i] === i;
  }
}

export class Placer {
  private readonly phys: Skip[];
  private readonly virt: Skip[];
  /** Free members per class: [physical, virtual]. */
  private readonly freeCount: Int32Array;
  /** Unplaced nodes of this experiment that could use each class (same layout). */
  private readonly demand: Float64Array;
  private readonly initialFree: Int32Array;
  private readonly mappingCache = new Map<string, PortMapping | string>();
  /** Class and VM size → members that can still take such a VM (see `fitting`). */
  private readonly fits = new Map<string, Skip>();

  constructor(
    private readonly ix: InternetIndex,
    private readonly usage: Usage,
    private readonly vmDefaults: VmDefaults,
    /** Bare metal before VMs (the engine's second try when VMs first leaves a node without a place). */
    private readonly metalFirst = false,
  ) {
    this.freeCount = new Int32Array(ix.classes.length * 2);
    this.demand = new Float64Array(ix.classes.length * 2);
    this.phys = ix.classes.map((cls) => {
      const s = new Skip(cls.members.length);
      if (!cls.alloc.includes("physical")) {
        for (let i = 0; i < cls.members.length; i++) s.remove(i);
        return s;
      }
      for (let i = 0; i < cls.members.length; i++) {
        if (usage.physicallyFree(cls.members[i]!)) this.freeCount[cls.id * 2]!++;
        else s.remove(i);
      }
      return s;
    });
    this.virt = ix.classes.map((cls) => {
      const s = new Skip(cls.members.length);
      const ok = cls.alloc.includes("virtual");
      for (let i = 0; i < cls.members.length; i++) {
        const r = cls.members[i]!;
        if (ok && this.open(r)) this.freeCount[cls.id * 2 + 1]!++;
        else s.remove(i);
      }
      return s;
    });
    this.initialFree = Int32Array.from(this.freeCount);
  }

  /** A hypervisor that can still take a virtual machine. */
  private open(r: number): boolean {
    const u = this.usage;
    return (
      u.physical[r] === FREE &&
      !u.full(r) &&
      u.remaining[r * 3]! > 0 &&
      u.remaining[r * 3 + 1]! > 0 &&
      u.remaining[r * 3 + 2]! > 0
    );
  }

  /** Every class and mode that can host the node, ignoring what is taken. */
  candidates(constraints: readonly Constraint[], sockets: readonly SocketNeed[]): Candidate[] {
    const general = constraints.filter((c) => !LOCATION_PROPS.has(c.prop));
    const out: Candidate[] = [];
    const sizes = vmSizes(constraints, this.vmDefaults);
    const socketKey = JSON.stringify(sockets);
    // A node that says nothing of its kind or NIC models takes the class's first kind.
    const socketConstraints = sockets.map((s) => s.constraints);
    const kindOpen =
      !constraints.some((c) => KIND_PROPS.has(c.prop)) &&
      !socketConstraints.some((cs) => cs.some((c) => c.prop === "port.model"));
    for (const cls of this.ix.classes) {
      if (cls.alloc.includes("physical") && firstUnsatisfied(physicalLookup(cls.props), general) === undefined) {
        const mapping = this.mapping(cls, "physical", sockets, socketKey);
        if (typeof mapping !== "string") {
          out.push({ cls, mode: "physical", sizes: VM_PROPS.map((p) => num(cls.props[p])), mapping });
        }
      }
      if (!sizes || !cls.alloc.includes("virtual")) continue;
      const kind = kindOpen
        ? cls.kinds[0]
        : cls.kinds.find((k) => kindExclusion(k, constraints, socketConstraints) === undefined);
      if (
        kind &&
        firstUnsatisfied(virtualLookup(cls.props, sizes, kind, this.vmDefaults.disk), general) === undefined
      ) {
        const mapping = this.mapping(cls, "virtual", sockets, socketKey);
        if (typeof mapping !== "string") out.push({ cls, mode: "virtual", sizes, mapping, kind });
      }
    }
    return out;
  }

  private mapping(
    cls: HostClass,
    mode: "physical" | "virtual",
    sockets: readonly SocketNeed[],
    key: string,
  ): PortMapping | string {
    const k = `${cls.id}/${mode}/${key}`;
    let m = this.mappingCache.get(k);
    if (m === undefined) {
      m = mapSockets(cls.ports, mode, sockets);
      this.mappingCache.set(k, m);
    }
    return m;
  }

  /**
   * Count (+1) or discount (-1) a node's claim on its candidate classes: one
   * node's worth of demand, spread in proportion to the classes' initial
   * supply (a node that only one class can host puts all its weight there).
   */
  claim(candidates: readonly Candidate[], sign: 1 | -1): void {
    let total = 0;
    for (const c of candidates) total += this.initialFree[key(c)]!;
    if (total <= 0) return;
    for (const c of candidates) this.demand[key(c)]! += (sign * this.initialFree[key(c)]!) / total;
  }

  /**
   * Scarcity tier of a class: how many members would be left over once the
   * rest of the experiment took its share (free minus demand), on a
   * power-of-two scale (within a factor of two, locality decides). With no
   * other demand it is plain abundance: the seed's example (10 nodes with > 30 GB, 200 with 10 GB, a request both
   * satisfy) picks the 200. A class the experiment's constrained nodes depend
   * on has nothing left over and is used last.
   */
  private tier(c: Candidate): number {
    const k = key(c);
    const free = this.freeCount[k]!;
    if (free <= 0) return Number.NEGATIVE_INFINITY;
    const spare = free - this.demand[k]!;
    return spare >= 1 ? Math.floor(Math.log2(spare)) : -1000 + Math.floor((16 * free) / (this.demand[k]! + 1));
  }

  /**
   * Take a member of one candidate (class and mode) under exactly the leaf
   * `rank`, or nothing: the placement search decided both, and its unit
   * counts say one is free there.
   */
  placeUnder(c: Candidate, rank: number, identity: readonly Constraint[]): Placement | undefined {
    if (this.tier(c) === Number.NEGATIVE_INFINITY) return undefined;
    const found = this.nearest(c, rank, -1, identity, 1);
    return found ? this.take(c, found.pos) : undefined;
  }

  /**
   * Take the best resource for a node among its candidates: scarcity tiers
   * first, locality to `anchor` (a leaf rank) within a tier. `facility` (when
   * not -1) confines the node to one facility; `identity` holds the node's
   * location constraints (`host`, `facility`, `rack`), checked per resource.
   */
  place(
    candidates: readonly Candidate[],
    anchor: number,
    facility: number,
    identity: readonly Constraint[],
    /** Nearness to the anchor before scarcity (the anchor is a leaf the placement search chose). */
    localityFirst = false,
  ): Placement | undefined {
    const order = candidates
      .map((c, i) => ({ c, i, tier: this.tier(c), pref: modePreference(c, this.metalFirst) }))
      .filter((x) => x.tier !== Number.NEGATIVE_INFINITY)
      .sort((a, b) => a.pref - b.pref || b.tier - a.tier || a.i - b.i);
    let g = 0;
    while (g < order.length) {
      let h = g;
      while (
        h < order.length &&
        order[h]!.pref === order[g]!.pref &&
        (localityFirst || order[h]!.tier === order[g]!.tier)
      )
        h++;
      let best: { c: Candidate; pos: number; level: number } | undefined;
      for (let i = g; i < h; i++) {
        const c = order[i]!.c;
        const found = this.nearest(c, anchor, facility, identity, best ? best.level : 4);
        if (found && (!best || found.level < best.level)) best = { c, ...found };
        if (best?.level === 0) break;
      }
      if (best) return this.take(best.c, best.pos);
      g = h;
    }
    return undefined;
  }

  /**
   * Members of a class still open to VMs of one candidate's size. Without it a
   * large VM scans every open hypervisor too full for it, at every placement.
   */
  private fitting(c: Candidate): Skip {
    const k = `${c.cls.id}:${c.sizes.join(",")}`;
    let s = this.fits.get(k);
    if (!s) {
      const virt = this.virt[c.cls.id]!;
      s = new Skip(c.cls.members.length);
      for (let i = 0; i < c.cls.members.length; i++) if (!virt.alive(i)) s.remove(i);
      this.fits.set(k, s);
    }
    return s;
  }

  private nearest(
    c: Candidate,
    anchor: number,
    facility: number,
    identity: readonly Constraint[],
    worseThan: number,
  ): { pos: number; level: number } | undefined {
    const cls = c.cls;
    const virt = this.virt[cls.id]!;
    const skip = c.mode === "physical" ? this.phys[cls.id]! : this.fitting(c);
    const ranks = cls.memberRank;
    const p = lowerBound(ranks, anchor);
    const ok = (i: number) => {
      const r = cls.members[i]!;
      if (c.mode === "virtual" && (!virt.alive(i) || !this.usage.fits(r, c.sizes))) {
        // Room only shrinks while an attempt places: this hypervisor will not take this size again.
        skip.remove(i);
        return false;
      }
      if (facility >= 0 && this.ix.resFacility[r] !== facility) return false;
      if (identity.length && firstUnsatisfied(identityLookup(this.ix, r), identity) !== undefined) return false;
      return true;
    };
    const level = (i: number) => localityLevel(this.ix, anchor, ranks[i]!);
    // Confined to a facility whose leaves surround the anchor: stop at its border.
    const limit = facility >= 0 ? 3 : 4;
    let bestLevel = worseThan;
    let best: number | undefined;
    // Outward from p, one direction at a time: the first fitting member closer than the best so far.
    const scan = (from: number, step: (i: number) => number) => {
      for (let i = from; i >= 0 && i < cls.members.length; i = step(i)) {
        const l = level(i);
        if (l >= bestLevel || l >= limit) break;
        if (ok(i)) {
          best = i;
          bestLevel = l;
          break;
        }
      }
    };
    scan(skip.next(p), (i) => skip.next(i + 1));
    scan(skip.prev(p - 1), (i) => skip.prev(i - 1));
    return best === undefined ? undefined : { pos: best, level: bestLevel };
  }

  private take(c: Candidate, pos: number): Placement {
    const cls = c.cls;
    const r = cls.members[pos]!;
    const u = this.usage;
    if (this.phys[cls.id]!.alive(pos)) {
      this.phys[cls.id]!.remove(pos);
      this.freeCount[cls.id * 2]!--;
    }
    if (c.mode === "physical") {
      u.physical[r] = MINE;
      if (this.virt[cls.id]!.alive(pos)) {
        this.virt[cls.id]!.remove(pos);
        this.freeCount[cls.id * 2 + 1]!--;
      }
    } else {
      u.addVm(r, c.sizes, MINE);
      if (!this.open(r) && this.virt[cls.id]!.alive(pos)) {
        this.virt[cls.id]!.remove(pos);
        this.freeCount[cls.id * 2 + 1]!--;
      }
    }
    return this.placementAt(c, pos);
  }

  /** The placement a candidate's member would give (ports resolved); takes nothing. */
  placementAt(c: Candidate, pos: number): Placement {
    const cls = c.cls;
    const r = cls.members[pos]!;
    // Class ports are alike by name on every member; find them on this one.
    const first = this.ix.resPortStart[r]!;
    const mine = this.ix.resources[r]!.ports;
    const global = cls.ports.map((p) => first + mine.findIndex((q) => q.name === p.name));
    return {
      resource: r,
      mode: c.mode,
      sizes: c.sizes,
      ports: c.mapping.port.map((i) => global[i]!),
      virtual: c.mapping.virtual,
      rank: cls.memberRank[pos]!,
      ...(c.kind ? { kind: c.kind } : {}),
    };
  }
}

/**
 * Which kind of candidate a node takes first: a VM, then bare metal on a
 * machine that cannot host VMs, then bare metal on one that can (a whole
 * hypervisor taken by one node is room for many VMs lost).
 */
function modePreference(c: Candidate, metalFirst: boolean): number {
  if (metalFirst) return c.mode === "physical" ? 0 : 1;
  if (c.mode === "virtual") return 0;
  return c.cls.alloc.includes("virtual") ? 2 : 1;
}

/** A candidate's unit key: class × 2 + mode (0 bare metal, 1 VM), as the placement search counts units. */
export function key(c: Candidate): number {
  return c.cls.id * 2 + (c.mode === "physical" ? 0 : 1);
}

function lowerBound(a: Int32Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function num(v: Scalar | undefined): number {
  return typeof v === "number" ? v : 0;
}

export function physicalLookup(props: Record<string, Scalar>): (prop: string) => Scalar | undefined {
  return (prop) => (KIND_PROPS.has(prop) ? kindProperty("metal", prop) : props[prop]);
}

export function virtualLookup(
  props: Record<string, Scalar>,
  sizes: readonly number[],
  kind: VirtKind = "container",
  root = 0,
): (prop: string) => Scalar | undefined {
  return (prop) => {
    if (KIND_PROPS.has(prop)) return kindProperty(kind, prop);
    // `disk.capacity` asks for disk beyond the root file system (`root`, counted in sizes[2]).
    if (prop === "disk.capacity") return sizes[2]! - root;
    const k = (VM_PROPS as readonly string[]).indexOf(prop);
    return k >= 0 ? sizes[k] : props[prop];
  };
}

/** Where a resource is: `host` (its id), `facility`, and location properties it declares (`rack`). */
export function identityLookup(ix: InternetIndex, r: number): (prop: string) => Scalar | undefined {
  return (prop) =>
    prop === "host"
      ? ix.resources[r]!.id
      : prop === "facility"
        ? ix.facilityNames[ix.resFacility[r]!]
        : LOCATION_PROPS.has(prop)
          ? ix.resources[r]!.props[prop]
          : undefined;
}

export function identityConstraints(constraints: readonly Constraint[]): Constraint[] {
  return constraints.filter((c) => LOCATION_PROPS.has(c.prop));
}

/**
 * The VirtAlloc slice a node would take as a VM: cores and memory the default when allowed, else
 * the least that satisfies; disk the root file system (`d.disk`) plus the least extra disk its
 * `disk.capacity` asks for (MergeTB's meaning: extra disk beyond the root, none when unasked).
 */
export function vmSizes(constraints: readonly Constraint[], d: VmDefaults): number[] | undefined {
  const defaults = [d.cores, d.memory, 0];
  const sizes: number[] = [];
  for (let k = 0; k < 3; k++) {
    const v = pickValue(constraintsOn(constraints, VM_PROPS[k]!), 0, Number.POSITIVE_INFINITY, "min", defaults[k]);
    if (v === undefined) return undefined;
    sizes.push(k === 2 ? d.disk + v : v);
  }
  return sizes;
}

/** NIC models a hypervisor can give a VM, in order of preference. */
export const VM_NIC_MODELS = ["virtio", "e1000", "e1000e", "rtl8139"] as const;

/** The virtual NIC a VM socket gets: the first model and the fewest queues its constraints allow. */
export function vmNic(constraints: readonly Constraint[]): { model: string; queues: number } | undefined {
  const models = constraintsOn(constraints, "port.model");
  const model = VM_NIC_MODELS.find((m) => models.every((c) => satisfies(m, c)));
  const queues = pickValue(constraintsOn(constraints, "port.queues"), 1, 64, "min", 1);
  return model === undefined || queues === undefined ? undefined : { model, queues };
}

/**
 * A port as a socket's constraints see it: `port.<field>`. A VM's socket is a
 * virtual NIC on the host's port: its model and queues are the ones `vmNic` chose.
 */
export function portLookup(
  port: Port,
  mode: "physical" | "virtual",
  nic?: { model: string; queues: number },
): (prop: string) => Scalar | undefined {
  return (prop) => {
    if (!prop.startsWith("port.")) return undefined;
    const field = prop.slice(5);
    if (mode === "virtual" && (field === "model" || field === "queues")) return nic?.[field];
    const v = (port as unknown as Record<string, unknown>)[field];
    return typeof v === "number" || typeof v === "string" || typeof v === "boolean" ? v : undefined;
  };
}

/**
 * Sockets onto ports: one socket per port while ports last (access ports),
 * otherwise several sockets share a port as virtual interfaces (a VLAN trunk on
 * bare metal, virtual NICs on a hypervisor), within the port's line rate.
 * Returns a reason string when impossible.
 */
export function mapSockets(
  ports: readonly Port[],
  mode: "physical" | "virtual",
  sockets: readonly SocketNeed[],
): PortMapping | string {
  if (sockets.length === 0) return { port: [], virtual: [] };
  if (ports.length === 0) return "the resource has no experiment-network ports";
  const eligible: number[][] = [];
  for (const s of sockets) {
    const list: number[] = [];
    let why = "";
    const nic = mode === "virtual" ? vmNic(s.constraints) : undefined;
    ports.forEach((p, i) => {
      const bad = firstUnsatisfied(portLookup(p, mode, nic), s.constraints);
      if (bad) why ||= `${bad.prop} ${bad.op} ${JSON.stringify(bad.value)}`;
      else if (p.capacity < s.minRate || p.capacity < s.demand) why ||= "line rate";
      else list.push(i);
    });
    if (!list.length) return `socket ${s.index}: no port satisfies ${why}`;
    eligible.push(list);
  }
  const order = sockets.map((_, i) => i).sort((a, b) => eligible[a]!.length - eligible[b]!.length || a - b);
  const port = new Array<number>(sockets.length).fill(-1);
  if (mode === "physical" && sockets.length <= ports.length) {
    const used = new Set<number>();
    let all = true;
    for (const i of order) {
      const p = eligible[i]!.find((x) => !used.has(x));
      if (p === undefined) {
        all = false;
        break;
      }
      used.add(p);
      port[i] = p;
    }
    if (all) return { port, virtual: port.map(() => false) };
  }
  const left = ports.map((p) => p.capacity);
  const count = ports.map(() => 0);
  for (const i of order) {
    let pick = -1;
    for (const p of eligible[i]!) {
      if (
        left[p]! >= sockets[i]!.demand &&
        (pick < 0 || count[p]! < count[pick]! || (count[p] === count[pick] && left[p]! > left[pick]!))
      )
        pick = p;
    }
    if (pick < 0) return `socket ${sockets[i]!.index}: the ports cannot carry all its links' capacity`;
    port[i] = pick;
    left[pick]! -= sockets[i]!.demand;
    count[pick]!++;
  }
  return { port, virtual: port.map((p) => mode === "virtual" || count[p]! > 1) };
}
