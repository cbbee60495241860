/**
 * Routing a link through the switch mesh: a path per segment found by the
 * path finder over edges with the link's capacity free, cut at an emulator
 * when the link needs one; capacity reserved per virtual network on every
 * cable crossed; the realized link checked against its constraints; tags and
 * allocation records for what it holds.
 */
import {
  type Constraint,
  describeConstraint,
  type EmulationValues,
  emulationToward,
  firstUnsatisfied,
  formatValue,
  type Link,
  type LinkEmbedding,
  type LinkEmulation,
  type LinkSegment,
  needsEmulation,
  type Scalar,
} from "@merge/xir";
import type { Attempt, Demand, LinkNeed } from "./context.ts";
import { type Direction, describeToward } from "./direction.ts";
import { type InternetIndex, KIND_EMULATOR, resourceName } from "./internet.ts";
import { mayCross } from "./needs.ts";
import { PathFinder } from "./paths.ts";
import type { Tagger, VirtualNet } from "./tagging.ts";
import { constraintsOn, pickValue } from "./value.ts";

/**
 * The link being routed, as the path finder's edge predicate sees it: an edge
 * is usable when it has the link's capacity free (or already carries this
 * virtual network) and, for an interconnect, when the link may cross it.
 */
class LinkRoute {
  /** The virtual network whose segments are being routed. */
  vn: VirtualNet = { use: "", edges: new Set(), segments: [] };
  /** Every cable the link reserves capacity on, over all its virtual networks. */
  readonly reserved = new Set<number>();
  private icOk: Map<number, boolean> | undefined;

  constructor(
    private readonly a: Attempt,
    readonly link: Link,
    private readonly dirs: Direction[] | undefined,
    private readonly need: LinkNeed,
    /** Route over cables without the capacity free (a best-effort answer's closest mapping). */
    readonly overcommit = false,
  ) {}

  readonly edgeOk = (e: number): boolean => {
    const ix = this.a.demand.ix;
    if (!this.overcommit && !this.vn.edges.has(e) && this.a.usage.edgeFree(e) < this.need.demand) return false;
    if (!ix.edgeInterconnect[e]) return true;
    this.icOk ??= new Map();
    let ok = this.icOk.get(e);
    if (ok === undefined) {
      ok = mayCross(this.link, this.dirs, this.need, ix.edgeCap[e]!, ix.edgeLatency[e]!);
      this.icOk.set(e, ok);
    }
    return ok;
  };
}

/** Routes the links of one attempt. */
export class Router {
  private readonly finder: PathFinder;
  private readonly ix: InternetIndex;
  private readonly d: Demand;
  private readonly isEmulator = (r: number): boolean => this.ix.resKind[r] === KIND_EMULATOR;

  constructor(
    private readonly a: Attempt,
    private readonly tagger: Tagger,
  ) {
    this.d = a.demand;
    this.ix = a.demand.ix;
    this.finder = new PathFinder(this.ix);
  }

  /** Set while a best-effort answer routes a failed link again (its problem is already listed). */
  private quiet = false;

  private linkProblem(l: Link, message: string): undefined {
    if (!this.quiet) this.a.problems.add({ element: "link", name: l.name, message });
    return undefined;
  }

  /**
   * The link's embedding with its capacity reserved, or undefined with a
   * problem. In a best-effort attempt a link that found no path with its
   * capacity free is routed again over cables without it, and its problem
   * names the cables it over-commits.
   */
  embed(l: Link): LinkEmbedding | undefined {
    const need = this.d.linkNeed.get(l.name)!;
    const dirs = this.d.linkDirs.size ? this.d.linkDirs.get(l.name) : undefined;
    const out = this.embedOnce(l, new LinkRoute(this.a, l, dirs, need));
    if (out) return out;
    this.a.failedLinks.push(l.name);
    if (!this.a.bestEffort) return undefined;
    const route = new LinkRoute(this.a, l, dirs, need, true);
    this.quiet = true;
    const closest = this.embedOnce(l, route);
    this.quiet = false;
    if (!closest) return undefined;
    const over = [...route.reserved].filter((e) => this.a.usage.edgeFree(e) < 0);
    const listed = this.a.problems.list.findLast((p) => p.element === "link" && p.name === l.name);
    if (listed && over.length) {
      const shown = over.slice(0, 4).map((e) => this.describeEdgeUse(e));
      listed.message += `; the closest mapping routes it anyway, over-committing ${shown.join(", ")}${over.length > 4 ? ", …" : ""}`;
    }
    return closest;
  }

