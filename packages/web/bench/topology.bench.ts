/**
 * The topology view's own work around sigma: XIR → graph (1k and 5k hosts),
 * the synchronous ForceAtlas2 layout at its size limit (what a graph of up to
 * 300 vertices waits for before it is drawn), and ten Barnes-Hut iterations on
 * 6,000 vertices (what the background worker spends per step on a big graph).
 *   npm run bench -- topology
 */
import { benchCase, defineBench, peakMb } from "@merge/bench";
import { layout, SYNC_LAYOUT_LIMIT, topologyGraph } from "../app/topology.ts";
import { campus } from "../test/sample-xir.ts";

const graphCase = (hosts: number, maxMs: number) =>
  benchCase(() => {
    const x = campus(hosts);
    return {
      run: () => topologyGraph(x),
      fields: (g) => ({ vertices: g.order, edges: g.size, peak_mb: peakMb() }),
      targets: { max: { ms: maxMs } },
    };
  });

const layoutCase = (hosts: number, iterations: number, maxMs: number) =>
  benchCase(() => {
    const g = topologyGraph(campus(hosts));
    return {
      run: () => layout(g, iterations),
      fields: () => ({ vertices: g.order, edges: g.size, iterations, peak_mb: peakMb() }),
      targets: { max: { ms: maxMs } },
    };
  });

// campus(n) has n hosts + n/10 routers + n/10 LAN hubs.
const atLimit = Math.floor((SYNC_LAYOUT_LIMIT * 10) / 12);

export default defineBench({
  name: "topology",
  cases: {
    "graph-1k": graphCase(1000, 100),
    "graph-5k": graphCase(5000, 500),
    "layout-sync-300": layoutCase(atLimit, 150, 1000),
    "layout-step-6k": layoutCase(5000, 10, 1500),
  },
});
