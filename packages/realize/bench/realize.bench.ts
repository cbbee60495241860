/**
 * Realization speed and quality. Each case builds its resource internet and
 * prepared index untimed (the index build time is reported as `index_ms`: the
 * portal caches the index per facility revision), then times one realize call.
 * Experiments are derived from free resources, so a realization is known to
 * exist; `quality` realizes many such instances at 10% slack and reports the
 * success rate. Before the timed call, one small realization on the same index
 * warms the JIT, as in a running portal.
 */
import { benchCase, defineBench } from "@merge/bench";
import { generateFacility, generateHomogeneousFacility, generateResourceInternet } from "@merge/facility-model";
import { checkRealizations, type InternetIndex, prepareInternet, type RealizeResult, realize } from "@merge/realize";
import { canonicalHash, type Experiment, type Realization, type ResourceInternet } from "@merge/xir";
import { runSuite, SUITES, type SuiteFigures, trunkUse } from "../test/suites.ts";
import { feasibleExperiment, random, sparseExperiment } from "../test/workload.ts";

function prepared(internet: ResourceInternet): { ix: InternetIndex; indexMs: number } {
  const t = performance.now();
  const ix = prepareInternet(internet);
  return { ix, indexMs: Math.round(performance.now() - t) };
}

/** Mean number of switches a link's traffic crosses (all its segments). */
function hopsPerLink(ix: InternetIndex, rz: Realization): number {
  const switches = new Set<string>();
  for (const f of ix.internet.facilities)
    for (const r of f.resources) if (r.kind === "switch") switches.add(`${f.name}/${r.id}`);
  let hops = 0;
  for (const l of rz.links) {
    for (const s of l.segments) {
      let prev = "";
      for (const w of s.waypoints) {
        const k = `${w.facility}/${w.resource}`;
        if (k !== prev && switches.has(k)) hops++;
        prev = k;
      }
    }
  }
  return rz.links.length ? Math.round((hops / rz.links.length) * 100) / 100 : 0;
}

function fields(ix: InternetIndex, indexMs: number, r: RealizeResult, x: Experiment) {
  return {
    ok: r.ok,
    nodes: x.nodes.length,
    links: x.links.length,
    resources: ix.resources.length,
    index_ms: indexMs,
    hops_per_link: r.ok ? hopsPerLink(ix, r.realization) : -1,
    emulated: r.ok ? r.realization.links.filter((l) => l.emulator).length : -1,
    external: r.ok ? r.realization.links.filter((l) => l.external).length : -1,
  };
}

function speedCase(internet: () => ResourceInternet, size: number, maxMs: number, maxMb?: number) {
  return benchCase(() => {
    const net = internet();
    const { ix, indexMs } = prepared(net);
    const x = feasibleExperiment(random(size), net, `bench${size}`, size);
    // A portal realizes in a warm process: compile the engine's hot paths first
    // with a small experiment on the same index (untimed).
    realize(feasibleExperiment(random(size + 1), net, "warmup", Math.min(size, 200)), ix, undefined, {
      id: "warm.up.p",
    });
    // The portal hashes a revision when it is pushed, not when it is realized.
    const experimentHash = canonicalHash(x);
    let cpuMs = 0;
    return {
      run: () => {
        const before = process.cpuUsage();
        const r = realize(x, ix, undefined, { id: `bench.${x.name}.p`, experimentHash });
        const used = process.cpuUsage(before);
        cpuMs = Math.round((used.user + used.system) / 100) / 10;
        return r;
      },
      // cpu_ms: CPU time of the timed call; on a shared, loaded machine `ms` (wall) is larger.
      fields: (r: RealizeResult) => ({ ...fields(ix, indexMs, r, x), cpu_ms: cpuMs }),
      targets: { max: { ms: maxMs, ...(maxMb ? { peak_mb: maxMb } : {}) } },
    };
  });
}

/**
 * The homogeneous testbed (1,000 PCs, 5 leaves of 200, 10 Gbit/s trunks to
 * one core) with a sparse random experiment of `size` nodes (1.5 links per
 * node, each asking 100 Mbit/s): the shape where placement must weigh trunks.
 */
