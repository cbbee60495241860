/**
 * The realization engine: experiment + resource internet + allocation table →
 * a realization and the allocation records that reserve it, or the problems
 * that stop it. Pure and deterministic: the same inputs give the same output.
 *
 * Order of work: check the experiment's structure; work out what each link
 * needs (`needs.ts`); place nodes (`nodes.ts`, over `placement.ts`); route
 * every link through the switch mesh (`routing.ts`), tagging each virtual
 * network (`tagging.ts`); give each facility touched an infranet and an
 * infrapod server (`infranets.ts`). Each step gets the attempt (`context.ts`)
 * explicitly.
 */
import {
  canonicalHash,
  type Experiment,
  type Infranet,
  type InterfaceEmbedding,
  type LinkEmbedding,
  matchableExperiment,
  type NodeEmbedding,
  type Realization,
  type ResourceInternet,
} from "@merge/xir";
import type { AllocationRecord, AllocationTable } from "./allocation.ts";
import { type Attempt, type Demand, ProblemLog, type RealizeOptions } from "./context.ts";
import type { Problem } from "./diagnosis.ts";
import { isRx, towardBySocket } from "./direction.ts";
import { infranets } from "./infranets.ts";
import { type InternetIndex, prepareInternet } from "./internet.ts";
import { linkNeeds } from "./needs.ts";
import { experimentGraph, nodeCandidates, type PlacementPlan, placeNodes } from "./nodes.ts";
import { Placer, type VmDefaults, vmNic } from "./placement.ts";
import { Router } from "./routing.ts";
import { experimentLeafGraph, LeafModel, leafSupply, partition } from "./search.ts";
import { Tagger } from "./tagging.ts";
import { Usage } from "./usage.ts";

export type { MeasuredRoom, RealizeOptions } from "./context.ts";

export type RealizeResult =
  | { ok: true; realization: Realization; records: AllocationRecord[] }
  | {
      ok: false;
      /** What stops the realization, in the user's terms; with `closest`, every constraint it leaves unmet. */
      problems: Problem[];
      /**
       * Best effort only: the closest mapping found (over-committed links,
       * nodes without a resource left out). Never reserved, never acceptable.
       */
      closest?: Realization;
    };

const GiB = 1024 ** 3;
export const VM_DEFAULTS: VmDefaults = { cores: 1, memory: 1 * GiB, disk: 10 * GiB };

export function realize(
  asked: Experiment,
  internet: ResourceInternet | InternetIndex,
  table?: AllocationTable | Iterable<AllocationRecord>,
  given: RealizeOptions = {},
): RealizeResult {
  // Profile settings (cpu.share, clock.dilation) are matched as the kinds they need; the hash is the model's.
  const experiment = matchableExperiment(asked);
  const options =
    experiment === asked ? given : { ...given, experimentHash: given.experimentHash ?? canonicalHash(asked) };
  const ix = "resFacility" in internet ? internet : prepareInternet(internet);
  const id = options.id ?? `local.${experiment.name}.offline`;
  const problems = structuralProblems(experiment);
  if (problems.length) return { ok: false, problems };
  const records =
    table === undefined
      ? []
      : "records" in table && typeof table.records === "function"
        ? table.records()
        : (table as Iterable<AllocationRecord>);
  const log = new ProblemLog(options.maxProblems ?? 20);
  const { linkNeed, linkDirs } = linkNeeds(
    experiment,
    towardBySocket(experiment),
    options.defaultLinkCapacity ?? 0,
    log,
  );
  if (log.any) return { ok: false, problems: log.list };
  const demand: Demand = {
    x: experiment,
    ix,
    id,
    options,
    vmDefaults: { ...VM_DEFAULTS, ...options.vmDefaults },
    linkNeed,
    linkDirs,
    socketPos: socketPositions(experiment),
  };
  const held = [...records];
  const fresh = (bestEffort = false): Attempt => ({
    demand,
    usage: new Usage(ix, held, options.measured),
    placed: new Map(),
    records: [],
    problems: new ProblemLog(options.maxProblems ?? 20),
    failedLinks: [],
    bestEffort,
  });

  // 1. Greedy, VMs first where a node does not ask for bare metal.
  const first = fresh();
  const r1 = run(first, {});
  if (r1.ok) return r1;
  const tried: { plan: PlacementPlan; score: number }[] = [{ plan: {}, score: score(first) }];
  // 2. A node found no place: bare metal first, as engines before MergeTB's default did.
  if (first.placed.size < experiment.nodes.length) {
    const a = fresh();
    const r = run(a, { metalFirst: true });
    if (r.ok) return r;
    tried.push({ plan: { metalFirst: true }, score: score(a) });
  }
  // 3. Every node placed but links found no capacity: place by leaf, bandwidth-aware.
  if (first.placed.size === experiment.nodes.length && first.failedLinks.length) {
    const found = searchLeaves(first, fresh, options.seed ?? 1, tried);
    if (found) return found;
  }
  if (!options.bestEffort) return { ok: false, problems: r1.problems };
  // The closest: the plan that left the fewest constraints unmet, run again to the end.
  const best = tried.reduce((p, q) => (q.score < p.score ? q : p));
  const closest = fresh(true);
  const rc = run(closest, best.plan);
  if (rc.ok) return rc;
  return {
    ok: false,
    problems: closest.problems.refusal(experiment.name),
    closest: assemble(closest, rc.links ?? [], rc.nets ?? []),
  };
}

