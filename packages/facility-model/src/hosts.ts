/**
 * Which host carries which resource. A facility is one or more machines, each
 * running a host agent; the resource model says on which of them a resource's
 * data plane lives (`Resource.host`: a testbed node's containers, a
 * hypervisor's VMs, an emulator's halves of links, an infrapod server's
 * infrapods). A resource naming no host is on the facility's own machine, so a
 * model of one machine needs no host at all.
 */
import type { Facility, Resource } from "@merge/xir";

/** Host names: usable in file names and kernel object names. */
export const HOST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** The host carrying a resource; `undefined`: the facility's own machine. */
export function hostOf(facility: Facility, resource: string): string | undefined {
  return facility.resources.find((r) => r.id === resource)?.host;
}

/** Every host the model names, sorted. */
export function facilityHosts(facility: Facility): string[] {
  return [...new Set(facility.resources.flatMap((r) => (r.host ? [r.host] : [])))].sort();
}

/** Resources carrying experiment work on a host: what `cog host show` lists for it. */
export function resourcesOn(facility: Facility, host: string | undefined): Resource[] {
  return facility.resources.filter((r) => r.kind !== "switch" && r.host === host);
}

/**
 * The model with its resources spread over these hosts: testbed nodes round
 * robin in model order, infrastructure (infrapod servers, emulators, storage,
 * gateways) on the first host, switches on none (they are the fabric between
 * hosts). How `npm start -- --hosts 3` and the multi-host benchmarks place
 * a sample facility; an operator names hosts in the model instead.
 */
export function spreadOverHosts(facility: Facility, hosts: readonly string[]): Facility {
  if (hosts.length === 0) throw new Error("spreadOverHosts: name at least one host");
  for (const h of hosts) {
    if (!HOST_NAME_RE.test(h)) throw new Error(`host name '${h}' is not valid: expected ${HOST_NAME_RE}`);
  }
  if (new Set(hosts).size !== hosts.length) throw new Error(`host names repeat: ${hosts.join(", ")}`);
  let next = 0;
  const resources = facility.resources.map((r): Resource => {
    if (r.kind === "switch") {
      const { host: _, ...rest } = r;
      return rest;
    }
    const host = r.kind === "node" ? (hosts[next++ % hosts.length] as string) : (hosts[0] as string);
    return { ...r, host };
  });
  return { ...facility, resources };
}
