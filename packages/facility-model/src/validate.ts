/**
 * Whole-model rules for a facility: what the JSON Schema cannot say. Works the
 * same on a built facility and on one loaded from JSON (run the schema first:
 * `checkFacilityDocument`). Linear in the size of the model.
 */
import {
  type Cable,
  type Facility,
  hostProblems,
  type NetworkRole,
  type Port,
  type PortRef,
  type Resource,
  type TagRange,
  validateFacility,
} from "@merge/xir";
import { describe, numberedPort, type Problem, portIndexOf as portIndex, portList } from "./problem.ts";

export const VLAN_MIN = 1;
export const VLAN_MAX = 4094;
export const VNI_MIN = 1;
export const VNI_MAX = 16_777_215;

interface Entry {
  res: Resource;
  byName?: Map<string, number>;
  /** This resource's ports start here in `cabledBy`. */
  base: number;
}

/** Every problem in a facility model, errors first in model order, then warnings. */
export function checkFacility(f: Facility): Problem[] {
  const problems: Problem[] = [];
  const error = (element: string, message: string) => problems.push({ severity: "error", element, message });
  const warning = (element: string, message: string) => problems.push({ severity: "warning", element, message });

  // Resources: ids, ports, kind-specific shape. `cabledBy` holds, per port, the index of its cable or -1.
  const entries = new Map<string, Entry>();
  let ports = 0;
  for (const r of f.resources) ports += r.ports.length;
  const cabledBy = new Int32Array(ports).fill(-1);
  let base = 0;
  for (let i = 0; i < f.resources.length; i++) {
    const r = f.resources[i] as Resource;
    const prev = entries.get(r.id);
    if (prev) {
      error(`resources[${i}]`, `duplicate resource id ${r.id}: also used by ${describe(prev.res)}`);
      continue;
    }
    entries.set(r.id, { res: r, base });
    base += r.ports.length;
    checkPorts(r, error);
    checkUnits(r, error, warning);
    checkShape(r, error, warning);
  }

  // Cables: ends exist, no port cabled twice, roles agree.
  const cables = f.cables as Cable[];
  for (const [i, first] of duplicates(cables.map((c) => c.id))) {
    error(`cable ${cables[i]?.id}`, `duplicate cable id ${cables[i]?.id} (cables[${first}] and cables[${i}])`);
  }
  const uplinked = new Set<string>();
  const claim = (e: Entry, i: number, c: number) => {
    const slot = e.base + i;
    const by = cabledBy[slot] as number;
    if (by < 0) cabledBy[slot] = c;
    else {
      error(
        `port ${e.res.id}.${(e.res.ports[i] as Port).name}`,
        `is cabled twice: by ${cables[by]?.id} and ${cables[c]?.id}`,
      );
    }
  };
  for (let c = 0; c < f.cables.length; c++) {
    const cable = f.cables[c] as Cable;
    const ea = entries.get((cable.ends[0] as PortRef).resource);
    const eb = entries.get((cable.ends[1] as PortRef).resource);
    const ia = cableEnd(cable, 0, ea, error);
    const ib = cableEnd(cable, 1, eb, error);
    if (ea && ia >= 0 && ea === eb && ia === ib) {
      error(`cable ${cable.id}`, "both ends are the same port");
      continue;
    }
    if (ea && ia >= 0) claim(ea, ia, c);
    if (eb && ib >= 0) claim(eb, ib, c);
    if (ea && eb && ia >= 0 && ib >= 0) {
      const pa = ea.res.ports[ia] as Port;
      const pb = eb.res.ports[ib] as Port;
      if (pa.role !== pb.role) {
        error(
          `cable ${cable.id}`,
          `joins ${ea.res.id}.${pa.name} (${pa.role}) to ${eb.res.id}.${pb.name} (${pb.role}); both ends must be on the same network`,
        );
      }
      // A switch is uplinked when cabled to a switch of a higher layer on its network.
      const sa = ea.res.switch;
      const sb = eb.res.switch;
      if (sa && sb && sa.network === sb.network) {
        if (rank(sb.layer) > rank(sa.layer)) uplinked.add(ea.res.id);
        else if (rank(sa.layer) > rank(sb.layer)) uplinked.add(eb.res.id);
      }
    }
  }

  // Switch hierarchy: each leaf needs an uplink when its network has fabrics or spines; each fabric when it has spines.
  const above = new Map<NetworkRole, { fabric: number; spine: number }>();
  for (const { res } of entries.values()) {
    if (!res.switch) continue;
    const n = above.get(res.switch.network) ?? { fabric: 0, spine: 0 };
    if (res.switch.layer === "fabric") n.fabric++;
    if (res.switch.layer === "spine") n.spine++;
    above.set(res.switch.network, n);
  }
  for (const { res } of entries.values()) {
    const sw = res.switch;
    if (!sw || res.kind !== "switch" || sw.layer === "spine" || uplinked.has(res.id)) continue;
    const n = above.get(sw.network) ?? { fabric: 0, spine: 0 };
    const higher = sw.layer === "leaf" ? n.fabric + n.spine : n.spine;
    if (higher > 0) {
      const toward = sw.layer === "leaf" ? `${sw.network} fabric or spine` : `${sw.network} spine`;
      error(
        describe(res),
        `has no uplink: no cable toward a ${toward} switch (the facility has ${higher}), so nothing below it can reach the rest of the ${sw.network}`,
      );
    }
  }

  // Testbed nodes: an infranet port, and a cabled one.
  let nodes = 0;
  let infrapodServers = 0;
  for (const e of entries.values()) {
    const r = e.res;
    if (r.kind === "infrapod-server") infrapodServers++;
    const cabledOn = (role: string) => r.ports.some((p, i) => p.role === role && (cabledBy[e.base + i] as number) >= 0);
    if (r.kind === "emulator" && !cabledOn("xpnet")) {
      warning(describe(r), "has no cabled xpnet port, so no emulated link can pass through it");
    }
    if (r.kind === "infrapod-server" && !cabledOn("infranet")) {
      error(describe(r), "has no cabled infranet port, so infrapods on it cannot reach any node");
    }
    if (r.kind === "gateway") {
      if (!r.ports.some((p) => p.role === "gateway")) {
        warning(describe(r), "has no port of role gateway, so no interconnect can end on it");
      }
      if (!cabledOn("xpnet") && !cabledOn("infranet")) {
        warning(describe(r), "has no cabled xpnet or infranet port, so nothing inside the facility reaches it");
      }
    }
    if (r.kind !== "node") continue;
    nodes++;
    let infranet = 0;
    let cabled = 0;
    for (let i = 0; i < r.ports.length; i++) {
      if ((r.ports[i] as Port).role !== "infranet") continue;
      infranet++;
      if ((cabledBy[e.base + i] as number) >= 0) cabled++;
    }
    if (infranet === 0) {
      error(
        describe(r),
        `has no infranet port (it has ${portList(r.ports)}); every testbed node must reach the infranet`,
      );
    } else if (cabled === 0) {
      const names = r.ports.filter((p) => p.role === "infranet").map((p) => p.name);
      error(describe(r), `infranet port ${names.join(", ")} is not cabled; every testbed node must reach the infranet`);
    }
  }
  if (nodes > 0 && infrapodServers === 0) {
    warning(`facility ${f.name}`, "has testbed nodes but no infrapod server; no experiment can be given an infrapod");
  }

  checkMacs(f, entries, error);
  checkTags(f, entries, error, warning);
  // Host entries (a shared host's NAT): the field at fault is the element.
  for (const p of hostProblems(f)) error(p.field, p.message);
  return problems.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1));
}

