/**
 * Node kinds: what a node is made of once realized. Bare metal is a whole
 * machine; a virtual node lives on a hypervisor as a virtual machine (`vm`:
 * its own kernel, emulated NICs) or a container (`container`: the host's
 * kernel, veth interfaces). A model chooses with `metal`, `virt` and
 * `virt.kind`; sockets may ask for a NIC model (`port.model`, `nic`), which
 * only some kinds can give. The compiler refuses a node no kind satisfies and
 * the realization engine gives each virtual node the first kind its
 * hypervisor offers that satisfies it.
 */
import { type Constraint, firstUnsatisfied, type Scalar } from "./constraint.ts";
import type { Experiment } from "./experiment.ts";
import { describeConstraint, NIC_MODELS } from "./properties.ts";

export const VIRT_KINDS = ["vm", "container"] as const;
export type VirtKind = (typeof VIRT_KINDS)[number];
export type NodeKind = "metal" | VirtKind;
/** What a hypervisor that declares no `virt` makes: containers, and VMs for nodes that need one (a NIC model). */
export const DEFAULT_VIRT_KINDS: readonly VirtKind[] = ["container", "vm"];
export const NODE_KINDS: readonly NodeKind[] = ["metal", "vm", "container"];

/**
 * NIC models each kind can give, in order of preference. A VM's NICs are what
 * QEMU emulates; a container's interfaces are veth pairs and have no model;
 * bare metal has the hardware's (never a paravirtual `virtio`).
 */
export const KIND_NIC_MODELS: Readonly<Record<NodeKind, readonly string[]>> = {
  metal: NIC_MODELS.filter((m) => m !== "virtio"),
  vm: ["virtio", "e1000", "e1000e", "rtl8139"],
  container: [],
};

const KIND_TEXT: Readonly<Record<NodeKind, string>> = {
  metal: "bare metal",
  vm: "a virtual machine",
  container: "a container",
};

/** How a node of `kind` answers the kind properties (`metal`, `virt`, `virt.kind`); undefined for the others. */
export function kindProperty(kind: NodeKind, prop: string): Scalar | undefined {
  if (prop === "metal") return kind === "metal";
  if (prop === "virt") return kind !== "metal";
  if (prop === "virt.kind") return kind === "metal" ? undefined : kind;
  return undefined;
}

export const KIND_PROPS: ReadonlySet<string> = new Set(["metal", "virt", "virt.kind"]);

/**
 * Profile properties: what a node is given rather than what its host has, so
 * the engine never matches them against resources. Each needs a kind that can
 * give it: `cpu.share` a cgroup quota (a VM's QEMU process or a container),
 * `clock.dilation` QEMU's instruction counting (a VM).
 */
export const PROFILE_KINDS: Readonly<Record<string, readonly NodeKind[]>> = {
  "cpu.share": ["vm", "container"],
  "clock.dilation": ["vm"],
};

/** The profile a node asks for (its `==` profile constraints). */
export interface NodeProfile {
  /** Host CPU bandwidth as a fraction of the node's cores: cgroup quota = share × cores × period. */
  cpuShare?: number;
  /** The guest clock runs this many times slower than the host's. */
  clockDilation?: number;
}

export function nodeProfile(constraints: readonly Constraint[]): NodeProfile {
  const p: NodeProfile = {};
  for (const c of constraints) {
    if (c.op !== "==" || typeof c.value !== "number") continue;
    if (c.prop === "cpu.share") p.cpuShare = c.value;
    if (c.prop === "clock.dilation") p.clockDilation = c.value;
  }
  return p;
}

/**
 * A node's constraints as the engine matches them: each profile constraint
 * becomes the kind constraint it implies (`clock.dilation == 10` → `virt.kind
 * == "vm"`, `cpu.share == 0.5` → `virt == true`). The same array when there is none.
 */
export function matchable(constraints: readonly Constraint[]): readonly Constraint[] {
  if (!constraints.some((c) => c.prop in PROFILE_KINDS)) return constraints;
  return constraints.map((c) => {
    const kinds = PROFILE_KINDS[c.prop];
    if (!kinds) return c;
    return kinds.length === 1
      ? { prop: "virt.kind", op: "==" as const, value: kinds[0]! }
      : { prop: "virt", op: "==" as const, value: true };
  });
}

/**
 * Why a node cannot be of `kind` (undefined when it can): the first of its
 * kind constraints the kind fails, or a socket's NIC model it cannot give.
 */
export function kindExclusion(
  kind: NodeKind,
  node: readonly Constraint[],
  sockets: readonly (readonly Constraint[])[],
): string | undefined {
  for (const c of node) {
    const kinds = PROFILE_KINDS[c.prop];
    if (kinds && !kinds.includes(kind))
      return `${describeConstraint(c)} needs ${kinds.map((k) => KIND_TEXT[k]).join(" or ")}, not ${KIND_TEXT[kind]}`;
  }
  const own = node.filter((c) => KIND_PROPS.has(c.prop));
  const bad = firstUnsatisfied((p) => kindProperty(kind, p), own);
  if (bad) return `${describeConstraint(bad)} rules out ${KIND_TEXT[kind]}`;
  const models = KIND_NIC_MODELS[kind];
  for (let i = 0; i < sockets.length; i++) {
    const asks = sockets[i]!.filter((c) => c.prop === "port.model");
    if (asks.length === 0) continue;
    if (!models.some((m) => firstUnsatisfied(() => m, asks) === undefined)) {
      const gives = models.length ? `gives ${models.join(", ")}` : "has veth interfaces, no NIC model";
      return `socket ${i} asks ${asks.map(describeConstraint).join(", ")}, but ${KIND_TEXT[kind]} ${gives}`;
    }
  }
  return undefined;
}

/** An experiment as the engine matches it: every node's constraints `matchable` (the same object when none changes). */
export function matchableExperiment(x: Experiment): Experiment {
  if (!x.nodes.some((n) => n.constraints.some((c) => c.prop in PROFILE_KINDS))) return x;
  return { ...x, nodes: x.nodes.map((n) => ({ ...n, constraints: [...matchable(n.constraints)] })) };
}

/** The kinds a node may be, and why each other kind is ruled out. */
export function possibleKinds(
  node: readonly Constraint[],
  sockets: readonly (readonly Constraint[])[],
): { kinds: NodeKind[]; excluded: { kind: NodeKind; why: string }[] } {
  const kinds: NodeKind[] = [];
  const excluded: { kind: NodeKind; why: string }[] = [];
  for (const kind of NODE_KINDS) {
    const why = kindExclusion(kind, node, sockets);
    if (why === undefined) kinds.push(kind);
    else excluded.push({ kind, why });
  }
  return { kinds, excluded };
}
