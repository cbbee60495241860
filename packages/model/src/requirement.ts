/**
 * Typed constraint builders. Each property knows which element it constrains
 * (node, socket or link) and the unit of its value, so `memory.ge(ms(10))`,
 * `memory.ge(8)` and `net.node("a", latency.eq(ms(5)))` are type errors.
 */
import type {
  BitsPerSecond,
  Bytes,
  Constraint,
  Element,
  Fraction,
  Nanoseconds,
  NIC_MODELS,
  Op,
  PLATFORMS,
  Quantity,
  Scalar,
  Unit,
  VIRT_KINDS,
} from "@merge/xir";
import { ModelError } from "./diagnostics.ts";
import { checkUnit, plain } from "./quantity.ts";
import { type Origin, origin } from "./source.ts";

/** One constraint on an element of kind `E`, with where the model made it. */
export interface Requirement<E extends Element> {
  readonly element: E;
  readonly constraint: Constraint;
  readonly origin: Origin;
  /** A warning about the value (a bare number taken in the property's base unit). */
  readonly note?: string;
}

export class Property<E extends Element, V extends Scalar> {
  constructor(
    readonly prop: string,
    readonly element: E,
  ) {}
  eq(value: V): Requirement<E> {
    return this.#make("==", value);
  }
  ne(value: V): Requirement<E> {
    return this.#make("!=", value);
  }
  lt(value: V): Requirement<E> {
    return this.#make("<", value);
  }
  le(value: V): Requirement<E> {
    return this.#make("<=", value);
  }
  gt(value: V): Requirement<E> {
    return this.#make(">", value);
  }
  ge(value: V): Requirement<E> {
    return this.#make(">=", value);
  }
  /** One of several values. */
  in(values: readonly V[]): Requirement<E> {
    return this.#make("in", [...values]);
  }
  #make(op: Op, value: Scalar | Scalar[]): Requirement<E> {
    return requirement(this.element, this.prop, op, value, origin());
  }
}

export type Platform = (typeof PLATFORMS)[number];
export type NicModel = (typeof NIC_MODELS)[number];

/**
 * A whole-number property without a unit (cores, GPUs, queues). A quantity with
 * a unit (`gb(8)`) is rejected at compile time.
 */
export class Count<E extends Element> {
  readonly #p: Property<E, number>;
  constructor(prop: string, element: E) {
    this.#p = new Property<E, number>(prop, element);
  }
  eq<T extends number>(value: T & Unitless<T>): Requirement<E> {
    return this.#p.eq(value);
  }
  ne<T extends number>(value: T & Unitless<T>): Requirement<E> {
    return this.#p.ne(value);
  }
  lt<T extends number>(value: T & Unitless<T>): Requirement<E> {
    return this.#p.lt(value);
  }
  le<T extends number>(value: T & Unitless<T>): Requirement<E> {
    return this.#p.le(value);
  }
  gt<T extends number>(value: T & Unitless<T>): Requirement<E> {
    return this.#p.gt(value);
  }
  ge<T extends number>(value: T & Unitless<T>): Requirement<E> {
    return this.#p.ge(value);
  }
  in<T extends number>(values: readonly (T & Unitless<T>)[]): Requirement<E> {
    return this.#p.in(values);
  }
}
type Unitless<T> = T extends Quantity<Unit> ? never : unknown;

// Node
export const cores = new Count("proc.cores", "node");
export const memory = new Property<"node", Bytes>("memory.capacity", "node");
/**
 * `disk.ge(gb(40))`: extra disk beyond the root file system the image brings,
 * as in MergeTB (not the size of the root disk).
 */
export const disk = new Property<"node", Bytes>("disk.capacity", "node");
export const platform = new Property<"node", Platform>("platform", "node");
export const host = new Property<"node", string>("host", "node");
export const gpu = {
  model: new Property<"node", string>("gpu.model", "node"),
  count: new Count("gpu.count", "node"),
};
/** `metal(true)`: bare metal; `metal(false)` (or `virtual()`): a virtual machine. */
export function metal(yes = true): Requirement<"node"> {
  return { element: "node", constraint: { prop: "metal", op: "==", value: yes }, origin: origin() };
}
export function virtual(): Requirement<"node"> {
  return { element: "node", constraint: { prop: "metal", op: "==", value: false }, origin: origin() };
}