/** Schema first (exact paths), then the model rules. */
export function checkFacilityDocument(doc: unknown): { facility?: Facility; problems: Problem[] } {
  const r = validateFacility(doc);
  if (!r.ok) {
    return {
      problems: r.errors.map((e) => ({
        severity: "error" as const,
        element: e.path || "(document)",
        message: e.message,
      })),
    };
  }
  return { facility: r.value, problems: checkFacility(r.value) };
}

type Report = (element: string, message: string) => void;

/** The port index at one end of a cable (-1, reported, when the resource or port is unknown). */
function cableEnd(cable: Cable, k: 0 | 1, e: Entry | undefined, error: Report): number {
  const end = cable.ends[k] as PortRef;
  if (!e) {
    error(`cable ${cable.id}`, `end ${k + 1} names resource ${end.resource}, which is not in the facility`);
    return -1;
  }
  const i = portIndex(e, end.port);
  if (i < 0) {
    error(
      `cable ${cable.id}`,
      `end ${k + 1} names port ${end.port} of ${describe(e.res)}, which has no such port (it has ${portList(e.res.ports)})`,
    );
  }
  return i;
}

function rank(layer: "leaf" | "fabric" | "spine"): number {
  return layer === "leaf" ? 0 : layer === "fabric" ? 1 : 2;
}

