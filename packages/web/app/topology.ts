/**
 * An experiment (XIR) as a graphology graph for sigma: one vertex per node, a
 * point-to-point link as one edge, a multipoint link (3+ endpoints) as a small
 * "lan" hub vertex with an edge to each member (the same shape as
 * @merge/model's `toGraph`, the CLI's `--graph`). Every element carries the
 * lines to show on hover: constraints in the user's units, addresses, image.
 * Pure: no DOM, so it runs (and is tested and benchmarked) under Node too.
 */
// The browser entry: @merge/xir's index also holds Node-only code (hashing, ajv).
import { type Constraint, describeConstraint, type Experiment } from "@merge/xir/browser";
import { MultiUndirectedGraph } from "graphology";
import type { ForceAtlas2Settings } from "graphology-layout-forceatlas2";
import * as fa2 from "graphology-layout-forceatlas2";

// A CommonJS module: its default export is the layout function (under Node and Vite alike).
const forceAtlas2 = (
  fa2 as unknown as {
    default: {
      assign(g: Topology, p: { iterations: number; settings: ForceAtlas2Settings }): void;
      inferSettings(g: Topology): ForceAtlas2Settings;
    };
  }
).default;

export interface VertexAttributes {
  label: string;
  kind: "node" | "lan";
  x: number;
  y: number;
  size: number;
  color: string;
  /** Hover lines. */
  details: string[];
}

export interface EdgeAttributes {
  link: string;
  size: number;
  color: string;
  details: string[];
}

export type Topology = MultiUndirectedGraph<VertexAttributes, EdgeAttributes>;

/** What the topology view puts on `window.mergeTopology` (for tests and the console). */
export interface TopologyHook {
  nodes: number;
  lans: number;
  edges: number;
  experiment: string;
  /** Where a node or LAN (by label) is drawn, in page coordinates. */
  locate(label: string): { x: number; y: number } | undefined;
}

declare global {
  interface Window {
    mergeTopology?: TopologyHook;
  }
}

export const COLORS = { node: "#2f6fb3", lan: "#d9822b", link: "#9aa5b1", emulated: "#b33f5c" } as const;

const constraintLines = (cs: readonly Constraint[]) => cs.map((c) => describeConstraint(c));

/** Builds the graph; vertices start on a circle (a deterministic start for the layout). */
export function topologyGraph(x: Experiment): Topology {
  const g: Topology = new MultiUndirectedGraph();
  const total = x.nodes.length + x.links.filter((l) => l.endpoints.length > 2).length;
  let i = 0;
  const place = () => {
    const a = (2 * Math.PI * i++) / Math.max(1, total);
    return { x: Math.cos(a) * 100, y: Math.sin(a) * 100 };
  };
  const big = total > 500;
  for (const n of x.nodes) {
    const details: string[] = [];
    if (n.image !== undefined) details.push(`image ${n.image}`);
    details.push(...constraintLines(n.constraints));
    for (const s of n.sockets) {
      const line = [`socket ${s.index}`, ...s.addrs, ...constraintLines(s.constraints)];
      if (line.length > 1) details.push(line.join("  "));
    }
    const group = n.properties.group;
    if (group !== undefined) details.push(`group ${(Array.isArray(group) ? group : [group]).join(", ")}`);
    g.addNode(`node:${n.name}`, {
      label: n.name,
      kind: "node",
      ...place(),
      size: big ? 4 : 9,
      color: COLORS.node,
      details,
    });
  }
  for (const l of x.links) {
    const details = constraintLines(l.constraints);
    const emulated = l.constraints.some((c) => c.prop === "latency" || c.prop === "loss");
    const color = emulated ? COLORS.emulated : COLORS.link;
    const ends = l.endpoints.map((e) => `node:${e.node}`).filter((id) => g.hasNode(id));
    if (ends.length === 2) {
      g.addEdgeWithKey(`link:${l.name}`, ends[0] as string, ends[1] as string, {
        link: l.name,
        size: 2,
        color,
        details,
      });
    } else if (ends.length > 2) {
      const hub = `lan:${l.name}`;
      g.addNode(hub, {
        label: l.name,
        kind: "lan",
        ...place(),
        size: big ? 3 : 6,
        color: COLORS.lan,
        details: [`LAN of ${ends.length}`, ...details],
      });
      ends.forEach((e, k) => {
        g.addEdgeWithKey(`link:${l.name}:${k}`, hub, e, {
          link: l.name,
          size: 1.5,
          color,
          details,
        });
      });
    }
  }
  return g;
}

/** Up to this many vertices the view lays out before drawing; above, it draws at once and lays out in a worker. */
export const SYNC_LAYOUT_LIMIT = 300;

/** ForceAtlas2 settings for a graph: the library's inference, Barnes-Hut above a few hundred vertices. */
export function layoutSettings(g: Topology): ForceAtlas2Settings {
  return { ...forceAtlas2.inferSettings(g), barnesHutOptimize: g.order > SYNC_LAYOUT_LIMIT };
}

/** ForceAtlas2 in place, synchronously (small graphs; big ones go to the worker, see TopologyView). */
export function layout(g: Topology, iterations = 150): void {
  if (g.order < 2) return;
  forceAtlas2.assign(g, { iterations, settings: layoutSettings(g) });
}
