/**
 * Why a node could not be placed, in the user's terms: the constraint no free
 * resource meets, what the closest free resources have, and what holds the
 * resources that would have done.
 */
import {
  type Constraint,
  contradictions,
  describeConstraint,
  formatValue,
  type Node,
  type Scalar,
  satisfies,
} from "@merge/xir";
import { type InternetIndex, KIND_NODE } from "./internet.ts";
import {
  type Candidate,
  identityLookup,
  physicalLookup,
  type VmDefaults,
  virtualLookup,
  vmSizes,
} from "./placement.ts";
import { FREE, MINE, PRIOR, type Usage, VM_PROPS, vmRoom } from "./usage.ts";

export interface Problem {
  element: "experiment" | "node" | "link" | "facility";
  name: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  return p.element === "experiment" ? `experiment: ${p.message}` : `${p.element} ${p.name}: ${p.message}`;
}

type Lookup = (prop: string) => Scalar | undefined;

/**
 * How a testbed resource looks to a constraint: as bare metal, and as the VM
 * the node would get (or, when that does not fit, the largest it could still
 * host: its base capacity, or what is left when `free`).
 */
function views(
  ix: InternetIndex,
  usage: Usage,
  r: number,
  free: boolean,
  vm: number[] | undefined,
  root: number,
): Lookup[] {
  const res = ix.resources[r]!;
  const id = identityLookup(ix, r);
  const out: Lookup[] = [];
  if (res.alloc.includes("physical")) {
    const phys = physicalLookup(res.props);
    out.push((p) => id(p) ?? phys(p));
  }
  if (res.alloc.includes("virtual")) {
    const room = free ? [0, 1, 2].map((k) => usage.remaining[r * 3 + k]!) : VM_PROPS.map((p) => num(res.props[p]));
    const sizes = vm?.every((v, k) => v <= room[k]!) ? vm : room;
    const virt = virtualLookup(res.props, sizes, "container", root);
    out.push((p) => id(p) ?? virt(p));
  }
  return out;
}

function num(v: Scalar | undefined): number {
  return typeof v === "number" ? v : 0;
}

function freeState(usage: Usage, r: number): "free" | "vm" | "prior" | "mine" {
  if (usage.physical[r] === PRIOR) return "prior";
  if (usage.physical[r] === MINE) return "mine";
  if (usage.vmCount[r]! > 0) {
    const open = usage.remaining[r * 3]! > 0 && usage.remaining[r * 3 + 1]! > 0 && usage.remaining[r * 3 + 2]! > 0;
    if (open) return "vm";
    return usage.vmOwner[r] === MINE ? "mine" : "prior";
  }
  return usage.physical[r] === FREE ? "free" : "prior";
}

/** What diagnosing a node no resource could take looks at. */
export interface UnplacedNode {
  ix: InternetIndex;
  usage: Usage;
  node: Node;
  vmDefaults: VmDefaults;
  /** The facility the node must be in (its neighbours are), or -1. */
  facility: number;
  /** Why no resource had ports for its sockets, if that was it. */
  mappingWhy: string | undefined;
  candidates: readonly Candidate[];
}

/** The message for a node no resource could take, and which hypervisors ran out of what for it. */
export function diagnoseNode(u: UnplacedNode): string {
  const why = diagnoseConstraints(u);
  const { ix, facility } = u;
  const short = hypervisorShortfall(ix, u.usage, u.candidates, (r) => facility < 0 || ix.resFacility[r] === facility);
  return short ? `${why}; ${short}` : why;
}