function checkPorts(r: Resource, error: Report): void {
  const ports = r.ports;
  if (ports.length <= 12) {
    for (let i = 1; i < ports.length; i++) {
      for (let j = 0; j < i; j++) {
        if ((ports[i] as Port).name === (ports[j] as Port).name) {
          error(describe(r), `port name ${(ports[i] as Port).name} is used twice`);
          break;
        }
      }
    }
    return;
  }
  // Big switches: ports named swpN at N-1 are distinct by position; only the rest need a set.
  let rest: Set<string> | undefined;
  for (let i = 0; i < ports.length; i++) {
    const name = (ports[i] as Port).name;
    if (numberedPort(name) === i) continue;
    const at = numberedPort(name);
    rest ??= new Set();
    if (rest.has(name) || (at >= 0 && at < ports.length && (ports[at] as Port).name === name)) {
      error(describe(r), `port name ${name} is used twice`);
    }
    rest.add(name);
  }
}

/** MAC addresses are unique in a facility: DHCP and the switches' tables key on them. */
function checkMacs(f: Facility, entries: Map<string, Entry>, error: Report): void {
  const macs: string[] = [];
  const owners: string[] = [];
  for (const r of f.resources) {
    if (entries.get(r.id)?.res !== r) continue; // a duplicate id, reported already
    for (const p of r.ports) {
      if (p.mac === undefined) continue;
      macs.push(p.mac.toLowerCase());
      owners.push(`${r.id}.${p.name}`);
    }
  }
  for (const [i, first] of duplicates(macs)) {
    error(`port ${owners[i]}`, `MAC ${macs[i]} is also the MAC of port ${owners[first]}`);
  }
}

const CAPACITY = ["proc.cores", "memory.capacity"] as const;
const MIB = 2 ** 20;

/** Zero line rates, and numbers so small they are surely a missing unit helper (10 meaning 10 Gbit/s). */
function checkUnits(r: Resource, error: Report, warning: Report): void {
  let tiny: Port | undefined;
  for (const p of r.ports) {
    if (!(p.capacity > 0))
      error(`port ${r.id}.${p.name}`, "has no capacity; give its line rate in bits/s, e.g. gbps(10)");
    else if (p.capacity < 1e6 && !tiny) tiny = p;
  }
  if (tiny) {
    warning(
      `port ${r.id}.${tiny.name}`,
      `capacity ${tiny.capacity} bit/s looks like a missing unit; capacities are bits/s, e.g. gbps(10)`,
    );
  }
  for (const prop of ["memory.capacity", "disk.capacity"]) {
    const v = r.props[prop];
    if (typeof v === "number" && v > 0 && v < MIB) {
      warning(describe(r), `${prop} ${v} bytes looks like a missing unit; sizes are bytes, e.g. gb(64)`);
    }
  }
}

function checkShape(r: Resource, error: Report, warning: Report): void {
  const el = describe(r);
  if (r.kind === "switch" && !r.switch) {
    error(el, "is a switch without switch info (layer, network, vxlan, vlanDomain)");
  }
  if (r.kind !== "switch" && r.switch) error(el, `has switch info but is a ${r.kind}, not a switch`);
  if (r.virt && !(r.kind === "node" && r.alloc.includes("virtual"))) {
    error(el, "has virt (kinds, overcommit) but is not a hypervisor: virt needs a node with alloc virtual");
  }
  for (const [what, ratio] of Object.entries(r.virt?.overcommit ?? {})) {
    if (!(typeof ratio === "number" && Number.isFinite(ratio) && ratio >= 1)) {
      error(el, `virt.overcommit.${what} is ${String(ratio)}; a ratio is a number ≥ 1 (1: no overcommit)`);
    }
  }
  if (r.kind === "node") {
    if (r.alloc.length === 0) {
      error(el, "has no allocation mode; alloc must hold physical, virtual or both");
    }
    const virtual = r.alloc.includes("virtual");
    for (const prop of CAPACITY) {
      const v = r.props[prop];
      if (typeof v === "number" && v > 0) continue;
      if (virtual)
        error(el, `is a hypervisor (alloc virtual) but has no positive ${prop}; VM capacity is counted from it`);
      else warning(el, `has no positive ${prop}; constraints on it can never match this node`);
    }
  } else if (r.alloc.length > 0) {
    error(el, `has alloc [${r.alloc.join(", ")}], but only testbed nodes are allocated to experiments`);
  }
}

