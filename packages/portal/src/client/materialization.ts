/**
 * The materialization status the portal reports (`GET …/materialization`), shared by
 * the server, the CLI and the web UI. Browser-safe: types only (XIR's, and the
 * facility's node profile report from `@merge/materialize/spec`).
 */
import type { NodeProfileReport } from "@merge/materialize/spec";
import type { EmulationValues, LinkEmulation } from "@merge/xir/browser";

/** A virtual node's performance profile as its facility set it up. */
export type NodeProfile = NodeProfileReport;

export interface FacilityStatus {
  facility: string;
  reachable: boolean;
  /** Facility status: materializing, active, error, dematerializing, dematerialized; or `undelivered`. */
  status: string;
  error?: string;
  attempts: number;
  nextAttempt?: string;
  actions: number;
  complete: number;
  errors: number;
  masked: number;
  infrapod?: string;
  failed: { task: string; action: string; kind: string; target: string; error: string; attempts: number }[];
}

/**
 * Emulation values as the API carries them: base units, each named in its
 * field (one-way latency in ns, capacity in bit/s, loss a fraction 0..1).
 * Inside the portal and the facility they are XIR's `EmulationValues` (the same
 * units, unnamed); `apiEmulation`/`xirEmulation` rename between the two.
 */
export interface ApiEmulationValues {
  latencyNs?: number;
  capacityBps?: number;
  lossFraction?: number;
}

/** A link's emulation (API form): the link's values, and the directions set apart with their own. */
export interface ApiLinkEmulation extends ApiEmulationValues {
  toward?: ({ node: string } & ApiEmulationValues)[];
}

const defined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** XIR values → the API's field names (same units). */
export function apiEmulationValues(v: EmulationValues): ApiEmulationValues {
  return defined({ latencyNs: v.latency, capacityBps: v.capacity, lossFraction: v.loss });
}

/** The API's field names → XIR values (same units). */
export function xirEmulationValues(v: ApiEmulationValues): EmulationValues {
  return defined({ latency: v.latencyNs, capacity: v.capacityBps, loss: v.lossFraction });
}

/** A link's XIR emulation → the API's. */
export function apiEmulation(e: LinkEmulation): ApiLinkEmulation {
  const out: ApiLinkEmulation = apiEmulationValues(e);
  if (e.toward) out.toward = e.toward.map((t) => ({ node: t.node, ...apiEmulationValues(t) }));
  return out;
}

/** The API's link emulation → XIR's. */
export function xirEmulation(e: ApiLinkEmulation): LinkEmulation {
  const out: LinkEmulation = xirEmulationValues(e);
  if (e.toward) out.toward = e.toward.map((t) => ({ node: t.node, ...xirEmulationValues(t) }));
  return out;
}

export interface MaterializationStatus {
  id: string;
  project: string;
  experiment: string;
  realization: string;
  /** materializing | active | error | dematerializing | dematerialized */
  status: string;
  actions: number;
  complete: number;
  facilities: FacilityStatus[];
  nodes: {
    node: string;
    resource: string;
    facility: string;
    current: string;
    target: string;
    action: string;
    error?: string;
    /** on | off | starting | stopping | cycling | reimaging (empty until ready) */
    power: string;
    powerError?: string;
    /** Experiment addresses in CIDR form, in socket order (from the plan). */
    addresses?: string[];
    /** The node's infranet address (from the plan). */
    infranet?: string;
    /** OS image; absent: the facility's default. */
    image?: string;
    /** What a virtual node actually got, as its facility reported it (kind, accel, cores, memory, CPU cap, NICs, dilation). */
    profile?: NodeProfile;
    /**
     * A node on a shared host (a wide-area facility): reached from outside through its host's NAT,
     * `ssh -p <ssh> <address>`; ports first…last forwarded to it (first to its port 22, the others as they are).
     */
    control?: NodeControl;
  }[];
  links: {
    link: string;
    facility: string;
    action: string;
    error?: string;
    emulation?: ApiLinkEmulation;
    /** An external link: the facilities its traffic crosses to from this one, over shared wide-area links. */
    external?: string[];
  }[];
}

/** A node's block of ports on its shared host's address. */
export interface NodeControl {
  address: string;
  first: number;
  last: number;
  ssh: number;
}

/** How to reach a node through its host's NAT, in one line: `ssh -p 20000 203.0.113.7 (ports 20000-20009)`. */
export function describeControl(c: NodeControl): string {
  return `ssh -p ${c.ssh} ${c.address} (ports ${c.first}-${c.last})`;
}

const fixed = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(2).replace(/0$/, ""));

/**
 * A profile in one line, as `mrg show materialization` and the web page show it:
 * `vm tcg, 1 core, 256 MiB, CPU cap 0.25 core, NICs virtio e1000, dilation 10× asked, 11.7× achieved (10.8× of the CPU given)`.
 */
export function describeProfile(p: NodeProfile): string {
  const parts = [p.accel ? `${p.kind} ${p.accel}` : p.kind];
  if (p.cores) parts.push(`${p.cores} core${p.cores === 1 ? "" : "s"}`);
  if (p.memoryMiB) parts.push(`${p.memoryMiB} MiB`);
  if (p.cpuCap !== undefined && p.cpuCap !== p.cores) parts.push(`CPU cap ${fixed(p.cpuCap)} core`);
  if (p.nics?.length) parts.push(`NICs ${p.nics.map((n) => n.model).join(" ")}`);
  const d = p.dilation;
  if (d)
    parts.push(
      `dilation ${fixed(d.asked)}× asked, ${d.achieved.toFixed(1)}× achieved (${d.ofCpu.toFixed(1)}× of the CPU given)`,
    );
  return parts.join(", ");
}