  private edgePorts: Int32Array | undefined;

  /** `a—b: 13.8 Gbit/s reserved of 10 Gbit/s`, naming the resources at the cable's ends. */
  private describeEdgeUse(e: number): string {
    const ix = this.ix;
    if (!this.edgePorts) {
      this.edgePorts = new Int32Array(ix.edgeCount).fill(-1);
      for (let p = 0; p < ix.portEdge.length; p++) {
        const pe = ix.portEdge[p]!;
        if (pe >= 0 && this.edgePorts[pe]! < 0) this.edgePorts[pe] = p;
      }
    }
    const p = this.edgePorts[e]!;
    const ends =
      p >= 0
        ? `${resourceName(ix, ix.portRes[p]!)}—${resourceName(ix, ix.portRes[ix.portPeer[p]!]!)}`
        : ix.edgeName[e]!;
    return `${ends}: ${fmtRate(this.a.usage.edgeUsed[e]!)} reserved of ${fmtRate(ix.edgeCap[e]!)}`;
  }

  /** Reserve the link's capacity once per virtual network on every cable of `ports`. */
  private reserve(route: LinkRoute, vn: VirtualNet, ports: readonly number[], demand: number): void {
    const ix = this.ix;
    for (let i = 0; i + 1 < ports.length; i++) {
      const a = ports[i]!;
      if (ix.portRes[a] === ix.portRes[ports[i + 1]!]) continue;
      const e = ix.portEdge[a]!;
      if (!vn.edges.has(e)) {
        vn.edges.add(e);
        route.reserved.add(e);
        this.a.usage.edgeUsed[e]! += demand;
      }
    }
  }

  /** The access hop from an endpoint's port to its switch; undefined (with a problem) when unusable. */
  private firstHop(route: LinkRoute, port: number, who: string, needText: string): number | undefined {
    const ix = this.ix;
    const peer = ix.portPeer[port]!;
    if (peer < 0) {
      return this.linkProblem(
        route.link,
        `${who}: port ${ix.ports[port]!.name} of ${resourceName(ix, ix.portRes[port]!)} is not cabled to the experiment network`,
      );
    }
    if (!route.edgeOk(ix.portEdge[port]!)) {
      return this.linkProblem(
        route.link,
        `${who}: the cable from ${resourceName(ix, ix.portRes[port]!)} port ${ix.ports[port]!.name} has no capacity${needText}`,
      );
    }
    return ix.portRes[peer]!;
  }

