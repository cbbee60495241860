/**
 * The experiment half of XIR: a network of nodes whose sockets bind to links.
 *
 * Structural references are by name: an endpoint names a node and the index of
 * one of its sockets. Quantities are numbers in base units (see units.ts), and
 * constraints use the generic `{prop, op, value}` form (see constraint.ts).
 */
import type { Constraint, Scalar } from "./constraint.ts";

export const XIR_VERSION = "1.0" as const;

export interface Experiment {
  /** XIR format version. */
  xir: typeof XIR_VERSION;
  /** The experiment's name (from the model). */
  name: string;
  parameters: Parameters;
  nodes: Node[];
  links: Link[];
}

export interface Parameters {
  /** Reticulation: assign IPv4 addresses to sockets that have none. */
  addressing?: "ipv4";
  /** Reticulation: compute static routes between all nodes. */
  routing?: "static";
  /** Which network emulation backend emulated links use. */
  emulation?: "netem" | "click";
  /**
   * Whether node names resolve to experiment-network addresses (default) or to
   * infranet addresses.
   */
  nameResolution?: "experiment" | "infranet";
}

/**
 * What a node's name may be: it becomes the node's hostname and names its
 * network namespace, so letters, digits, '-', '_' and '.', starting with a
 * letter or digit, at most 63 characters. The compiler refuses others
 * (`bad-node-name`) rather than a facility at materialization.
 */
export const NODE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export interface Node {
  /** A hostname: see NODE_NAME_RE. */
  name: string;
  /** OS image name, e.g. `bookworm`, `2004`. Absent: the facility default. */
  image?: string;
  constraints: Constraint[];
  sockets: Socket[];
  /** Free-form properties, e.g. `{ group: ["servers"] }`. */
  properties: Record<string, Scalar | Scalar[]>;
  /** Ports the experiment exposes to the outside (`node.ingress`). */
  ingress?: Ingress[];
  /** Static routes, filled in by the routing reticulator or by the user. */
  routes?: Route[];
}

export interface Socket {
  /** Position of the socket on its node; stable, 0-based. */
  index: number;
  /** IPv4 addresses in CIDR form, e.g. `10.0.0.1/24`. */
  addrs: string[];
  /** Port constraints: `port.model`, `port.capacity`, `port.queues`. */
  constraints: Constraint[];
}

export interface Ingress {
  protocol: "tcp" | "udp" | "http" | "https";
  port: number;
}

export interface Route {
  /** Destination prefix in CIDR form. */
  dest: string;
  /** Next-hop address (on a link the node's socket is bound to). */
  gateway: string;
  /** Socket index on the node the route leaves through. */
  socket: number;
}

export interface Link {
  /** Unique within the experiment; the compiler names links it was not told about. */
  name: string;
  endpoints: Endpoint[];
  /** Link constraints: `capacity`, `latency`, `loss`, `kind`, `layer`, `external`. */
  constraints: Constraint[];
  properties: Record<string, Scalar | Scalar[]>;
}

export interface Endpoint {
  node: string;
  socket: number;
}

/**
 * A link joining `ends` ([node, socket] each) with `constraints` and no
 * properties: how tests, samples and generators write one.
 */
export function linkOf(name: string, ends: [node: string, socket: number][], constraints: Constraint[] = []): Link {
  return { name, endpoints: ends.map(([node, socket]) => ({ node, socket })), constraints, properties: {} };
}

/** The link properties a socket can set for the direction toward it, as `rx.<prop>`. */
export const DIRECTIONAL_PROPS = ["capacity", "latency", "loss"] as const;
export type DirectionalProp = (typeof DIRECTIONAL_PROPS)[number];

/**
 * A socket's constraints on the direction of its link toward it (`rx.latency`
 * and so on), as link constraints (`latency`): the direction gets these in
 * place of the link's own constraints on the same property.
 */
export function towardConstraints(socket: Pick<Socket, "constraints">): Constraint[] {
  const out: Constraint[] = [];
  for (const c of socket.constraints) {
    if (!c.prop.startsWith("rx.")) continue;
    const prop = c.prop.slice(3);
    if ((DIRECTIONAL_PROPS as readonly string[]).includes(prop)) out.push({ ...c, prop });
  }
  return out;
}

/**
 * Whether a link needs an emulator on its path: any latency or loss constraint,
 * or a capacity below the line rate of the ports it would use, on the link or
 * on one direction of it (`toward`: the link's endpoint sockets' constraints,
 * see `towardConstraints`).
 */
export function needsEmulation(
  link: Pick<Link, "constraints">,
  lineRate: number,
  toward: readonly (readonly Constraint[])[] = [],
): boolean {
  return [link.constraints, ...toward].some((cs) =>
    cs.some(
      (c) =>
        c.prop === "latency" ||
        c.prop === "loss" ||
        (c.prop === "capacity" &&
          typeof c.value === "number" &&
          ["==", "<", "<="].includes(c.op) &&
          c.value < lineRate),
    ),
  );
}
