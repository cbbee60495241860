/**
 * Resource pools: which testbed nodes a project may be realized on. With no
 * pools defined every project may use every node of every active facility.
 * Once pools exist, a project may use the nodes of the pools that list it
 * (`facility/resource`, or `facility/*` for all of a facility's nodes), and a
 * project in no pool can realize nothing until an administrator adds it.
 * Infrastructure (switches, emulators, infrapod servers, gateways) is shared
 * by everyone and never pooled.
 */
import type { Facility, ResourceInternet } from "@merge/xir";

export interface Pool {
  name: string;
  description: string;
  projects: string[];
  /** `facility/resource` or `facility/*`. */
  resources: string[];
  created: string;
  updated: string;
}

/** The node resources `project` may use, or undefined when pools do not restrict it (no pools at all). */
export function allowedResources(pools: readonly Pool[], project: string): Set<string> | undefined {
  if (pools.length === 0) return undefined;
  const out = new Set<string>();
  for (const p of pools) if (p.projects.includes(project)) for (const r of p.resources) out.add(r);
  return out;
}

/** The resource internet with the testbed nodes outside `allowed` (and their cables) left out. */
export function restrictInternet(internet: ResourceInternet, allowed: ReadonlySet<string>): ResourceInternet {
  return keepResources(
    internet,
    (f, r) => r.alloc.length === 0 || allowed.has(`${f.name}/*`) || allowed.has(`${f.name}/${r.id}`),
  );
}

/** The resource internet with only the resources `keep` keeps, and the cables between them. */
export function keepResources(
  internet: ResourceInternet,
  keep: (f: Facility, r: Facility["resources"][number]) => boolean,
): ResourceInternet {
  return {
    ...internet,
    facilities: internet.facilities.map((f): Facility => {
      const kept = new Set(f.resources.filter((r) => keep(f, r)).map((r) => r.id));
      return {
        ...f,
        resources: f.resources.filter((r) => kept.has(r.id)),
        cables: f.cables.filter((c) => kept.has(c.ends[0].resource) && kept.has(c.ends[1].resource)),
      };
    }),
  };
}
