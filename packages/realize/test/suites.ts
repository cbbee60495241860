/**
 * Generated suites where a realization is known to exist (each experiment is
 * drawn from a planted mapping), and the quality figures of realizing them:
 * shared by the `quality` benchmark and the tests.
 */
import { generateFacility, generateHomogeneousFacility } from "@merge/facility-model";
import { type AllocationRecord, checkRealizations, prepareInternet, type RealizeResult, realize } from "@merge/realize";
import { canonicalHash, type Experiment, gbps, type ResourceInternet } from "@merge/xir";
import { plantedExperiment, random } from "./workload.ts";

export interface Instance {
  net: ResourceInternet;
  x: Experiment;
}

const homogeneous = (): ResourceInternet => ({ facilities: [generateHomogeneousFacility()], interconnects: [] });

/** Suite name → instances: each case names its facility, size and planted trunk use. */
export const SUITES: Record<string, () => Instance[]> = {
  /** 1,000 identical PCs, 5 leaves, 10 Gbit/s trunks; 250 to 950 nodes (95 % of the PCs), trunks planted at ≤ 80 %. */
  homogeneous: () => {
    const net = homogeneous();
    return [250, 300, 400, 500, 600, 750, 900, 950].map((size, i) => ({
      net,
      x: plantedExperiment(random(500 + i), net, `homog${size}`, size),
    }));
  },
  /** Generated heterogeneous facilities (hardware classes, hypervisors, 10 Gbit/s trunks); node constraints from the planted host; up to 95 % of the bare-metal nodes. */
  heterogeneous: () =>
    [0.5, 0.7, 0.8, 0.9, 0.95, 0.95].map((share, i) => {
      const net: ResourceInternet = {
        facilities: [
          generateFacility({
            nodes: 400,
            seed: 600 + i,
            racks: 8,
            hypervisorShare: 0.1,
            leafUplinks: { count: 1, capacity: gbps(10) },
          }),
        ],
        interconnects: [],
      };
      let physical = 0;
      for (const r of net.facilities[0]!.resources) if (r.kind === "node" && r.alloc.includes("physical")) physical++;
      const size = Math.floor(physical * share);
      return { net, x: plantedExperiment(random(600 + i), net, `het${size}`, size, { constrain: true }) };
    }),
  /** The homogeneous testbed with trunks planted at up to 95 % of their capacity. */
  "trunk-tight": () => {
    const net = homogeneous();
    return [300, 400, 500, 600, 700, 800].map((size, i) => ({
      net,
      x: plantedExperiment(random(700 + i), net, `tight${size}`, size, { trunkUse: 0.95, linksPerNode: 2 }),
    }));
  },
};

/** Cable id → capacity, for cables between two switches (trunks), per facility. */
function trunks(net: ResourceInternet): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of net.facilities) {
    const byId = new Map(f.resources.map((r) => [r.id, r]));
    for (const cable of f.cables) {
      const [a, b] = cable.ends.map((e) => byId.get(e.resource));
      if (a?.kind !== "switch" || b?.kind !== "switch") continue;
      const cap = Math.min(
        ...cable.ends.map((e) => byId.get(e.resource)!.ports.find((p) => p.name === e.port)!.capacity),
      );
      out.set(`${f.name}\u0000${cable.id}`, cap);
    }
  }
  return out;
}

/** Links whose reservation crosses a trunk, and the busiest trunk's reserved share of its capacity. */
export function trunkUse(
  net: ResourceInternet,
  records: readonly AllocationRecord[],
): { interSwitch: number; busiest: number } {
  const caps = trunks(net);
  const used = new Map<string, number>();
  const crossing = new Set<string>();
  for (const r of records) {
    if (r.kind !== "cable") continue;
    const k = `${r.facility}\u0000${r.cable}`;
    if (!caps.has(k)) continue;
    used.set(k, (used.get(k) ?? 0) + r.capacity);
    crossing.add(r.link);
  }
  let busiest = 0;
  for (const [k, u] of used) busiest = Math.max(busiest, u / caps.get(k)!);
  return { interSwitch: crossing.size, busiest };
}

export interface SuiteFigures {
  instances: number;
  realized: number;
  success_rate: number;
  checker_violations: number;
  median_ms: number;
  /** CPU time of every realize call together (on a loaded machine, steadier than wall time). */
  cpu_ms: number;
  /** Mean per realized instance. */
  inter_switch_links: number;
  /** Largest over realized instances, as a share of the trunk's capacity. */
  busiest_trunk: number;
}

/** Realize every instance (index prebuilt, untimed) and measure. */
export function runSuite(
  instances: readonly Instance[],
  realizeWith = realize,
): { figures: SuiteFigures; results: RealizeResult[] } {
  const ixs = new Map<ResourceInternet, ReturnType<typeof prepareInternet>>();
  const times: number[] = [];
  let cpu = 0;
  const results: RealizeResult[] = [];
  let violations = 0;
  let inter = 0;
  let busiest = 0;
  for (const { net, x } of instances) {
    let ix = ixs.get(net);
    if (!ix) {
      ix = prepareInternet(net);
      ixs.set(net, ix);
    }
    // The portal hashes a revision when it is pushed, not when it is realized.
    const experimentHash = canonicalHash(x);
    const t = performance.now();
    const c = process.cpuUsage();
    const r = realizeWith(x, ix, undefined, { id: `q.${x.name}.p`, experimentHash });
    const used = process.cpuUsage(c);
    times.push(performance.now() - t);
    cpu += (used.user + used.system) / 1000;
    results.push(r);
    if (!r.ok) continue;
    violations += checkRealizations(net, [{ experiment: x, realization: r.realization }]).length;
    const u = trunkUse(net, r.records);
    inter += u.interSwitch;
    busiest = Math.max(busiest, u.busiest);
  }
  const ok = results.filter((r) => r.ok).length;
  times.sort((a, b) => a - b);
  return {
    results,
    figures: {
      instances: instances.length,
      realized: ok,
      success_rate: Math.round((ok / instances.length) * 1000) / 1000,
      checker_violations: violations,
      median_ms: Math.round(times[Math.floor(times.length / 2)]! * 10) / 10,
      cpu_ms: Math.round(cpu),
      inter_switch_links: ok ? Math.round(inter / ok) : -1,
      busiest_trunk: Math.round(busiest * 1000) / 1000,
    },
  };
}