  private embedOnce(l: Link, route: LinkRoute): LinkEmbedding | undefined {
    const ix = this.ix;
    const need = this.d.linkNeed.get(l.name)!;
    const eps = l.endpoints.map((e) => {
      const p = this.a.placed.get(e.node)!;
      const k = this.d.socketPos.get(`${e.node}\u0000${e.socket}`)!;
      return { node: e.node, socket: e.socket, placement: p, port: p.ports[k]! };
    });
    let lineRate = Number.POSITIVE_INFINITY;
    for (const e of eps) lineRate = Math.min(lineRate, ix.ports[e.port]!.capacity);
    const dirs = this.d.linkDirs.size ? this.d.linkDirs.get(l.name) : undefined;
    const emulated = needsEmulation(
      l,
      lineRate,
      dirs?.map((d) => d.constraints),
    );
    const needText = need.demand > 0 ? ` with ${fmtRate(need.demand)} free` : "";

    const nets: VirtualNet[] = [];
    let emulator = -1;
    if (!emulated) {
      const vn: VirtualNet = { use: l.name, edges: new Set(), segments: [] };
      route.vn = vn;
      nets.push(vn);
      const [a, b] = eps;
      if (eps.length === 2 && a!.port === b!.port) {
        vn.segments.push({ endpoints: eps.map((e) => ({ node: e.node, socket: e.socket })), ports: [a!.port] });
      } else if (eps.length === 2) {
        const sa = this.firstHop(route, a!.port, a!.node, needText);
        const sb = this.firstHop(route, b!.port, b!.node, needText);
        if (sa === undefined || sb === undefined) return undefined;
        const path = this.finder.between(sa, sb, route.edgeOk);
        if (!path) {
          return this.linkProblem(
            l,
            `no path between ${a!.node} and ${b!.node}${needText}${this.crossHint(l, a!.placement.resource, b!.placement.resource)}`,
          );
        }
        const ports = [a!.port, ix.portPeer[a!.port]!];
        for (const p of path) ports.push(p);
        ports.push(ix.portPeer[b!.port]!, b!.port);
        this.reserve(route, vn, ports, need.demand);
        vn.segments.push({ endpoints: eps.map((e) => ({ node: e.node, socket: e.socket })), ports });
      } else {
        const hub = this.firstHop(route, eps[0]!.port, eps[0]!.node, needText);
        if (hub === undefined) return undefined;
        for (const e of eps) {
          const s = this.firstHop(route, e.port, e.node, needText);
          if (s === undefined) return undefined;
          const path = this.finder.between(s, hub, route.edgeOk);
          if (!path) {
            return this.linkProblem(
              l,
              `no path from ${e.node} to the link's other endpoints${needText}${this.crossHint(l, e.placement.resource, eps[0]!.placement.resource)}`,
            );
          }
          const ports = [e.port, ix.portPeer[e.port]!];
          for (const p of path) ports.push(p);
          this.reserve(route, vn, ports, need.demand);
          vn.segments.push({ endpoints: [{ node: e.node, socket: e.socket }], ports });
        }
      }
    } else {
      // Cut at an emulator: one virtual network per endpoint, each ending on the emulator.
      for (const [i, e] of eps.entries()) {
        const vn: VirtualNet = { use: `${l.name}/${i}`, edges: new Set(), segments: [] };
        route.vn = vn;
        nets.push(vn);
        const s = this.firstHop(route, e.port, e.node, needText);
        if (s === undefined) return undefined;
        // The first half finds the nearest emulator; the others route to it from both ends.
        const path =
          emulator < 0
            ? this.finder.route(s, this.isEmulator, route.edgeOk)
            : this.finder.between(s, emulator, route.edgeOk);
        if (!path || path.length === 0) {
          return this.linkProblem(
            l,
            emulator < 0
              ? `needs an emulator (it has ${emulationReason(l, dirs)}) and none is reachable from ${e.node}${needText}`
              : `no path from ${e.node} to emulator ${resourceName(ix, emulator)}${needText}`,
          );
        }
        emulator = ix.portRes[path[path.length - 1]!]!;
        const ports = [e.port, ix.portPeer[e.port]!];
        for (const p of path) ports.push(p);
        this.reserve(route, vn, ports, need.demand);
        vn.segments.push({ endpoints: [{ node: e.node, socket: e.socket }], ports });
      }
    }

    // What the realized link is, and whether that satisfies the link's constraints.
    let pathRate = lineRate;
    let external = false;
    const segLatency: number[] = [];
    for (const vn of nets) {
      for (const seg of vn.segments) {
        let lat = 0;
        for (let i = 0; i + 1 < seg.ports.length; i++) {
          const a = seg.ports[i]!;
          if (ix.portRes[a] === ix.portRes[seg.ports[i + 1]!]) continue;
          const e = ix.portEdge[a]!;
          pathRate = Math.min(pathRate, ix.edgeCap[e]!);
          if (ix.edgeInterconnect[e]) {
            external = true;
            lat += ix.edgeLatency[e]!;
          }
        }
        segLatency.push(lat);
      }
    }
    segLatency.sort((p, q) => q - p);
    const baseLatency = segLatency.length === 1 ? segLatency[0]! : segLatency[0]! + segLatency[1]!;
    let emulation: LinkEmbedding["emulation"];
    if (emulated) {
      // The link's values, then each direction set apart picks its own with the same bounds.
      const values = (cs: readonly Constraint[], where: string, show: (c: Constraint) => string) => {
        const out: EmulationValues = {};
        for (const [prop, lo, hi, prefer] of [
          ["capacity", 0, pathRate, "max"],
          ["latency", baseLatency, Number.POSITIVE_INFINITY, "min"],
          ["loss", 0, 1, "min"],
        ] as const) {
          const on = constraintsOn(cs, prop);
          if (!on.length) continue;
          const v = pickValue(on, lo, hi, prefer);
          if (v === undefined) {
            return this.linkProblem(
              l,
              `${where}${on.map(show).join(" and ")}: the path cannot provide it (${prop === "latency" ? `its latency is already ${fmtLatency(baseLatency)}` : `its line rate is ${fmtRate(pathRate)}`})`,
            );
          }
          out[prop] = v;
        }
        return out;
      };
      const own = values(l.constraints, "", describeConstraint);
      if (!own) return undefined;
      emulation = own;
      if (dirs) {
        const toward: NonNullable<LinkEmulation["toward"]> = [];
        for (const d of dirs) {
          const v = values(d.constraints, `toward ${d.node}: `, describeToward);
          if (!v) return undefined;
          toward.push({ node: d.node, ...v });
        }
        emulation.toward = toward;
      }
    }
    const linkValues = realizedValues(emulation, pathRate, baseLatency, external);
    const bad = firstUnsatisfied((p) => linkValues[p], l.constraints);
    if (bad)
      return this.linkProblem(
        l,
        `${describeConstraint(bad)}: the realized link has ${String(linkValues[bad.prop] ?? "no such property")}`,
      );
    for (const d of dirs ?? []) {
      const v = realizedValues(emulation && emulationToward(emulation, d.node), pathRate, baseLatency, external);
      const bad = firstUnsatisfied((p) => v[p], d.constraints);
      if (bad) {
        return this.linkProblem(
          l,
          `toward ${d.node}: ${describeToward(bad)}: the realized direction has ${formatValue(bad.prop, v[bad.prop]!)}`,
        );
      }
    }

    // Tags, waypoints, records.
    const segments: LinkSegment[] = [];
    for (const vn of nets) {
      const tagged = this.tagger.tag(vn, l.name);
      if (!tagged) return undefined;
      segments.push(...tagged);
      for (const e of vn.edges) {
        if (need.demand <= 0) break;
        this.edgeRecord(e, l.name, need.demand);
      }
    }
    const out: LinkEmbedding = { link: l.name, segments, external, capacity: need.demand };
    if (emulator >= 0) {
      out.emulator = { facility: ix.facilityNames[ix.resFacility[emulator]!]!, resource: ix.resources[emulator]!.id };
      out.emulation = emulation;
    }
    return out;
  }

