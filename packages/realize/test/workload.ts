/**
 * Generated experiments for randomized tests and benchmarks, deterministic for
 * a seed: free-form ones (any mix of constraints, which may or may not be
 * realizable) and feasible ones (derived from a set of free resources, so a
 * realization is known to exist).
 */
import { prepareInternet, seededRandom } from "@merge/realize";
import type { Constraint, Experiment, Link, Node, ResourceInternet } from "@merge/xir";

export type Random = () => number;

/** mulberry32, the engine's own (`seededRandom`). */
export const random = (seed: number): Random => seededRandom(seed);

const GiB = 1024 ** 3;
const pick = <T>(rand: Random, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const c = (prop: string, op: Constraint["op"], value: Constraint["value"]): Constraint => ({ prop, op, value });

/** Node constraint templates; the first PLAUSIBLE_NODE are met by most generated facilities. */
const NODE_CONSTRAINTS: readonly (() => Constraint[])[] = [
  () => [],
  () => [],
  () => [],
  () => [c("memory.capacity", ">=", 8 * GiB)],
  () => [c("memory.capacity", ">=", 64 * GiB)],
  () => [c("proc.cores", ">=", 16)],
  () => [c("platform", "==", "x86_64")],
  () => [c("platform", "==", "arm64")],
  () => [c("platform", "in", ["rpi4", "arm64"])],
  () => [c("metal", "==", true)],
  () => [c("metal", "==", false)],
  () => [c("metal", "==", false), c("proc.cores", "==", 2), c("memory.capacity", "==", 4 * GiB)],
  () => [c("proc.cores", "==", 3), c("memory.capacity", "==", 6 * GiB)],
  () => [c("memory.capacity", ">=", 300 * GiB)],
  () => [c("gpu.model", "==", "a100")],
  () => [c("memory.capacity", ">=", 2048 * GiB)],
];

const PLAUSIBLE_NODE = 13;

/** Link constraint templates; the first PLAUSIBLE_LINK are met by most generated facilities. */
const LINK_CONSTRAINTS: readonly (() => Constraint[])[] = [
  () => [],
  () => [],
  () => [],
  () => [c("capacity", "<=", 100e6)],
  () => [c("latency", "==", 10e6)],
  () => [c("capacity", ">=", 1e9)],
  () => [c("loss", "==", 0.01), c("latency", "<=", 50e6)],
  () => [c("external", "==", false)],
  () => [c("capacity", ">=", 40e9)],
];
const PLAUSIBLE_LINK = 8;

/**
 * Socket constraints on the direction of its link toward it (`rx.*`), for the
 * few sockets that have any. The first PLAUSIBLE_RX are met by most generated facilities.
 */
const RX_CONSTRAINTS: readonly (() => Constraint[])[] = [
  () => [c("rx.latency", "==", 30e6)],
  () => [c("rx.capacity", "<=", 50e6)],
  () => [c("rx.loss", "==", 0.05), c("rx.latency", "<=", 80e6)],
  () => [c("rx.capacity", ">=", 1e9)],
  () => [c("rx.latency", "<", 1e6)],
  () => [c("rx.capacity", ">=", 40e9)],
];
const PLAUSIBLE_RX = 4;

function sockets(n: Node, count: number): void {
  while (n.sockets.length < count) n.sockets.push({ index: n.sockets.length, addrs: [], constraints: [] });
}

function connect(
  rand: Random,
  nodes: Node[],
  opts: {
    extraLinks: number;
    lans: number;
    linkConstraints: () => Constraint[];
    /** Constraints for each socket a link binds (its direction toward the socket); none when absent. */
    socketConstraints?: () => Constraint[];
  },
): Link[] {
  const links: Link[] = [];
  const used = nodes.map(() => 0);
  const add = (ends: number[]) => {
    const endpoints = ends.map((i) => {
      const k = used[i]!++;
      sockets(nodes[i]!, k + 1);
      if (opts.socketConstraints) nodes[i]!.sockets[k]!.constraints = opts.socketConstraints();
      return { node: nodes[i]!.name, socket: k };
    });
    links.push({
      name: `l${links.length}`,
      endpoints,
      constraints: opts.linkConstraints(),
      properties: {},
    });
  };
  // A random tree keeps the experiment connected (islands are not supported).
  for (let i = 1; i < nodes.length; i++) add([i, Math.floor(rand() * i)]);
  for (let k = 0; k < opts.extraLinks && nodes.length > 2; k++) {
    const a = Math.floor(rand() * nodes.length);
    let b = Math.floor(rand() * nodes.length);
    if (b === a) b = (a + 1) % nodes.length;
    add([a, b]);
  }
  for (let k = 0; k < opts.lans && nodes.length > 3; k++) {
    const size = 3 + Math.floor(rand() * Math.min(4, nodes.length - 3));
    const set = new Set<number>();
    while (set.size < size) set.add(Math.floor(rand() * nodes.length));
    add([...set]);
  }
  return links;
}

/**
 * A mix of node and link constraints. Most experiments draw from plausible
 * templates; a quarter are wild (huge memory, GPUs, 40 Gbit/s links) and are
 * often unrealizable.
 */
export function randomExperiment(rand: Random, name: string, size: number): Experiment {
  const wild = rand() < 0.25;
  const nodeTemplates = wild ? NODE_CONSTRAINTS : NODE_CONSTRAINTS.slice(0, PLAUSIBLE_NODE);
  const linkTemplates = wild ? LINK_CONSTRAINTS : LINK_CONSTRAINTS.slice(0, PLAUSIBLE_LINK);
  const rxTemplates = wild ? RX_CONSTRAINTS : RX_CONSTRAINTS.slice(0, PLAUSIBLE_RX);
  const nodes: Node[] = Array.from({ length: size }, (_, i) => ({
    name: `n${i}`,
    constraints: pick(rand, nodeTemplates)(),
    sockets: [],
    properties: {},
  }));
  const links = connect(rand, nodes, {
    extraLinks: Math.floor(rand() * size * 0.5),
    lans: rand() < 0.5 ? 1 : 0,
    linkConstraints: () => pick(rand, linkTemplates)(),
    socketConstraints: () => (rand() < 0.15 ? pick(rand, rxTemplates)() : []),
  });
  return { xir: "1.0", name, parameters: {}, nodes, links };
}

/**
 * An experiment known to be realizable: each node is derived from one of `size`
 * distinct free bare-metal-capable resources (its memory at least 90% of the
 * resource's, its platform), links unconstrained or emulated without a rate.
 */
export function feasibleExperiment(
  rand: Random,
  internet: ResourceInternet,
  name: string,
  size: number,
  taken: ReadonlySet<string> = new Set(),
): Experiment {
  const pool: { props: Record<string, unknown> }[] = [];
  for (const f of internet.facilities) {
    for (const r of f.resources) {
      if (r.kind === "node" && r.alloc.includes("physical") && !taken.has(`${f.name}/${r.id}`)) pool.push(r);
    }
  }
  if (pool.length < size) throw new Error(`feasibleExperiment: ${size} nodes wanted, ${pool.length} free`);
  // Partial Fisher-Yates: the first `size` entries become a uniform sample.
  for (let i = 0; i < size; i++) {
    const j = i + Math.floor(rand() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  const nodes: Node[] = pool.slice(0, size).map((r, i) => {
    const cs: Constraint[] = [];
    const mem = r.props["memory.capacity"];
    if (typeof mem === "number" && rand() < 0.7) cs.push(c("memory.capacity", ">=", Math.floor(mem * 0.9)));
    const platform = r.props.platform;
    if (typeof platform === "string" && rand() < 0.5) cs.push(c("platform", "==", platform));
    return { name: `n${i}`, constraints: cs, sockets: [], properties: {} };
  });
  const links = connect(rand, nodes, {
    extraLinks: Math.floor(size * 0.3),
    lans: Math.max(1, Math.floor(size / 50)),
    linkConstraints: () => (rand() < 0.1 ? [c("latency", "==", 50e6)] : []),
  });
  return { xir: "1.0", name, parameters: {}, nodes, links };
}

/**
 * A sparse random topology: a random tree (connected) plus random extra
 * links up to `linksPerNode` links per node, every link asking
 * `capacity >= capacity`; nodes unconstrained.
 */
export function sparseExperiment(
  rand: Random,
  name: string,
  size: number,
  options: { linksPerNode?: number; capacity?: number } = {},
): Experiment {
  const nodes: Node[] = Array.from({ length: size }, (_, i) => ({
    name: `n${i}`,
    constraints: [],
    sockets: [],
    properties: {},
  }));
  const capacity = options.capacity ?? 100e6;
  const links = connect(rand, nodes, {
    extraLinks: Math.max(0, Math.round(size * (options.linksPerNode ?? 1.5)) - (size - 1)),
    lans: 0,
    linkConstraints: () => [c("capacity", ">=", capacity)],
  });
  return { xir: "1.0", name, parameters: {}, nodes, links };
}

export interface PlantedOptions {
  /** bits/s every link asks for (`capacity >= …`); default 100 Mbit/s. */
  capacity?: number;
  /** Links per node; default 1.5. */
  linksPerNode?: number;
  /** Share of each leaf's trunk capacity the planted mapping may use; default 0.8. */
  trunkUse?: number;
  /** Node constraints derived from the planted host (memory, platform), as `feasibleExperiment` does; default false. */
  constrain?: boolean;
}

/**
 * An experiment realizable by construction: each node is planted on one of
 * `size` distinct free bare-metal resources, and links are drawn (a random
 * tree, then random extra links) only while the planted mapping keeps every
 * leaf's trunks within `trunkUse` of their capacity and every host's ports
 * within their line rate. The planted mapping meets every constraint, so a
 * refusal is the engine's failure, not the instance's.
 */
export function plantedExperiment(
  rand: Random,
  internet: ResourceInternet,
  name: string,
  size: number,
  options: PlantedOptions = {},
): Experiment {
  const capacity = options.capacity ?? 100e6;
  const ix = prepareInternet(internet);
  const hosts: number[] = [];
  for (const cls of ix.classes) {
    if (!cls.alloc.includes("physical")) continue;
    for (const r of cls.members) if (ix.resLeaf[r]! >= 0) hosts.push(r);
  }
  hosts.sort((a, b) => a - b);
  if (hosts.length < size) throw new Error(`plantedExperiment: ${size} nodes wanted, ${hosts.length} hosts`);
  for (let i = 0; i < size; i++) {
    const j = i + Math.floor(rand() * (hosts.length - i));
    [hosts[i], hosts[j]] = [hosts[j]!, hosts[i]!];
  }
  const host = hosts.slice(0, size);
  const leaf = host.map((r) => ix.resLeaf[r]!);
  // Each leaf's trunk budget: its cables to other switches, times trunkUse.
  const budget = new Map<number, number>();
  for (const l of new Set(leaf)) {
    let cap = 0;
    for (let p = ix.resPortStart[l]!; p < ix.resPortStart[l + 1]!; p++) {
      const e = ix.portEdge[p]!;
      if (e >= 0 && ix.resources[ix.portRes[ix.portPeer[p]!]!]!.kind === "switch") cap += ix.edgeCap[e]!;
    }
    budget.set(l, cap * (options.trunkUse ?? 0.8));
  }
  const load = new Map<number, number>();
  const portRoom = host.map((r) =>
    ix.resources[r]!.ports.filter((p) => p.role === "xpnet").reduce((s, p) => s + p.capacity, 0),
  );
  const nodes: Node[] = host.map((r, i) => {
    const cs: Constraint[] = [];
    if (options.constrain) {
      const props = ix.resources[r]!.props;
      const mem = props["memory.capacity"];
      if (typeof mem === "number" && rand() < 0.7) cs.push(c("memory.capacity", ">=", Math.floor(mem * 0.9)));
      if (typeof props.platform === "string" && rand() < 0.5) cs.push(c("platform", "==", props.platform));
    }
    return { name: `n${i}`, constraints: cs, sockets: [], properties: {} };
  });
  const links: Link[] = [];
  const fits = (a: number, b: number): boolean => {
    if (portRoom[a]! < capacity || portRoom[b]! < capacity) return false;
    if (leaf[a] === leaf[b]) return true;
    return (
      (load.get(leaf[a]!) ?? 0) + capacity <= budget.get(leaf[a]!)! &&
      (load.get(leaf[b]!) ?? 0) + capacity <= budget.get(leaf[b]!)!
    );
  };
  const add = (a: number, b: number) => {
    portRoom[a]! -= capacity;
    portRoom[b]! -= capacity;
    if (leaf[a] !== leaf[b]) {
      load.set(leaf[a]!, (load.get(leaf[a]!) ?? 0) + capacity);
      load.set(leaf[b]!, (load.get(leaf[b]!) ?? 0) + capacity);
    }
    const ends = [a, b].map((i) => {
      const n = nodes[i]!;
      const k = n.sockets.length;
      sockets(n, k + 1);
      return { node: n.name, socket: k };
    });
    links.push({
      name: `l${links.length}`,
      endpoints: ends,
      constraints: [c("capacity", ">=", capacity)],
      properties: {},
    });
  };
  // A random tree: each node joins an earlier one the planted mapping can afford (its own leaf when none).
  for (let i = 1; i < size; i++) {
    let joined = false;
    for (let t = 0; t < 8 && !joined; t++) {
      const j = Math.floor(rand() * i);
      if (fits(i, j)) {
        add(i, j);
        joined = true;
      }
    }
    for (let j = i - 1; j >= 0 && !joined; j--) {
      if (leaf[j] === leaf[i] && fits(i, j)) {
        add(i, j);
        joined = true;
      }
    }
    for (let j = i - 1; j >= 0 && !joined; j--) {
      if (fits(i, j)) {
        add(i, j);
        joined = true;
      }
    }
  }
  const want = Math.round(size * (options.linksPerNode ?? 1.5));
  for (let t = 0; links.length < want && t < want * 20; t++) {
    const a = Math.floor(rand() * size);
    const b = Math.floor(rand() * size);
    if (a !== b && fits(a, b)) add(a, b);
  }
  return { xir: "1.0", name, parameters: {}, nodes, links };
}