function homogeneousCase(size: number) {
  return benchCase(() => {
    const net: ResourceInternet = { facilities: [generateHomogeneousFacility()], interconnects: [] };
    const { ix, indexMs } = prepared(net);
    const x = sparseExperiment(random(size), `homog${size}`, size);
    realize(sparseExperiment(random(size + 1), "warmup", size), ix, undefined, { id: "warm.up.p" });
    const experimentHash = canonicalHash(x);
    return {
      run: () => realize(x, ix, undefined, { id: `bench.${x.name}.p`, experimentHash }),
      fields: (r: RealizeResult) => {
        const use = r.ok ? trunkUse(net, r.records) : { interSwitch: -1, busiest: -1 };
        return {
          ...fields(ix, indexMs, r, x),
          realized: r.ok ? 1 : 0,
          checker_violations: r.ok
            ? checkRealizations(net, [{ experiment: x, realization: r.realization }]).length
            : -1,
          inter_switch_links: use.interSwitch,
          busiest_trunk: Math.round(use.busiest * 1000) / 1000,
        };
      },
      targets: { min: { realized: 1 } },
    };
  });
}

/** One planted suite (`test/suites.ts`): every instance is realizable by construction. */
function suiteCase(name: string) {
  return benchCase(() => {
    const instances = SUITES[name]!();
    // Warm the engine's hot paths on the suite's first facility (untimed), as in a running portal.
    runSuite(instances.slice(0, 1));
    return {
      run: () => runSuite(instances).figures,
      fields: (f: SuiteFigures) => ({ suite: name, ...f }),
      targets: { min: { success_rate: 1 } },
    };
  });
}

export default defineBench({
  name: "realize",
  cases: {
    "100x1000": speedCase(
      () => ({ facilities: [generateFacility({ nodes: 1000, seed: 1 })], interconnects: [] }),
      100,
      100,
    ),
    "1000x10000": speedCase(
      () => generateResourceInternet({ facilities: 2, nodesPerFacility: 5000, seed: 2 }),
      1000,
      1000,
    ),
    "10000x100000": speedCase(
      () => generateResourceInternet({ facilities: 2, nodesPerFacility: 50_000, seed: 3 }),
      10_000,
      5000,
      2048,
    ),
    /** 30 instances known realizable with 10% slack: success rate must be 1. */
    quality: benchCase(() => {
      const instances = Array.from({ length: 30 }, (_, i) => {
        const net =
          i % 3 === 2
            ? generateResourceInternet({ facilities: 2, nodesPerFacility: 150, seed: 100 + i })
            : {
                facilities: [generateFacility({ nodes: 300, seed: 100 + i, hypervisorShare: 0.1 * (i % 4) })],
                interconnects: [],
              };
        let physical = 0;
        for (const f of net.facilities)
          for (const r of f.resources) if (r.kind === "node" && r.alloc.includes("physical")) physical++;
        const x = feasibleExperiment(random(i), net, `q${i}`, Math.floor(physical / 1.1));
        return { net, ix: prepareInternet(net), x };
      });
      return {
        run: () => instances.map(({ ix, x }) => realize(x, ix, undefined, { id: `q.${x.name}.p` })),
        fields: (results: RealizeResult[]) => {
          const ok = results.filter((r) => r.ok).length;
          let violations = 0;
          let hops = 0;
          results.forEach((r, i) => {
            if (!r.ok) return;
            const { net, ix, x } = instances[i]!;
            violations += checkRealizations(net, [{ experiment: x, realization: r.realization }]).length;
            hops += hopsPerLink(ix, r.realization);
          });
          return {
            instances: results.length,
            success_rate: Math.round((ok / results.length) * 1000) / 1000,
            checker_violations: violations,
            hops_per_link: ok ? Math.round((hops / ok) * 100) / 100 : -1,
          };
        },
        targets: { min: { success_rate: 1 } },
      };
    }),
    "quality-homogeneous": suiteCase("homogeneous"),
    "quality-heterogeneous": suiteCase("heterogeneous"),
    "quality-trunk-tight": suiteCase("trunk-tight"),
    "homog-1000pc-300": homogeneousCase(300),
    "homog-1000pc-400": homogeneousCase(400),
  },
});