/** Unmet constraints of an attempt: unplaced nodes and links without a route. */
function score(a: Attempt): number {
  return (a.demand.x.nodes.length - a.placed.size) * 2 + a.failedLinks.length;
}

const SEARCH_ROUNDS = 8;
const PARTITION_STARTS = 6;

/**
 * Bandwidth-aware placement (`search.ts`): a leaf per node from the better of
 * the greedy placement and a grown k-way partition, each refined against the
 * trunks' budgets; then rounds guided by the links that still fail (their
 * leaves' budgets tightened by what they asked, the partition refined again
 * with the next seed) until every link routes or the rounds run out.
 */
function searchLeaves(
  greedy: Attempt,
  fresh: () => Attempt,
  seed: number,
  tried: { plan: PlacementPlan; score: number }[],
): RealizeResult | undefined {
  const d = greedy.demand;
  const { ix, x } = d;
  const probe = fresh();
  const g = experimentGraph(x);
  const supply = leafSupply(d, probe.usage);
  if (supply.leaves < 2) return undefined;
  const graph = experimentLeafGraph(d, nodeCandidates(probe, new Placer(ix, probe.usage, d.vmDefaults), g, false));
  const fromGreedy = new Int32Array(x.nodes.length).fill(-1);
  x.nodes.forEach((n, i) => {
    const p = greedy.placed.get(n.name);
    const leaf = p ? ix.resLeaf[p.resource]! : -1;
    if (leaf >= 0) fromGreedy[i] = ix.leafRank[leaf]!;
  });
  const refined = new LeafModel(supply, graph);
  refined.assign(fromGreedy);
  refined.refine(seed);
  // Multilevel partitions from several seeds (each a few milliseconds at 1,000 nodes); the cheapest wins.
  let model = refined;
  for (let k = 0; k < PARTITION_STARTS && model.overflowing() > 0; k++) {
    const grown = partition(supply, graph, seed + 1 + k);
    if (grown.cost() < model.cost()) model = grown;
  }
  for (let round = 0; round < SEARCH_ROUNDS; round++) {
    const plan: PlacementPlan = { target: model.leaf.slice(), key: model.held.slice() };
    const attempt = fresh();
    const r = run(attempt, plan);
    if (r.ok) return r;
    tried.push({ plan, score: score(attempt) });
    if (!attempt.failedLinks.length) break;
    if (model.overflowing() > 0) {
      // The model itself still overfills trunks: more multilevel starts, not tighter budgets.
      for (let k = 0; k < PARTITION_STARTS; k++) {
        const grown = partition(supply, graph, seed + 1 + PARTITION_STARTS * (round + 1) + k);
        if (grown.cost() < model.cost()) model = grown;
      }
    }
    model.tighten(attempt.failedLinks);
    model.refine(seed + 2 + round);
  }
  return undefined;
}

/** An attempt's result; a refusal keeps what a best-effort attempt built. */
type Run =
  | { ok: true; realization: Realization; records: AllocationRecord[] }
  | { ok: false; problems: Problem[]; links?: LinkEmbedding[]; nets?: Infranet[] };

/**
 * One attempt from start to end: nodes, links, infranets. A best-effort
 * attempt goes on past problems (links of unplaced nodes are left out) so
 * that what it built can be shown.
 */
function run(a: Attempt, plan: PlacementPlan): Run {
  const name = a.demand.x.name;
  placeNodes(a, plan);
  if (a.problems.any && !a.bestEffort) return { ok: false, problems: a.problems.refusal(name) };
  const tagger = new Tagger(a);
  const router = new Router(a, tagger);
  const links: LinkEmbedding[] = [];
  for (const l of a.demand.x.links) {
    const missing = l.endpoints.find((e) => !a.placed.has(e.node));
    if (missing) {
      a.failedLinks.push(l.name);
      a.problems.add({
        element: "link",
        name: l.name,
        message: `not realized: its endpoint ${missing.node} has no resource`,
      });
      continue;
    }
    const e = router.embed(l);
    if (e) links.push(e);
  }
  const nets = infranets(a, tagger);
  if (a.problems.any) return { ok: false, problems: a.problems.refusal(name), links, nets };
  return { ok: true, realization: assemble(a, links, nets), records: a.records };
}

/** `node\u0000socket` → position of the socket in its node's sorted sockets. */
function socketPositions(x: Experiment): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of x.nodes) {
    [...n.sockets]
      .sort((p, q) => p.index - q.index)
      .forEach((sk, k) => {
        out.set(`${n.name}\u0000${sk.index}`, k);
      });
  }
  return out;
}