function diagnoseConstraints({ ix, usage, node, vmDefaults, facility, mappingWhy, candidates }: UnplacedNode): string {
  const vm = vmSizes(node.constraints, vmDefaults);
  const groups = contradictions(node.constraints);
  if (groups.length) {
    return `constraints contradict each other: ${groups[0]!.map(describeConstraint).join(" and ")}`;
  }
  const testbed: number[] = [];
  for (let r = 0; r < ix.resources.length; r++) {
    if (ix.resKind[r] === KIND_NODE && ix.resources[r]!.alloc.length) testbed.push(r);
  }
  if (!testbed.length) return "the resource internet has no testbed nodes";
  const where = facility >= 0 ? ` in facility ${ix.facilityNames[facility]}` : "";
  const inScope = (r: number) => facility < 0 || ix.resFacility[r] === facility;

  for (const c of node.constraints) {
    const anywhere = testbed.filter((r) =>
      views(ix, usage, r, false, vm, vmDefaults.disk).some((v) => satisfies(v(c.prop), c)),
    );
    if (!anywhere.length) {
      return `${describeConstraint(c)}: no resource in the resource internet has ${wanted(c)}${extreme(ix, usage, testbed, c, false, vmDefaults.disk)}`;
    }
    const free = testbed.filter((r) => inScope(r) && freeState(usage, r) !== "prior" && freeState(usage, r) !== "mine");
    const freeOk = free.filter((r) =>
      views(ix, usage, r, true, vm, vmDefaults.disk).some((v) => satisfies(v(c.prop), c)),
    );
    if (freeOk.length) continue;
    const held = anywhere.filter((r) => inScope(r));
    const prior = held.filter((r) => freeState(usage, r) === "prior" || usage.vmOwner[r] === PRIOR);
    const mine = held.filter((r) => !prior.includes(r));
    const parts = [
      `${describeConstraint(c)}: no free resource${where} has ${wanted(c)}${extreme(ix, usage, free, c, true, vmDefaults.disk)}`,
    ];
    if (prior.length)
      parts.push(`${byValue(ix, prior, c.prop)} ${prior.length === 1 ? "is" : "are"} allocated to other experiments`);
    if (mine.length)
      parts.push(
        `${byValue(ix, mine, c.prop)} ${mine.length === 1 ? "is" : "are"} taken by this experiment's other nodes`,
      );
    if (facility >= 0 && held.length === 0)
      parts.push(
        `the node must be in ${ix.facilityNames[facility]} with its neighbours (a link to it cannot cross facilities)`,
      );
    return parts.join("; ");
  }
  if (!vm && !testbed.some((r) => ix.resources[r]!.alloc.includes("physical"))) {
    return "its constraints leave no virtual machine size and no resource is bare metal";
  }
  if (!candidates.length) {
    return mappingWhy
      ? `no resource that satisfies its constraints has ports for its sockets (${mappingWhy})`
      : "no resource satisfies all its constraints together";
  }
  // Resources that could host it (constraints and sockets), all held.
  const hosts = new Set<number>();
  for (const c of candidates) for (const r of c.cls.members) if (inScope(r)) hosts.add(r);
  const states = [...hosts].map((r) => freeState(usage, r));
  const prior = states.filter((s) => s === "prior").length;
  const mine = states.filter((s) => s === "mine").length;
  if (hosts.size && prior + mine === hosts.size) {
    const held = [
      prior ? `${prior} allocated to other experiments` : "",
      mine ? `${mine} taken by this experiment's other nodes` : "",
    ];
    const bound =
      facility >= 0 ? " (the node must be there with its neighbours: a link to it cannot cross facilities)" : "";
    return `all ${hosts.size} resources${where} that could host it are taken: ${held.filter(Boolean).join(", ")}${bound}`;
  }
  const all = node.constraints.map(describeConstraint).join(", ");
  if (facility >= 0) {
    return `no free resource in ${ix.facilityNames[facility]} satisfies ${all || "it"} together (the node must be there with its neighbours: a link to it cannot cross facilities)`;
  }
  return `no free resource satisfies all of ${all || "its requirements"} together`;
}

function wanted(c: Constraint): string {
  if (c.op === ">" || c.op === ">=") return "more";
  if (c.op === "<" || c.op === "<=") return "less";
  return "it";
}

