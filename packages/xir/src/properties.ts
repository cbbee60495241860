/**
 * The properties XIR knows by name: which element they describe, their unit and
 * value type. The realization engine ignores this table (constraints match
 * generically); the compiler uses it to check models and tools use it to print
 * values in the user's terms.
 */
import { type Constraint, formatConstraintValue, type Op } from "./constraint.ts";
import { formatQuantity, type Unit } from "./units.ts";

export type Element = "node" | "socket" | "link";
export type ValueType = "number" | "string" | "boolean";

export interface PropertySpec {
  element: Element;
  type: ValueType;
  unit?: Unit;
  /** For numbers counted in whole units (cores, GPUs, queues). */
  integer?: boolean;
  /** Allowed values for string properties, when the set is closed. */
  allowed?: readonly string[];
  /** The comparisons that mean something (all when absent). */
  ops?: readonly Op[];
  /** Bounds of a number, inclusive. */
  min?: number;
  max?: number;
  doc: string;
}

export const NIC_MODELS = ["virtio", "e1000", "e1000e", "rtl8139", "i40e", "mlx5", "ixgbe", "bnxt"] as const;
export const PLATFORMS = ["x86_64", "arm64", "rpi4", "jetson"] as const;

export const PROPERTIES: Readonly<Record<string, PropertySpec>> = {
  "proc.cores": { element: "node", type: "number", integer: true, doc: "CPU cores" },
  "memory.capacity": { element: "node", type: "number", unit: "bytes", doc: "memory" },
  "disk.capacity": {
    element: "node",
    type: "number",
    unit: "bytes",
    // As in MergeTB: the image's root file system is the facility's business; this asks for more.
    doc: "extra disk beyond the root file system",
  },
  metal: { element: "node", type: "boolean", doc: "true: bare metal; false: a virtual node (VM or container)" },
  virt: {
    element: "node",
    type: "boolean",
    doc: "true: a virtual node on a hypervisor (VM or container); false: bare metal",
  },
  "virt.kind": {
    element: "node",
    type: "string",
    allowed: ["vm", "container"],
    doc: "what a virtual node is: vm (QEMU, its own kernel, emulated NICs) or container",
  },
  // Profile properties: what a virtual node is given, not what its host must have (virt.ts PROFILE_KINDS).
  "cpu.share": {
    element: "node",
    type: "number",
    ops: ["=="],
    min: 0.01,
    max: 1,
    doc: "host CPU bandwidth of a virtual node as a fraction of its cores (cgroup quota = share × cores × the period)",
  },
  "clock.dilation": {
    element: "node",
    type: "number",
    ops: ["=="],
    min: 1,
    max: 1000,
    doc: "time dilation of a VM: its clock runs this many times slower than the host's (QEMU instruction counting)",
  },
  platform: { element: "node", type: "string", doc: "hardware platform, e.g. x86_64, arm64, rpi4" },
  "gpu.model": { element: "node", type: "string", doc: "GPU model, e.g. a100" },
  "gpu.count": { element: "node", type: "number", integer: true, doc: "number of GPUs" },
  host: { element: "node", type: "string", doc: "a specific facility resource to run on" },
  "disk.count": { element: "node", type: "number", integer: true, doc: "number of disks" },
  hardware: { element: "node", type: "string", doc: "the facility's hardware class name" },
  rack: { element: "node", type: "string", doc: "the rack a resource sits in" },
  "port.model": { element: "socket", type: "string", allowed: NIC_MODELS, doc: "NIC model" },
  "port.capacity": { element: "socket", type: "number", unit: "bps", doc: "port line rate" },
  "port.queues": { element: "socket", type: "number", integer: true, doc: "NIC queues" },
  // One direction of an emulated link: what it delivers to this socket, in place of the link's value.
  "rx.capacity": {
    element: "socket",
    type: "number",
    unit: "bps",
    doc: "capacity of the link toward this socket (one direction; overrides the link's capacity)",
  },
  "rx.latency": {
    element: "socket",
    type: "number",
    unit: "ns",
    doc: "one-way latency of the link toward this socket (overrides the link's latency)",
  },
  "rx.loss": {
    element: "socket",
    type: "number",
    unit: "fraction",
    doc: "packet loss of the link toward this socket (overrides the link's loss)",
  },
  capacity: { element: "link", type: "number", unit: "bps", doc: "link capacity" },
  latency: { element: "link", type: "number", unit: "ns", doc: "one-way latency" },
  loss: { element: "link", type: "number", unit: "fraction", doc: "packet loss" },
  kind: { element: "link", type: "string", doc: "link kind, e.g. ethernet, wifi" },
  layer: { element: "link", type: "number", integer: true, doc: "network layer the link provides (1, 2 or 3)" },
  external: {
    element: "link",
    type: "boolean",
    doc: "false forbids realizing the link across facilities",
  },
};

/** `memory.capacity >= 8 GiB` */
export function describeConstraint(c: Constraint): string {
  return `${c.prop} ${c.op} ${formatValue(c.prop, c.value)}`;
}

/** A property value in the user's terms: bytes as GiB, capacity as Mbit/s, ... */
export function formatValue(prop: string, value: Constraint["value"]): string {
  const unit = PROPERTIES[prop]?.unit;
  if (unit === undefined) return formatConstraintValue(value);
  if (Array.isArray(value)) {
    return `[${value.map((v) => (typeof v === "number" ? formatQuantity(v, unit) : JSON.stringify(v))).join(", ")}]`;
  }
  return typeof value === "number" ? formatQuantity(value, unit) : JSON.stringify(value);
}
