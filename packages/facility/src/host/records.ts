/**
 * The facility's hosts in its store. A host agent's registration is a record
 * (`/cogs/hosts/<name>`: where the agent listens, its underlay address, what
 * it measured, whether an operator drained it) and a liveness key on a store
 * lease that the agent's heartbeats keep alive (`/cogs/hostalive/<name>`): an
 * agent that stops beating (killed, its host gone) is down within the lease's
 * time, in every process that reads the store (`cog host list`).
 */
import { type Store, updateJSON } from "@merge/store";

const ROOT = "/cogs/";
const enc = encodeURIComponent;

export const hostKeys = {
  hosts: `${ROOT}hosts/`,
  host: (name: string) => `${ROOT}hosts/${enc(name)}`,
  alive: `${ROOT}hostalive/`,
  aliveOf: (name: string) => `${ROOT}hostalive/${enc(name)}`,
};

export interface HostRecord {
  name: string;
  /** The agent's HostAgentService URL. */
  endpoint: string;
  /** Underlay address (its VXLAN tunnel endpoint). */
  underlay: string;
  /** Measured on the host. */
  cores: number;
  memory: number;
  disk: number;
  /** The agent process and when it started: a change means the agent restarted. */
  pid: number;
  started: string;
  /** ISO time of the registration (a new agent process registers anew). */
  registered: string;
  /** A drained host gets no new nodes; what it carries stays. */
  drained: boolean;
  /** Free now as the agent last measured it (cores not busy, memory available), and when (ISO). */
  coresFree?: number;
  memoryFree?: number;
  measured?: string;
}

export type HostState = "up" | "down" | "drained" | "drained, down";

export interface HostView extends HostRecord {
  alive: boolean;
  state: HostState;
}

function stateOf(r: HostRecord, alive: boolean): HostState {
  if (r.drained) return alive ? "drained" : "drained, down";
  return alive ? "up" : "down";
}

/** Every registered host, with whether its agent is alive, sorted by name. */
export async function listHosts(store: Store): Promise<HostView[]> {
  const [records, alive] = await Promise.all([store.range(hostKeys.hosts), store.range(hostKeys.alive)]);
  const live = new Set(alive.map((kv) => decodeURIComponent(kv.key.slice(hostKeys.alive.length))));
  return records
    .map((kv) => JSON.parse(kv.value) as HostRecord)
    .map((r) => ({ ...r, alive: live.has(r.name), state: stateOf(r, live.has(r.name)) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export async function readHost(store: Store, name: string): Promise<HostView | undefined> {
  return (await listHosts(store)).find((h) => h.name === name);
}

/** Drain (no new nodes) or undrain a registered host; throws naming the hosts there are. */
export async function setDrained(store: Store, name: string, drained: boolean): Promise<HostRecord> {
  const r = await updateJSON<HostRecord>(store, hostKeys.host(name), (cur) => cur && { ...cur, drained }, {
    maxAttempts: 10,
    what: `host '${name}'`,
  });
  if (r.value === undefined) {
    const names = (await listHosts(store)).map((h) => h.name);
    throw new Error(`no host '${name}' is registered${names.length ? ` (hosts: ${names.join(", ")})` : ""}`);
  }
  return r.value;
}

/** A host as the facility reports it to portals (FacilityService.Hosts). */
export interface HostStatusView {
  name: string;
  state: HostState;
  cores: number;
  memory: number;
  disk: number;
  underlay: string;
  /** The model's resources on the host. */
  resources: string[];
  /** Free now, as its agent last measured it (0 and "" when never). */
  coresFree: number;
  memoryFree: number;
  measured: string;
}

/**
 * Every host the model names, with its state: a host whose agent never
 * registered is down (its resources are no more usable than a dead host's).
 */
export async function hostStatuses(
  store: Store,
  model: { resources: readonly { id: string; host?: string }[] },
): Promise<HostStatusView[]> {
  const byHost = new Map<string, string[]>();
  for (const r of model.resources) if (r.host) byHost.set(r.host, [...(byHost.get(r.host) ?? []), r.id]);
  const views = new Map((await listHosts(store)).map((h) => [h.name, h]));
  return [...byHost]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, resources]) => {
      const v = views.get(name);
      const free = { coresFree: v?.coresFree ?? 0, memoryFree: v?.memoryFree ?? 0, measured: v?.measured ?? "" };
      return v
        ? {
            name,
            state: v.state,
            cores: v.cores,
            memory: v.memory,
            disk: v.disk,
            underlay: v.underlay,
            resources,
            ...free,
          }
        : { name, state: "down" as const, cores: 0, memory: 0, disk: 0, underlay: "", resources, ...free };
    });
}
