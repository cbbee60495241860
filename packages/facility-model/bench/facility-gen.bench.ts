// npm run bench -- facility-gen
//   1000-nodes           generateFacility, 1,000 nodes (25 racks, 2 pods)
//   100000-nodes         generateFacility, 100,000 nodes (2,500 racks, 157 pods)
//   100000-nodes-check   checkFacility over the 100,000-node facility
//   internet-2x50000     generateResourceInternet, 2 facilities of 50,000 nodes
import { benchCase, defineBench } from "@merge/bench";
import type { Facility, ResourceInternet } from "@merge/xir";
import { checkFacility, generateFacility, generateResourceInternet, summarize } from "../src/index.ts";

/**
 * The work's CPU time (all threads, GC helpers included), reported beside `ms`:
 * on a shared machine wall time also counts other processes' turns.
 */
function cpuTimed<R>(work: () => R): () => R {
  return () => {
    const c0 = process.cpuUsage();
    const r = work();
    const c = process.cpuUsage(c0);
    cpu.ms = Math.round((c.user + c.system) / 1000);
    return r;
  };
}
const cpu = { ms: 0 };

/** Warm the JIT (and the heap) on a smaller facility, as a long-running process would be. */
function warmUp(nodes: number): void {
  checkFacility(generateFacility({ nodes: Math.min(20_000, Math.max(2000, nodes / 5)), seed: 99 }));
}

const figures = (f: Facility) => {
  const s = summarize(f);
  return {
    resources: s.resources,
    nodes: s.nodes.total,
    hypervisors: s.nodes.both + s.nodes.virtual,
    hardware_classes: s.hardware.length,
    switches: s.byKind.switch,
    cables: s.cables,
  };
};

function generate(nodes: number, maxMs: number) {
  return benchCase(() => {
    warmUp(nodes);
    return {
      run: cpuTimed(() => generateFacility({ nodes, seed: 1 })),
      fields: (f: Facility) => ({ cpu_ms: cpu.ms, ...figures(f) }),
      targets: { max: { ms: maxMs, peak_mb: 1024 } },
    };
  });
}

export default defineBench({
  name: "facility-gen",
  cases: {
    "1000-nodes": generate(1000, 50),
    "100000-nodes": generate(100_000, 2000),
    "100000-nodes-check": benchCase(() => {
      warmUp(100_000);
      const f = generateFacility({ nodes: 100_000, seed: 1 });
      return {
        run: cpuTimed(() => checkFacility(f)),
        fields: (problems) => ({ cpu_ms: cpu.ms, errors: problems.filter((p) => p.severity === "error").length }),
        targets: { max: { ms: 2000, peak_mb: 1024 } },
      };
    }),
    "internet-2x50000": benchCase(() => {
      warmUp(100_000);
      return {
        run: cpuTimed(() => generateResourceInternet({ facilities: 2, nodesPerFacility: 50_000, seed: 1 })),
        fields: (ri: ResourceInternet) => ({
          cpu_ms: cpu.ms,
          facilities: ri.facilities.length,
          nodes: ri.facilities.reduce((a, f) => a + summarize(f).nodes.total, 0),
          interconnects: ri.interconnects.length,
        }),
        targets: { max: { ms: 2000, peak_mb: 1024 } },
      };
    }),
  },
});
