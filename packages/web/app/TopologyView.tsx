/**
 * The interactive topology: sigma (WebGL) over the graphology graph, laid out
 * by ForceAtlas2. Hovering a node, LAN or link shows its constraints and
 * addresses and highlights its neighbourhood. Loaded on demand (its own
 * chunk): the rest of the UI never pays for the graph stack.
 *
 * The container carries data-nodes / data-edges / data-lans and
 * data-state="rendered" once sigma has drawn, so tests and tools can check it.
 */

import type { Experiment } from "@merge/xir/browser";
import * as fa2Worker from "graphology-layout-forceatlas2/worker.js";
import { useEffect, useRef, useState } from "react";
import Sigma from "sigma";
import {
  type EdgeAttributes,
  layout,
  layoutSettings,
  SYNC_LAYOUT_LIMIT,
  type Topology,
  topologyGraph,
  type VertexAttributes,
} from "./topology.ts";

// CommonJS: the default export is the supervisor class (a Blob web worker, hence CSP worker-src blob:).
const FA2Layout = (
  fa2Worker as unknown as {
    default: new (
      g: Topology,
      p: { settings: ReturnType<typeof layoutSettings> },
    ) => { start(): void; stop(): void; kill(): void };
  }
).default;

/** How long the background layout of a big graph may run before it stops where it is. */
const layoutBudgetMs = (order: number) => Math.min(20_000, 4_000 + order);

interface Hover {
  kind: "node" | "lan" | "link";
  label: string;
  details: string[];
}

export default function TopologyView({ xir }: { xir: Experiment }) {
  const box = useRef<HTMLDivElement>(null);
  const [hover, setHover] = useState<Hover | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [counts, setCounts] = useState<{ nodes: number; lans: number; edges: number } | undefined>(undefined);
  const [laying, setLaying] = useState(false);

  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    let graph: Topology;
    let sigma: Sigma<VertexAttributes, EdgeAttributes> | undefined;
    let background: InstanceType<typeof FA2Layout> | undefined;
    let stopTimer: ReturnType<typeof setTimeout> | undefined;
    try {
      graph = topologyGraph(xir);
      if (graph.order <= SYNC_LAYOUT_LIMIT) layout(graph);
      else {
        // Draw now, settle in the background (sigma follows the positions as the worker moves them).
        background = new FA2Layout(graph, { settings: layoutSettings(graph) });
        background.start();
        setLaying(true);
        stopTimer = setTimeout(() => {
          background?.stop();
          setLaying(false);
        }, layoutBudgetMs(graph.order));
      }
      let hovered: string | undefined;
      let neighbours = new Set<string>();
      sigma = new Sigma(graph, el, {
        enableEdgeEvents: true,
        renderEdgeLabels: false,
        labelRenderedSizeThreshold: graph.order > 300 ? 8 : 0,
        zIndex: true,
        nodeReducer: (id, attrs) => {
          if (hovered === undefined) return attrs;
          if (id === hovered) return { ...attrs, highlighted: true, zIndex: 2 };
          if (neighbours.has(id)) return { ...attrs, zIndex: 1 };
          return { ...attrs, color: "#d5dbe1", label: "", zIndex: 0 };
        },
        edgeReducer: (id, attrs) => {
          if (hovered === undefined) return attrs;
          return graph.hasExtremity(id, hovered) ? { ...attrs, size: attrs.size * 1.6 } : { ...attrs, hidden: true };
        },
      });
      const s = sigma;
      s.on("enterNode", ({ node }) => {
        hovered = node;
        neighbours = new Set(graph.neighbors(node));
        const a = graph.getNodeAttributes(node);
        setHover({ kind: a.kind, label: a.label, details: a.details });
        s.refresh({ skipIndexation: true });
      });
      s.on("leaveNode", () => {
        hovered = undefined;
        neighbours = new Set();
        setHover(undefined);
        s.refresh({ skipIndexation: true });
      });
      s.on("enterEdge", ({ edge }) => {
        const a = graph.getEdgeAttributes(edge);
        setHover({ kind: "link", label: `link ${a.link}`, details: a.details });
      });
      s.on("leaveEdge", () => setHover(undefined));
      const lans = graph.filterNodes((_, a) => a.kind === "lan").length;
      const c = { nodes: graph.order - lans, lans, edges: graph.size };
      setCounts(c);
      window.mergeTopology = {
        ...c,
        experiment: xir.name,
        locate: (label) => {
          const id = graph.findNode((_, a) => a.label === label);
          if (id === undefined) return undefined;
          const p = s.graphToViewport(graph.getNodeAttributes(id));
          const r = el.getBoundingClientRect();
          return { x: r.left + p.x, y: r.top + p.y };
        },
      };
    } catch (e) {
      setError(`cannot draw the topology: ${(e as Error).message}`);
    }
    return () => {
      clearTimeout(stopTimer);
      background?.kill();
      sigma?.kill();
    };
  }, [xir]);

  return (
    <div className="topology-wrap">
      <div
        ref={box}
        className="topology"
        data-testid="topology"
        data-state={counts === undefined ? "drawing" : "rendered"}
        data-layout={laying ? "running" : "done"}
        data-nodes={counts?.nodes}
        data-lans={counts?.lans}
        data-edges={counts?.edges}
      />
      {error !== undefined && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      {counts !== undefined && (
        <p className="legend">
          <span className="dot dot-node" /> {counts.nodes} nodes <span className="dot dot-lan" /> {counts.lans} LANs,{" "}
          {counts.edges} edges <span className="dot dot-emulated" /> emulated link
          {laying && <span className="muted"> — laying out…</span>}
        </p>
      )}
      {hover !== undefined && (
        <div className="hover" data-testid="topology-hover">
          <strong>{hover.kind === "lan" ? `LAN ${hover.label}` : hover.label}</strong>
          {hover.details.length === 0 ? (
            <div className="muted">no constraints</div>
          ) : (
            hover.details.map((d) => <div key={d}>{d}</div>)
          )}
        </div>
      )}
    </div>
  );
}
