/**
 * Infranets: every facility an experiment touches gives it a VNI for its
 * management network and an infrapod on the least-loaded infrapod server.
 */
import type { Infranet } from "@merge/xir";
import { INFRANET_USE } from "./allocation.ts";
import type { Attempt } from "./context.ts";
import type { Tagger } from "./tagging.ts";

export function infranets(a: Attempt, tagger: Tagger): Infranet[] {
  const ix = a.demand.ix;
  const touched = [...new Set([...a.placed.values()].map((p) => ix.resFacility[p.resource]!))].sort((p, q) => p - q);
  const out: Infranet[] = [];
  for (const f of touched) {
    const servers = ix.infrapodServers[f]!;
    if (!servers.length) {
      a.problems.push({
        element: "facility",
        name: ix.facilityNames[f]!,
        message: "has no infrapod server for the experiment's infranet",
      });
      continue;
    }
    let best = servers[0]!;
    for (const s of servers) if (a.usage.infrapodLoad[s]! < a.usage.infrapodLoad[best]!) best = s;
    a.usage.infrapodLoad[best]!++;
    const vni = tagger.vni(f, INFRANET_USE);
    if (vni === undefined) {
      a.problems.push({
        element: "facility",
        name: ix.facilityNames[f]!,
        message: `no free VNI for the infranet (pool ${tagger.vniPool(f).describe()} is exhausted)`,
      });
      continue;
    }
    a.records.push({
      kind: "infrapod",
      realization: a.demand.id,
      facility: ix.facilityNames[f]!,
      resource: ix.resources[best]!.id,
    });
    out.push({ facility: ix.facilityNames[f]!, vni, infrapodServer: ix.resources[best]!.id });
  }
  return out;
}
