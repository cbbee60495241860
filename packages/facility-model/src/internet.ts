/**
 * The resource internet: facilities joined by interconnects between their
 * gateways' inter-facility ports (role `gateway`), each with a capacity, a
 * one-way latency and whether it is shared with other traffic (rate-limited).
 */
import type { Facility, FacilityPortRef, Interconnect, Port, ResourceInternet } from "@merge/xir";
import { gbps, ms } from "@merge/xir";
import { type GenerateOptions, generateFacility } from "./generate.ts";
import { describe, FacilityModelError, type Problem } from "./problem.ts";
import { random } from "./random.ts";
import { checkFacility } from "./validate.ts";

export interface InterconnectSpec {
  /** bits/s */
  capacity: number;
  /** one-way, ns */
  latency: number;
  /** Shared with other traffic and rate-limited; default true (the usual inter-facility link). */
  shared?: boolean;
  /** Default `<facility>/<gateway>/<port>~<facility>/<gateway>/<port>`. */
  id?: string;
}

export interface CheckInternetOptions {
  /** Also check each facility (problems prefixed with the facility); default true. */
  facilities?: boolean;
}

/** Facilities plus interconnects, checked; throws `FacilityModelError` listing every error. */
export function joinFacilities(
  facilities: readonly Facility[],
  interconnects: readonly Interconnect[],
): ResourceInternet {
  const internet: ResourceInternet = { facilities: [...facilities], interconnects: [...interconnects] };
  const errors = checkResourceInternet(internet).filter((p) => p.severity === "error");
  if (errors.length) throw new FacilityModelError("resource internet", errors);
  return internet;
}

/** Builds a resource internet, picking free gateway ports when none is named. */
export class InternetBuilder {
  private readonly facilities: Facility[] = [];
  private readonly interconnects: Interconnect[] = [];
  private readonly used = new Set<string>();

  add(...facilities: Facility[]): this {
    this.facilities.push(...facilities);
    return this;
  }

  /**
   * The first gateway port of a facility (of one gateway, when named) that no
   * interconnect uses yet.
   */
  gatewayPort(facility: string, gateway?: string): FacilityPortRef {
    const f = this.facilities.find((x) => x.name === facility);
    if (!f)
      throw new Error(`no facility ${facility} (have ${this.facilities.map((x) => x.name).join(", ") || "none"})`);
    for (const r of f.resources) {
      if (r.kind !== "gateway" || (gateway !== undefined && r.id !== gateway)) continue;
      for (const p of r.ports) {
        if (p.role === "gateway" && !this.used.has(key({ facility, resource: r.id, port: p.name }))) {
          return { facility, resource: r.id, port: p.name };
        }
      }
    }
    throw new Error(`facility ${facility}: no free gateway port${gateway ? ` on ${gateway}` : ""}`);
  }

  /** An interconnect between two gateway ports, or between the next free gateway ports of two facilities. */
  connect(a: FacilityPortRef | string, b: FacilityPortRef | string, spec: InterconnectSpec): Interconnect {
    const ra = typeof a === "string" ? this.gatewayPort(a) : a;
    this.used.add(key(ra));
    const rb = typeof b === "string" ? this.gatewayPort(b) : b;
    this.used.add(key(rb));
    const ic: Interconnect = {
      id: spec.id ?? `${key(ra)}~${key(rb)}`,
      a: ra,
      b: rb,
      capacity: spec.capacity,
      latency: spec.latency,
      shared: spec.shared ?? true,
    };
    this.interconnects.push(ic);
    return ic;
  }

  build(options: { validate?: boolean } = {}): ResourceInternet {
    if (options.validate ?? true) return joinFacilities(this.facilities, this.interconnects);
    return { facilities: [...this.facilities], interconnects: [...this.interconnects] };
  }
}

function key(r: FacilityPortRef): string {
  return `${r.facility}/${r.resource}/${r.port}`;
}

