/**
 * The harbor: the holding materialization `main.harbor.<facility>` where every
 * testbed node that carries no experiment node waits in imaging standby, on
 * the harbor's own infranet, served by the harbor's infrapod (pure: facility
 * model → HarborSpec). A node leaves the harbor when a materialization sets it
 * up and returns when it is recycled.
 */
import { INFRANET, infranetAddress, PlanError, syntheticMac } from "@merge/materialize";
import type { Facility } from "@merge/xir";
import type { HarborSpec } from "./backend.ts";

export const harborName = (facility: string): string => `main.harbor.${facility}`;

/** The harbor's VNI: the smallest one outside the facility's VNI pool, so no experiment network can have it. */
export function harborVni(model: Facility): number {
  const ranges = [...model.tags.vni].sort((a, b) => a.first - b.first);
  let vni = 1;
  for (const r of ranges) if (vni >= r.first && vni <= r.last) vni = r.last + 1;
  return vni;
}

export function harborSpecOf(model: Facility): HarborSpec {
  const server = model.resources.find((r) => r.kind === "infrapod-server");
  if (!server) throw new PlanError(`facility ${model.name} has no infrapod server to host its harbor`);
  const nodes = model.resources.filter((r) => r.kind === "node" && r.alloc.length > 0);
  return {
    name: harborName(model.name),
    infranet: { vni: harborVni(model), ...INFRANET },
    server: server.id,
    resources: nodes.map((r, i) => {
      const port = r.ports.find((p) => p.role === "infranet") ?? r.ports[0];
      return {
        id: r.id,
        address: infranetAddress(i),
        mac: port?.mac ?? syntheticMac(r.id, port?.name ?? "eth0"),
      };
    }),
  };
}
