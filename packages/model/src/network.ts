/**
 * The modeling API: a network of nodes joined by links, in the spirit of
 * Python MX and CDK constructs.
 *
 *   const net = new Network("hello", addressing.ipv4, routing.static);
 *   const a = net.node("a", cores.ge(4), memory.ge(gb(8)), image("bookworm"));
 *   const b = net.node("b");
 *   const l = net.connect([a, b], capacity.eq(mbps(100)), latency.eq(ms(10)));
 *   l.socket(a).addr("10.0.0.1/24");
 *   export default net;
 *
 * Every element remembers where the model made it, so the compiler can point
 * its diagnostics at the user's line. `toXIR()` emits elements in the order the
 * model made them, so the same model always gives the same XIR.
 */
import {
  type Constraint,
  DIRECTIONAL_PROPS,
  type Endpoint,
  type Experiment,
  type Ingress,
  type Parameters,
  type Route,
  type Scalar,
  XIR_VERSION,
  type Link as XLink,
  type Node as XNode,
} from "@merge/xir";
import { type Diagnostic, ModelError, type SourceLocation } from "./diagnostics.ts";
import { plain } from "./quantity.ts";
import type { Requirement } from "./requirement.ts";
import { type Origin, origin } from "./source.ts";

/** Network-wide options: `new Network("x", addressing.ipv4, routing.static)`. */
export interface NetworkOption {
  readonly parameter: keyof Parameters;
  readonly value: string;
}
export const addressing = { ipv4: { parameter: "addressing", value: "ipv4" } } as const satisfies Record<
  string,
  NetworkOption
>;
export const routing = { static: { parameter: "routing", value: "static" } } as const satisfies Record<
  string,
  NetworkOption
>;
export const emulation = {
  netem: { parameter: "emulation", value: "netem" },
  click: { parameter: "emulation", value: "click" },
} as const satisfies Record<string, NetworkOption>;
export const nameResolution = {
  experiment: { parameter: "nameResolution", value: "experiment" },
  infranet: { parameter: "nameResolution", value: "infranet" },
} as const satisfies Record<string, NetworkOption>;

/** Node options that are not constraints. */
export interface ImageOption {
  readonly image: string;
  readonly origin: Origin;
}
export interface PropertyOption {
  readonly property: string;
  readonly value: Scalar | Scalar[];
  readonly origin: Origin;
}
/** The OS image a node runs, e.g. `image("bookworm")`. */
export function image(name: string): ImageOption {
  return { image: name, origin: origin() };
}
/** Puts the node in one or more groups (`properties.group`). */
export function group(...names: string[]): PropertyOption {
  return { property: "group", value: names, origin: origin() };
}
/** A free-form property on a node or link. */
export function property(name: string, value: Scalar | Scalar[]): PropertyOption {
  return { property: name, value, origin: origin() };
}
export type NodeOption = Requirement<"node"> | ImageOption | PropertyOption;
export type LinkOption = Requirement<"link"> | PropertyOption;

/** Properties as XIR holds them: a quantity (`gb(1)`) given as a value becomes a plain number. */
function plainProperties(props: Record<string, Scalar | Scalar[]>): Record<string, Scalar | Scalar[]> {
  return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, plain(v)]));
}

/** XIR paths (`nodes[3].constraints[1]`) to where the model made them. */
export type Origins = Map<string, Origin>;

export class Network {
  readonly name: string;
  readonly parameters: Parameters = {};
  readonly nodes: Node[] = [];
  readonly links: Link[] = [];
  readonly origin: Origin;

  constructor(name: string, ...options: NetworkOption[]) {
    this.origin = origin();
    this.name = name;
    for (const o of options) (this.parameters as Record<string, string>)[o.parameter] = o.value;
  }

  node(name: string, ...options: NodeOption[]): Node {
    const n = new Node(this, name, origin());
    n.with(...options);
    this.nodes.push(n);
    return n;
  }

  /** Several nodes at once: `net.nodes("h", 4)` makes h0..h3. */
  nodesNamed(prefix: string, count: number, ...options: NodeOption[]): Node[] {
    const at = origin();
    return Array.from({ length: count }, (_, i) => {
      const n = new Node(this, `${prefix}${i}`, at);
      n.with(...options);
      this.nodes.push(n);
      return n;
    });
  }

  /** A link among two (point-to-point) or more (multipoint LAN) nodes; each gets a new socket. */
  connect(nodes: readonly Node[], ...options: LinkOption[]): Link {
    const at = origin();
    for (const n of nodes) {
      if (!(n instanceof Node)) {
        throw new ModelError([
          {
            severity: "error",
            code: "not-a-node",
            message: `connect: expected nodes made by net.node(), got ${describe(n)}`,
            location: at.location,
          },
        ]);
      }
      if (n.network !== this) {
        throw new ModelError([
          {
            severity: "error",
            code: "foreign-node",
            message: `connect: node ${n.name} belongs to network ${n.network.name}, not ${this.name}`,
            location: at.location,
          },
        ]);
      }
    }
    const link = new Link(this, at);
    for (const n of nodes) link.add(n, at);
    link.with(...options);
    this.links.push(link);
    return link;
  }