/** "; the largest free has 32 GiB" for numeric bounds. */
function extreme(
  ix: InternetIndex,
  usage: Usage,
  rs: readonly number[],
  c: Constraint,
  free: boolean,
  root: number,
): string {
  if (typeof c.value !== "number" || !["<", "<=", ">", ">="].includes(c.op)) return "";
  const big = c.op === ">" || c.op === ">=";
  let best: number | undefined;
  let bestVirtual = false;
  for (const r of rs) {
    const vs = views(ix, usage, r, free, undefined, root);
    for (const [i, v] of vs.entries()) {
      const x = v(c.prop);
      if (typeof x === "number" && (best === undefined || (big ? x > best : x < best))) {
        best = x;
        // views lists the virtual view last, when the resource offers one.
        bestVirtual = i === vs.length - 1 && ix.resources[r]!.alloc.includes("virtual");
      }
    }
  }
  if (best === undefined) return `; no ${free ? "free " : ""}resource has ${c.prop} at all`;
  // A virtual node's disk.capacity is what it gets beyond its root file system: say so, or 15 GiB on a 25 GiB disk puzzles.
  const beyond =
    c.prop === "disk.capacity" && bestVirtual && root > 0
      ? ` beyond a VM's ${formatValue(c.prop, root)} root file system`
      : "";
  return `; the ${big ? "largest" : "smallest"}${free ? " free" : ""} has ${formatValue(c.prop, best)}${beyond}`;
}

/** "2 with 64 GiB and 1 with 128 GiB" */
function byValue(ix: InternetIndex, rs: readonly number[], prop: string): string {
  const counts = new Map<string, number>();
  for (const r of rs) {
    const v = ix.resources[r]!.props[prop];
    const key = v === undefined ? "" : formatValue(prop, v);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([v, n]) => (v ? `${n} with ${v}` : `${n}`)).join(" and ");
}

const ROOM_NAMES = ["cores", "memory", "disk"] as const;

/**
 * When every hypervisor that could host the node as a virtual node is open
 * but too full for its size: which hypervisor ran out of what, against what
 * its overcommit policy allows, or already has the experiment's one node (a
 * shared host). Undefined when one has room (or none is open).
 */
function hypervisorShortfall(
  ix: InternetIndex,
  usage: Usage,
  candidates: readonly Candidate[],
  inScope: (r: number) => boolean,
): string | undefined {
  const seen = new Set<number>();
  const lines: string[] = [];
  let asked: Candidate | undefined;
  for (const c of candidates) {
    if (c.mode !== "virtual") continue;
    asked ??= c;
    for (const r of c.cls.members) {
      if (seen.has(r) || !inScope(r) || usage.physical[r] !== FREE) continue;
      seen.add(r);
      const res = ix.resources[r]!;
      if (usage.full(r)) {
        lines.push(`${res.id} already has this experiment's one node (one-per-experiment)`);
        continue;
      }
      const room = vmRoom(res);
      const out = [0, 1, 2].filter((k) => usage.remaining[r * 3 + k]! < c.sizes[k]!);
      if (!out.length) return undefined;
      // Its host's agent measured less free than the node needs (a shared host busy with other work).
      const m = usage.measured.get(r);
      const measured = m ? out.filter((k) => k > 0 && (k === 1 ? m.memory : m.disk) < c.sizes[k]!) : [];
      if (m && measured.length) {
        const free = measured.map((k) => `${formatValue(VM_PROPS[k]!, k === 1 ? m.memory : m.disk)} ${ROOM_NAMES[k]}`);
        lines.push(`${res.id} on host ${m.host} has ${free.join(" and ")} free, as its agent measured`);
        continue;
      }
      // Too small even when empty: not a hypervisor that ran out.
      if (usage.vmCount[r] === 0 || c.sizes.some((v, k) => v > room[k]!)) continue;
      const parts = out.map((k) => {
        const prop = VM_PROPS[k]!;
        const ratio = k === 0 ? res.virt?.overcommit?.cores : k === 1 ? res.virt?.overcommit?.memory : undefined;
        const policy =
          ratio && ratio !== 1 ? ` (${ratio}× overcommit of ${formatValue(prop, num(res.props[prop]))})` : "";
        return `${ROOM_NAMES[k]}: ${formatValue(prop, Math.max(0, usage.remaining[r * 3 + k]!))} left of ${formatValue(prop, room[k]!)}${policy}`;
      });
      lines.push(`${res.id} ran out of ${parts.join(", ")}`);
    }
  }
  if (!asked || !lines.length) return undefined;
  const size = asked.sizes.map((v, k) => `${formatValue(VM_PROPS[k]!, v)} ${ROOM_NAMES[k]}`).join(", ");
  const more = lines.length > 8 ? `; and ${lines.length - 8} more` : "";
  return `no hypervisor has room for it as a ${asked.kind ?? "virtual node"} of ${size} (${lines.slice(0, 8).join("; ")}${more})`;
}