/**
 * Names unique, endpoints pointing at real sockets, a socket on one link at
 * most, and a direction set apart (`rx.*`) naming one endpoint: its node has
 * no other socket on the link.
 */
export function structuralProblems(x: Experiment): Problem[] {
  const out: Problem[] = [];
  const sockets = new Map<string, Set<number>>();
  const rx = new Set<string>();
  for (const n of x.nodes) {
    if (sockets.has(n.name)) out.push({ element: "node", name: n.name, message: "the name is used by two nodes" });
    sockets.set(n.name, new Set(n.sockets.map((s) => s.index)));
    for (const s of n.sockets) if (s.constraints.some(isRx)) rx.add(`${n.name}\u0000${s.index}`);
  }
  const bound = new Map<string, string>();
  const links = new Set<string>();
  for (const l of x.links) {
    if (links.has(l.name)) out.push({ element: "link", name: l.name, message: "the name is used by two links" });
    links.add(l.name);
    if (l.endpoints.length < 2)
      out.push({ element: "link", name: l.name, message: "a link needs at least two endpoints" });
    if (rx.size) {
      // node → whether one of its sockets on this link has rx.* constraints; reported once per node.
      const seen = new Map<string, boolean | "reported">();
      for (const ep of l.endpoints) {
        const here = rx.has(`${ep.node}\u0000${ep.socket}`);
        const before = seen.get(ep.node);
        if (before === "reported") continue;
        if (before !== undefined && (before || here)) {
          out.push({
            element: "link",
            name: l.name,
            message: `node ${ep.node} has two sockets on it, so their rx.* constraints cannot name one direction (a direction is named by the node it leads to)`,
          });
          seen.set(ep.node, "reported");
          continue;
        }
        if (before === undefined) seen.set(ep.node, here);
      }
    }
    for (const ep of l.endpoints) {
      const s = sockets.get(ep.node);
      if (!s)
        out.push({ element: "link", name: l.name, message: `endpoint names node '${ep.node}', which does not exist` });
      else if (!s.has(ep.socket)) {
        out.push({
          element: "link",
          name: l.name,
          message: `endpoint names socket ${ep.socket} of ${ep.node}, which has no such socket`,
        });
      } else {
        const key = `${ep.node}\u0000${ep.socket}`;
        const other = bound.get(key);
        if (other !== undefined) {
          out.push({
            element: "link",
            name: l.name,
            message: `socket ${ep.socket} of ${ep.node} is already bound to link ${other}`,
          });
        }
        bound.set(key, l.name);
      }
    }
  }
  return out;
}

function assemble(a: Attempt, links: LinkEmbedding[], infranets: Infranet[]): Realization {
  const { ix, x, options } = a.demand;
  const ifaceTags = new Map<string, { vlan?: number; vni?: number }>();
  for (const l of links) {
    for (const s of l.segments) {
      if (s.endpoints.length === 0) continue;
      const first = s.waypoints[0]!;
      const last = s.waypoints[s.waypoints.length - 1]!;
      for (const [i, ep] of s.endpoints.entries()) {
        const w = i === 0 ? first : last;
        ifaceTags.set(`${ep.node}\u0000${ep.socket}`, { vlan: w.vlan, vni: w.vni });
      }
    }
  }
  const nodes: NodeEmbedding[] = x.nodes
    .filter((n) => a.placed.has(n.name))
    .map((n) => {
      const p = a.placed.get(n.name)!;
      const sockets = [...n.sockets].sort((a, b) => a.index - b.index);
      const interfaces: InterfaceEmbedding[] = sockets.map((s, k) => {
        const iface: InterfaceEmbedding = {
          socket: s.index,
          port: ix.ports[p.ports[k]!]!.name,
          virtual: p.virtual[k]!,
        };
        // A container's interfaces are veth pairs: only a VM's NIC has a model.
        const nic = p.mode === "virtual" && p.kind !== "container" ? vmNic(s.constraints) : undefined;
        if (nic) {
          iface.model = nic.model;
          iface.queues = nic.queues;
        }
        const tags = ifaceTags.get(`${n.name}\u0000${s.index}`);
        if (tags?.vlan !== undefined) iface.vlan = tags.vlan;
        if (tags?.vni !== undefined) iface.vni = tags.vni;
        return iface;
      });
      return {
        node: n.name,
        facility: ix.facilityNames[ix.resFacility[p.resource]!]!,
        resource: ix.resources[p.resource]!.id,
        mode: p.mode,
        ...(p.kind ? { kind: p.kind } : {}),
        alloc: {
          cores: p.sizes[0]!,
          memory: p.sizes[1]!,
          disk: p.sizes[2]!,
          // A virtual node's disk counts its root file system; `disk.capacity` is what it asked beyond that.
          ...(p.mode === "virtual" ? { root: a.demand.vmDefaults.disk } : {}),
        },
        interfaces,
      };
    });
  const hash = options.experimentHash ?? canonicalHash(x);
  return { xir: "1.0", id: a.demand.id, experiment: hash, nodes, links, infranets };
}