/** Every problem in a resource internet: interconnects, and (by default) each facility's own. */
export function checkResourceInternet(internet: ResourceInternet, options: CheckInternetOptions = {}): Problem[] {
  const problems: Problem[] = [];
  const error = (element: string, message: string) => problems.push({ severity: "error", element, message });
  const byName = new Map<string, Facility>();
  for (const f of internet.facilities) {
    if (byName.has(f.name))
      error(`facility ${f.name}`, "is in the resource internet twice (facility names must be unique)");
    else byName.set(f.name, f);
    if (options.facilities ?? true) {
      for (const p of checkFacility(f)) problems.push({ ...p, element: `facility ${f.name}: ${p.element}` });
    }
  }
  const ids = new Set<string>();
  const usedBy = new Map<string, string>();
  for (const [i, ic] of internet.interconnects.entries()) {
    // The XIR schema checks facilities only; an interconnect from JSON may be any shape.
    const shape = interconnectShape(ic);
    if (shape) {
      error(`interconnects[${i}]`, shape);
      continue;
    }
    const el = `interconnect ${ic.id}`;
    if (ids.has(ic.id)) error(el, `duplicate interconnect id ${ic.id}`);
    ids.add(ic.id);
    if (!(ic.capacity > 0)) error(el, `capacity must be a positive number of bits/s, got ${ic.capacity}`);
    if (!(ic.latency >= 0)) error(el, `latency must be a non-negative number of ns, got ${ic.latency}`);
    if (ic.a.facility === ic.b.facility) {
      error(el, `both ends are in facility ${ic.a.facility}; interconnects join different facilities`);
    }
    for (const [end, ref] of [
      ["a", ic.a],
      ["b", ic.b],
    ] as const) {
      const f = byName.get(ref.facility);
      if (!f) {
        error(el, `end ${end} names facility ${ref.facility}, which is not in the resource internet`);
        continue;
      }
      const r = f.resources.find((x) => x.id === ref.resource);
      if (!r) {
        error(el, `end ${end} names resource ${ref.resource}, which facility ${f.name} does not have`);
        continue;
      }
      if (r.kind !== "gateway") {
        error(el, `end ${end} is on ${describe(r)} of facility ${f.name}; interconnects end on gateways`);
        continue;
      }
      const port = r.ports.find((p: Port) => p.name === ref.port);
      if (!port) {
        const names = r.ports.filter((p) => p.role === "gateway").map((p) => p.name);
        error(
          el,
          `end ${end} names port ${ref.port} of gateway ${r.id} (facility ${f.name}), which has no such port (gateway ports: ${names.join(", ") || "none"})`,
        );
        continue;
      }
      if (port.role !== "gateway") {
        error(el, `end ${end}: port ${r.id}.${port.name} of facility ${f.name} has role ${port.role}, not gateway`);
        continue;
      }
      const k = key(ref);
      const prev = usedBy.get(k);
      if (prev !== undefined) error(el, `gateway port ${k} is already used by interconnect ${prev}`);
      else usedBy.set(k, ic.id);
    }
  }
  return problems.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1));
}

/** What is missing or mistyped in an interconnect, or undefined when its shape is right. */
function interconnectShape(ic: unknown): string | undefined {
  if (typeof ic !== "object" || ic === null) return "must be an object {id, a, b, capacity, latency, shared}";
  const x = ic as Record<string, unknown>;
  if (typeof x.id !== "string" || x.id === "") return "id must be a non-empty string";
  for (const end of ["a", "b"]) {
    const r = x[end] as Record<string, unknown> | undefined;
    if (typeof r !== "object" || r === null) return `${end} must be a gateway port {facility, resource, port}`;
    for (const k of ["facility", "resource", "port"]) {
      if (typeof r[k] !== "string") return `${end}.${k} must be a string`;
    }
  }
  if (typeof x.capacity !== "number") return "capacity must be a number of bits/s";
  if (typeof x.latency !== "number") return "latency must be a number of ns";
  if (typeof x.shared !== "boolean") return "shared must be true or false";
  return undefined;
}

export interface GenerateInternetOptions {
  /** Number of facilities, `site0`, `site1`, ... */
  facilities: number;
  nodesPerFacility: number;
  seed?: number;
  /** Passed to every facility's generator (nodes, name, seed and gateways are set per facility). */
  facility?: Omit<GenerateOptions, "nodes" | "name" | "seed" | "gatewayPorts">;
}

/**
 * Generated facilities joined in a full mesh: one interconnect between every
 * pair, from each facility's gateway, with capacity 1-100 Gbit/s, latency
 * 1-40 ms, and about half of them shared. Deterministic for a seed.
 */
export function generateResourceInternet(options: GenerateInternetOptions): ResourceInternet {
  const k = options.facilities;
  if (!Number.isInteger(k) || k < 1)
    throw new RangeError(`generateResourceInternet: facilities must be >= 1, got ${k}`);
  const seed = options.seed ?? 1;
  const rng = random(seed ^ 0x5eed);
  const b = new InternetBuilder();
  for (let i = 0; i < k; i++) {
    b.add(
      generateFacility({
        ...options.facility,
        nodes: options.nodesPerFacility,
        name: `site${i}`,
        seed: seed * 1_000_003 + i,
        gatewayPorts: Math.max(1, k - 1),
      }),
    );
  }
  const capacities = [gbps(1), gbps(10), gbps(40), gbps(100)];
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      b.connect(`site${i}`, `site${j}`, {
        capacity: capacities[Math.floor(rng() * capacities.length)] as number,
        latency: ms(1 + Math.floor(rng() * 40)),
        shared: rng() < 0.5,
      });
    }
  }
  return b.build({ validate: false });
}