  /** Alias of `connect` that reads better for multipoint links. */
  lan(nodes: readonly Node[], ...options: LinkOption[]): Link {
    return this.connect(nodes, ...options);
  }

  /** The XIR of this network, and where the model made each element. */
  compileParts(): { xir: Experiment; origins: Origins; notes: Diagnostic[] } {
    const origins: Origins = new Map([["", this.origin]]);
    const notes: Diagnostic[] = [];
    const noted = (c: Made, path: string): Constraint => {
      if (c.note)
        notes.push({ severity: "warning", code: "bare-number", message: c.note, location: c.origin.location, path });
      return c.constraint;
    };
    const nodes: XNode[] = this.nodes.map((n, i) => {
      const path = `nodes[${i}]`;
      origins.set(path, n.origin);
      const out: XNode = {
        name: n.name,
        constraints: n.constraints.map((c, j) => {
          origins.set(`${path}.constraints[${j}]`, c.origin);
          return noted(c, `${path}.constraints[${j}]`);
        }),
        sockets: n.sockets.map((s, j) => {
          const sp = `${path}.sockets[${j}]`;
          origins.set(sp, s.origin);
          s.addrOrigins.forEach((o, k) => {
            origins.set(`${sp}.addrs[${k}]`, o);
          });
          return {
            index: j,
            addrs: [...s.addrs],
            constraints: s.constraints.map((c, k) => {
              origins.set(`${sp}.constraints[${k}]`, c.origin);
              return noted(c, `${sp}.constraints[${k}]`);
            }),
          };
        }),
        properties: plainProperties(n.properties),
      };
      if (n.image !== undefined) {
        out.image = n.image;
        if (n.imageOrigin) origins.set(`${path}.image`, n.imageOrigin);
      }
      if (n.ingresses.length) out.ingress = n.ingresses.map((g) => ({ ...g }));
      if (n.routes.length) {
        out.routes = n.routes.map((r, j) => {
          origins.set(`${path}.routes[${j}]`, r.origin);
          return { ...r.route };
        });
      }
      return out;
    });
    const used = new Set(this.links.map((l) => l.name).filter((x): x is string => x !== undefined));
    let auto = 0;
    const links: XLink[] = this.links.map((l, i) => {
      const path = `links[${i}]`;
      origins.set(path, l.origin);
      let name = l.name;
      if (name === undefined) {
        do name = `link${auto++}`;
        while (used.has(name));
      }
      return {
        name,
        endpoints: l.sockets.map((s): Endpoint => ({ node: s.node.name, socket: s.index })),
        constraints: l.constraints.map((c, j) => {
          origins.set(`${path}.constraints[${j}]`, c.origin);
          return noted(c, `${path}.constraints[${j}]`);
        }),
        properties: plainProperties(l.properties),
      };
    });
    return {
      xir: { xir: XIR_VERSION, name: this.name, parameters: { ...this.parameters }, nodes, links },
      origins,
      notes,
    };
  }

  toXIR(): Experiment {
    return this.compileParts().xir;
  }
}

interface Made {
  constraint: Constraint;
  origin: Origin;
  note?: string | undefined;
}

export class Node {
  image: string | undefined;
  imageOrigin: Origin | undefined;
  readonly constraints: Made[] = [];
  readonly sockets: Socket[] = [];
  readonly ingresses: Ingress[] = [];
  readonly routes: { route: Route; origin: Origin }[] = [];
  /** Free-form properties; `group` holds the node's groups. */
  readonly properties: Record<string, Scalar | Scalar[]> = {};

  constructor(
    readonly network: Network,
    readonly name: string,
    readonly origin: Origin,
  ) {}

  /** Adds constraints, an image or properties. */
  with(...options: NodeOption[]): this {
    for (const o of options) {
      if ("constraint" in o) {
        if (o.element !== "node") throw badOption("node", o);
        this.constraints.push({ constraint: o.constraint, origin: o.origin, note: o.note });
      } else if ("image" in o) {
        this.image = o.image;
        this.imageOrigin = o.origin;
      } else if ("property" in o) this.properties[o.property] = o.value;
      else throw badOption("node", o);
    }
    return this;
  }

  /**
   * A static route of your own: `node.route("10.9.0.0/16", "10.0.0.2", link.socket(node))`.
   * The routing reticulator adds its routes after these.
   */
  route(dest: string, gateway: string, via: Socket): this {
    const at = origin();
    if (!(via instanceof Socket) || via.node !== this) {
      throw new ModelError([
        {
          severity: "error",
          code: "not-my-socket",
          message: `route on ${this.name}: "via" must be one of ${this.name}'s sockets (link.socket(${this.name}))`,
          location: at.location,
        },
      ]);
    }
    this.routes.push({ route: { dest, gateway, socket: via.index }, origin: at });
    return this;
  }

  /** Exposes a port of this node outside the experiment. */
  ingress(protocol: Ingress["protocol"], port: number): this {
    this.ingresses.push({ protocol, port });
    return this;
  }