function checkTags(f: Facility, entries: Map<string, Entry>, error: Report, warning: Report): void {
  const domains = new Set<string>();
  for (const { res } of entries.values()) {
    // Spines are pure underlay and the mgmt network carries no experiment tags.
    if (res.kind !== "switch" || !res.switch || res.switch.layer === "spine" || res.switch.network === "mgmt") continue;
    if (domains.has(res.switch.vlanDomain)) continue;
    domains.add(res.switch.vlanDomain);
    if (!f.tags.vlan[res.switch.vlanDomain]?.length) {
      error(
        describe(res),
        `is in VLAN domain ${res.switch.vlanDomain}, which has no VLAN id pool in tags.vlan (pools: ${Object.keys(f.tags.vlan).join(", ") || "none"})`,
      );
    }
  }
  for (const [domain, ranges] of Object.entries(f.tags.vlan)) {
    checkRanges(`tags.vlan.${domain}`, "VLAN id", ranges, VLAN_MIN, VLAN_MAX, error);
    if (!domains.has(domain))
      warning(`tags.vlan.${domain}`, "is a VLAN pool for a domain no leaf or fabric switch is in");
  }
  checkRanges("tags.vni", "VNI", f.tags.vni, VNI_MIN, VNI_MAX, error);
  if (f.tags.vni.length === 0 && [...entries.values()].some((e) => e.res.kind === "node")) {
    warning("tags.vni", "is empty; every realization needs a VNI for its infranet");
  }
}

function checkRanges(el: string, what: string, ranges: readonly TagRange[], min: number, max: number, error: Report) {
  ranges.forEach((r, i) => {
    if (r.first > r.last) error(`${el}[${i}]`, `${what} range ${r.first}-${r.last} is empty: first is above last`);
    if (r.first < min || r.last > max) {
      error(`${el}[${i}]`, `${what} range ${r.first}-${r.last} is outside ${min}-${max}`);
    }
  });
  const sorted = ranges
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => r.first <= r.last)
    .sort((a, b) => a.r.first - b.r.first);
  // Compare each range with the one reaching furthest so far, so nested ranges are caught too.
  let prev = sorted[0];
  for (let k = 1; k < sorted.length && prev; k++) {
    const cur = sorted[k] as { r: TagRange; i: number };
    if (cur.r.first <= prev.r.last) {
      error(
        el,
        `${what} ranges ${prev.r.first}-${prev.r.last} ([${prev.i}]) and ${cur.r.first}-${cur.r.last} ([${cur.i}]) overlap`,
      );
    }
    if (cur.r.last > prev.r.last) prev = cur;
  }
}

/**
 * Pairs [index, index of its first occurrence] for every repeated id. An
 * open-addressing table over an Int32Array: several times faster than a Set at
 * the 400,000 cable ids of a 100,000-node facility.
 */
export function duplicates(ids: readonly string[]): [number, number][] {
  let size = 1024;
  while (size < ids.length * 2) size *= 2;
  const mask = size - 1;
  const table = new Int32Array(size).fill(-1);
  const out: [number, number][] = [];
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i] as string;
    let h = 0x811c9dc5; // FNV-1a
    for (let k = 0; k < s.length; k++) h = Math.imul(h ^ s.charCodeAt(k), 0x01000193);
    let slot = h & mask;
    for (;;) {
      const at = table[slot] as number;
      if (at < 0) {
        table[slot] = i;
        break;
      }
      if (ids[at] === s) {
        out.push([i, at]);
        break;
      }
      slot = (slot + 1) & mask;
    }
  }
  return out;
}

/** The tags in a set of ranges. */
export function rangeSize(ranges: readonly TagRange[]): number {
  let n = 0;
  for (const r of ranges) if (r.last >= r.first) n += r.last - r.first + 1;
  return n;
}