export type VirtKind = (typeof VIRT_KINDS)[number];
/**
 * `virt(true)`: a virtual node on a hypervisor (`virt(false)` is bare metal, as
 * `metal(true)`); `virt.kind.eq("vm")` or `virt.kind.eq("container")` says which
 * kind (Python: `virt == True`, `virt.kind == "vm"`). A node that does not say
 * gets the first kind its hypervisor offers that satisfies it (a socket asking
 * `nic("virtio")` needs a VM).
 */
export const virt: ((yes?: boolean) => Requirement<"node">) & { readonly kind: Property<"node", VirtKind> } =
  Object.assign(
    (yes = true): Requirement<"node"> => ({
      element: "node",
      constraint: { prop: "virt", op: "==", value: yes },
      origin: origin(),
    }),
    { kind: new Property<"node", VirtKind>("virt.kind", "node") },
  );

/**
 * A value a node is given rather than a property its host must have: set with
 * `eq` only (the compiler refuses other comparisons made with `custom`).
 */
export class Setting<E extends Element> {
  constructor(
    readonly prop: string,
    readonly element: E,
  ) {}
  eq<T extends number>(value: T & Unitless<T>): Requirement<E> {
    return requirement(this.element, this.prop, "==", value, origin());
  }
}

/**
 * `cpu.share.eq(0.5)`: a virtual node gets this fraction of its cores' host
 * CPU bandwidth (0.01 to 1), as a cgroup CPU quota of share × cores × the
 * 100 ms period (Python: `cpu.share == 0.5`).
 */
export const cpu = { share: new Setting("cpu.share", "node") };
/**
 * `clock.dilation.eq(10)`: a VM whose clock runs 10 times slower than the
 * host's (1 to 1000; QEMU's instruction counting and a CPU quota a governor
 * keeps the guest's clock on target with). Python: `clock.dilation == 10`.
 */
export const clock = { dilation: new Setting("clock.dilation", "node") };

// Socket (the node's port on a link)
export const port = {
  model: new Property<"socket", NicModel>("port.model", "socket"),
  capacity: new Property<"socket", BitsPerSecond>("port.capacity", "socket"),
  queues: new Count("port.queues", "socket"),
};
/**
 * One direction of the socket's link: what the link delivers TO this socket's
 * node, in place of the link's own value for that direction only
 * (`link.socket(b).with(rx.latency.eq(ms(30)))`; `link.toward(b, ...)` says the same).
 */
export const rx = {
  capacity: new Property<"socket", BitsPerSecond>("rx.capacity", "socket"),
  latency: new Property<"socket", Nanoseconds>("rx.latency", "socket"),
  loss: new Property<"socket", Fraction>("rx.loss", "socket"),
};
/** The NIC model, e.g. `nic("e1000")`; shorthand for `port.model.eq(...)`. */
export function nic(model: NicModel): Requirement<"socket"> {
  return { element: "socket", constraint: { prop: "port.model", op: "==", value: model }, origin: origin() };
}

// Link
export const capacity = new Property<"link", BitsPerSecond>("capacity", "link");
export const latency = new Property<"link", Nanoseconds>("latency", "link");
export const loss = new Property<"link", Fraction>("loss", "link");
export const kind = new Property<"link", string>("kind", "link");
export const layer = new Property<"link", 1 | 2 | 3>("layer", "link");
/** `external(false)`: the link must not be realized across facilities. */
export function external(allowed: boolean): Requirement<"link"> {
  return { element: "link", constraint: { prop: "external", op: "==", value: allowed }, origin: origin() };
}

/**
 * A constraint on a property this library has no builder for (facility-specific
 * properties). The compiler warns when it does not know the property.
 */
export function custom<E extends Element>(element: E, prop: string, op: Op, value: Scalar | Scalar[]): Requirement<E> {
  return requirement(element, prop, op, value, origin());
}

/** A constraint with its value checked against the property's unit and unwrapped to a plain number. */
function requirement<E extends Element>(
  element: E,
  prop: string,
  op: Op,
  value: Scalar | Scalar[],
  at: Origin,
): Requirement<E> {
  const check = checkUnit(prop, op, value);
  if (check && "error" in check) {
    throw new ModelError([{ severity: "error", code: "unit-mismatch", message: check.error, location: at.location }]);
  }
  const made = { element, constraint: { prop, op, value: plain(value) }, origin: at };
  return check ? { ...made, note: check.warning } : made;
}