  /** The node's socket on a link. */
  on(link: Link): Socket {
    return link.socket(this);
  }
}

export class Link {
  /** Unique within the experiment; the compiler names unnamed links `link0`, `link1`, ... */
  name: string | undefined;
  readonly sockets: Socket[] = [];
  readonly constraints: Made[] = [];
  readonly properties: Record<string, Scalar | Scalar[]> = {};

  constructor(
    readonly network: Network,
    readonly origin: Origin,
  ) {}

  add(node: Node, at: Origin): Socket {
    const s = new Socket(node, node.sockets.length, this, at);
    node.sockets.push(s);
    this.sockets.push(s);
    return s;
  }

  with(...options: LinkOption[]): this {
    for (const o of options) {
      if ("constraint" in o) {
        if (o.element !== "link") throw badOption("link", o);
        this.constraints.push({ constraint: o.constraint, origin: o.origin, note: o.note });
      } else if ("property" in o) this.properties[o.property] = o.value;
      else throw badOption("link", o);
    }
    return this;
  }

  named(name: string): this {
    this.name = name;
    return this;
  }

  /** The socket by which `node` attaches to this link (`link.socket(a).addr("10.0.0.1/24")`). */
  socket(node: Node): Socket {
    const s = this.sockets.find((x) => x.node === node);
    if (!s) {
      const at = origin();
      throw new ModelError([
        {
          severity: "error",
          code: "not-on-link",
          message: `node ${node?.name ?? String(node)} is not an endpoint of this link (endpoints: ${this.sockets.map((x) => x.node.name).join(", ")})`,
          location: at.location,
        },
      ]);
    }
    return s;
  }

  /** Alias of `socket`. */
  at(node: Node): Socket {
    return this.socket(node);
  }

  /**
   * One direction of this link, the one that delivers to `node`:
   * `link.toward(b, latency.eq(ms(30)), capacity.le(mbps(2)))`. Takes capacity,
   * latency and loss requirements and records them as `rx.*` constraints on
   * `node`'s socket; the other directions keep the link's own values.
   */
  toward(node: Node, ...requirements: Requirement<"link">[]): this {
    const at = origin();
    const s = this.socket(node);
    const made: Made[] = [];
    for (const r of requirements) {
      const prop = typeof r === "object" && r !== null && "constraint" in r ? r.constraint.prop : undefined;
      if (r?.element !== "link" || !(DIRECTIONAL_PROPS as readonly string[]).includes(prop ?? "")) {
        const what = prop !== undefined ? `${prop}` : describe(r);
        throw new ModelError([
          {
            severity: "error",
            code: "not-directional",
            message: `toward(${node.name}): ${what} cannot be set for one direction of a link; toward takes ${DIRECTIONAL_PROPS.join(", ")} (e.g. latency.eq(ms(30)))`,
            location: at.location,
          },
        ]);
      }
      made.push({ constraint: { ...r.constraint, prop: `rx.${prop}` }, origin: at, note: r.note });
    }
    s.constraints.push(...made);
    return this;
  }
}

export class Socket {
  readonly #addrs: string[] = [];
  readonly addrOrigins: Origin[] = [];
  readonly constraints: Made[] = [];

  constructor(
    readonly node: Node,
    readonly index: number,
    readonly link: Link,
    readonly origin: Origin,
  ) {}

  /** IPv4 addresses in CIDR form. Assigning replaces them. */
  get addrs(): readonly string[] {
    return this.#addrs;
  }
  set addrs(list: readonly string[]) {
    const at = origin();
    this.#addrs.length = 0;
    this.addrOrigins.length = 0;
    for (const a of list) {
      this.#addrs.push(a);
      this.addrOrigins.push(at);
    }
  }

  /** Adds addresses in CIDR form, e.g. `addr("10.0.0.1/24")`. */
  addr(...cidrs: string[]): this {
    const at = origin();
    for (const a of cidrs) {
      this.#addrs.push(a);
      this.addrOrigins.push(at);
    }
    return this;
  }

  /** Port constraints: `nic("e1000")`, `port.capacity.ge(gbps(10))`, `port.queues.ge(4)`. */
  with(...options: Requirement<"socket">[]): this {
    for (const o of options) {
      if (!("constraint" in o) || o.element !== "socket") throw badOption("socket", o);
      this.constraints.push({ constraint: o.constraint, origin: o.origin, note: o.note });
    }
    return this;
  }
}

function badOption(element: string, o: unknown): ModelError {
  const at = origin();
  const what =
    typeof o === "object" && o !== null && "element" in o
      ? `a ${(o as { element: string }).element} constraint`
      : describe(o);
  return new ModelError([
    {
      severity: "error",
      code: "bad-option",
      message: `a ${element} cannot take ${what}`,
      location: at.location as SourceLocation | undefined,
    },
  ]);
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "object") return `an object (${Object.keys(v).slice(0, 4).join(", ")})`;
  return `${typeof v} ${JSON.stringify(v)}`;
}