  private crossHint(l: Link, a: number, b: number): string {
    const ix = this.ix;
    if (ix.resFacility[a] === ix.resFacility[b]) return "";
    return ` (they are in ${ix.facilityNames[ix.resFacility[a]!]} and ${ix.facilityNames[ix.resFacility[b]!]}; ${
      l.constraints.some((c) => c.prop === "external")
        ? "the link's external constraint forbids crossing"
        : "no interconnect meets the link's constraints"
    })`;
  }

  private edgeRecord(e: number, link: string, capacity: number): void {
    const ix = this.ix;
    const name = ix.edgeName[e]!;
    if (ix.edgeInterconnect[e]) {
      this.a.records.push({ kind: "interconnect", realization: this.d.id, interconnect: name, link, capacity });
      return;
    }
    const facility = ix.facilityNames[ix.edgeFacility[e]!]!;
    this.a.records.push({ kind: "cable", realization: this.d.id, facility, cable: name, link, capacity });
  }
}

/** What a realized link (or one direction of it) is, as its constraints see it. */
function realizedValues(
  e: EmulationValues | undefined,
  pathRate: number,
  baseLatency: number,
  external: boolean,
): Record<string, Scalar> {
  return {
    capacity: e?.capacity ?? pathRate,
    latency: e?.latency ?? baseLatency,
    loss: e?.loss ?? 0,
    external,
    layer: 2,
    kind: "ethernet",
  };
}

function emulationReason(l: Link, dirs: readonly Direction[] | undefined): string {
  const own = l.constraints.filter((c) => ["latency", "loss", "capacity"].includes(c.prop)).map(describeConstraint);
  for (const d of dirs ?? []) own.push(`toward ${d.node}: ${d.constraints.map(describeToward).join(", ")}`);
  return own.join(", ");
}

function fmtRate(bps: number): string {
  return describeConstraint({ prop: "capacity", op: "==", value: bps }).slice("capacity == ".length);
}

function fmtLatency(ns: number): string {
  return describeConstraint({ prop: "latency", op: "==", value: ns }).slice("latency == ".length);
}
