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
 * Why a node cannot be of `kind` (undefined when it can): the first of its
 * kind constraints the kind fails, or a socket's NIC model it cannot give.
 */
export function kindExclusion(
  kind: NodeKind,
  node: readonly Constraint[],
  sockets: readonly (readonly Constraint[])[],
): string | undefined {
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
