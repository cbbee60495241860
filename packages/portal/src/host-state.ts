/**
 * A facility of many hosts reports each host's state (FacilityService.Hosts:
 * up, down, drained), which the materializations room polls and keeps here,
 * one record per facility (`keys.facilityHosts`), so every portal replica's
 * realizer reads the same. Realization leaves out the resources of hosts that
 * are not up: a drained host gets no new nodes, a down one none either, and a
 * realization that fails for want of them says which host is why.
 */
import type { Store } from "@merge/store";
import type { ResourceInternet } from "@merge/xir";
import { keys } from "./objects.ts";
import { keepResources } from "./pool.ts";
import type { MeasuredRoom } from "./realization.ts";

export interface HostState {
  name: string;
  /** up | down | drained | drained, down */
  state: string;
  cores: number;
  memory: number;
  disk: number;
  /** The facility model's resources on the host. */
  resources: string[];
  /**
   * Free now as the host's agent measured it (cores not busy, bytes of memory
   * and disk), and when: the realization engine places no virtual node on the
   * host's resources beyond the memory and disk free here. Absent: never measured.
   */
  free?: { cores: number; memory: number; disk: number };
  measured?: string;
}

export interface FacilityHosts {
  facility: string;
  /** ISO time the facility answered. */
  observed: string;
  hosts: HostState[];
}

export async function readFacilityHosts(store: Store): Promise<FacilityHosts[]> {
  return (await store.range(keys.allFacilityHosts())).map((kv) => JSON.parse(kv.value) as FacilityHosts);
}

/** Store what a facility reported, unless it is what is stored already (no write, no watcher woken). */
export async function putFacilityHosts(store: Store, f: FacilityHosts): Promise<boolean> {
  const key = keys.facilityHosts(f.facility);
  const had = await store.get(key);
  const same =
    had !== undefined && JSON.stringify((JSON.parse(had.value) as FacilityHosts).hosts) === JSON.stringify(f.hosts);
  if (same) return false;
  await store.put(key, JSON.stringify(f));
  return true;
}

export interface Unusable {
  /** `facility/resource` of every resource on a host that is not up. */
  excluded: Set<string>;
  /** One line per such host, in the user's terms, for a realization's diagnostics. */
  reasons: string[];
}

const SHOWN = 6;

/** The resources realization must leave out, and why. */
export function unusableResources(reports: readonly FacilityHosts[]): Unusable {
  const excluded = new Set<string>();
  const reasons: string[] = [];
  for (const f of reports) {
    for (const h of f.hosts) {
      if (h.state === "up" || h.resources.length === 0) continue;
      for (const r of h.resources) excluded.add(`${f.facility}/${r}`);
      const shown = h.resources.slice(0, SHOWN).join(", ");
      const more = h.resources.length > SHOWN ? ` and ${h.resources.length - SHOWN} more` : "";
      reasons.push(
        `host ${h.name} is ${h.state} (facility ${f.facility}): its resources ${shown}${more} are left out of realization`,
      );
    }
  }
  return { excluded, reasons };
}

/** The resource internet without the resources of hosts that are not up. */
export function withoutUnusable(internet: ResourceInternet, excluded: ReadonlySet<string>): ResourceInternet {
  return excluded.size ? keepResources(internet, (f, r) => !excluded.has(`${f.name}/${r.id}`)) : internet;
}

/** What the agents of hosts that are up measured free, per host, for the realization engine. */
export function measuredRooms(reports: readonly FacilityHosts[]): MeasuredRoom[] {
  return reports.flatMap((f) =>
    f.hosts.flatMap((h) =>
      h.state === "up" && h.free && h.resources.length
        ? [{ facility: f.facility, host: h.name, resources: h.resources, ...h.free }]
        : [],
    ),
  );
}
