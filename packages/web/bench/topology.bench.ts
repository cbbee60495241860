/**
 * The topology view's own work before sigma draws: XIR → graph, then the
 * ForceAtlas2 layout, on campus experiments of 1,000 and 5,000 hosts.
 *   npm run bench -- topology
 */
import { benchCase, defineBench, peakMb } from "@merge/bench";
import { layout, topologyGraph } from "../app/topology.ts";
import { campus } from "../test/sample-xir.ts";

const sizes = { "graph-1k": 1000, "graph-5k": 5000 };
const laid = { "layout-1k": 1000, "layout-5k": 5000 };

export default defineBench({
  name: "topology",
  cases: {
    ...Object.fromEntries(
      Object.entries(sizes).map(([k, n]) => [
        k,
        benchCase(() => {
          const x = campus(n);
          return {
            run: () => topologyGraph(x),
            fields: (g) => ({ vertices: g.order, edges: g.size, peak_mb: peakMb() }),
            targets: { max: { ms: n <= 1000 ? 100 : 400 } },
          };
        }),
      ]),
    ),
    ...Object.fromEntries(
      Object.entries(laid).map(([k, n]) => [
        k,
        benchCase(() => {
          const g = topologyGraph(campus(n));
          return {
            run: () => layout(g),
            fields: () => ({ vertices: g.order, edges: g.size, peak_mb: peakMb() }),
            targets: { max: { ms: n <= 1000 ? 1500 : 5000 } },
          };
        }),
      ]),
    ),
  },
});
