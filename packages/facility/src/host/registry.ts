/**
 * The facility side of host registration: host agents call RegisterHost over
 * mutual TLS (certificate role `host`, CN the host's name) when they start and
 * then as their heartbeat. The first call of an agent process writes its
 * record; every call keeps its liveness key's lease alive.
 */
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import * as pb from "@merge/proto";
import { type Store, updateJSON } from "@merge/store";
import { peerNameKey, serveTls, type TlsServer } from "../grpc.ts";
import { type HostRecord, hostKeys } from "./records.ts";

export interface HostRegistryOptions {
  store: Store;
  /** The facility's server certificate (the commander's). */
  tls: { ca: Buffer; cert: Buffer; key: Buffer };
  host?: string;
  port?: number;
  /** The hosts the facility model names; an agent of another name is refused. */
  hosts: readonly string[];
  /** Seconds an agent may stay silent before it is down (default HOST_LEASE_TTL; agents beat every 2 s). */
  leaseTtl?: number;
  /** A new agent process registered (first start, or a restart: `previous` is the record it replaces). */
  onRegister?: (record: HostRecord, previous: HostRecord | undefined) => void;
  log?: (m: string) => void;
}

/**
 * Seconds an agent's lease outlives its last beat. Long enough for a loaded
 * facility whose own event loop answers beats late (a 500-node materialization
 * on a busy machine); an agent that died is found sooner by its connections
 * (routed.ts: nothing listens at its endpoint any more).
 */
export const HOST_LEASE_TTL = 15;

export async function startHostRegistry(o: HostRegistryOptions): Promise<TlsServer> {
  const leases = new Map<string, string>();
  const ttl = o.leaseTtl ?? HOST_LEASE_TTL;
  const alive = async (name: string) => {
    const held = leases.get(name);
    if (held) {
      try {
        await o.store.keepAlive(held);
        return;
      } catch {
        // Expired while the agent was silent: it gets a new one.
      }
    }
    const lease = await o.store.grant(ttl);
    leases.set(name, lease);
    await o.store.put(hostKeys.aliveOf(name), new Date().toISOString(), { lease });
  };
  const impl: ServiceImpl<typeof pb.HostRegistryService> = {
    async registerHost(req, ctx) {
      const cn = ctx.values.get(peerNameKey);
      if (cn !== req.name)
        throw new ConnectError(
          `the certificate is host '${cn ?? "(none)"}''s; it may not register host '${req.name}'`,
          Code.PermissionDenied,
        );
      if (!o.hosts.includes(req.name))
        throw new ConnectError(
          `the facility model names no host '${req.name}' (hosts: ${o.hosts.join(", ") || "none"})`,
          Code.NotFound,
        );
      if (!req.endpoint || !req.underlay)
        throw new ConnectError(`host '${req.name}': endpoint and underlay address are required`, Code.InvalidArgument);
      const kv = await o.store.get(hostKeys.host(req.name));
      const previous = kv ? (JSON.parse(kv.value) as HostRecord) : undefined;
      const same =
        previous &&
        previous.pid === req.pid &&
        previous.started === req.started &&
        previous.endpoint === req.endpoint &&
        previous.underlay === req.underlay;
      let record = previous;
      if (!same || !previous) {
        record = {
          name: req.name,
          endpoint: req.endpoint,
          underlay: req.underlay,
          cores: req.cores,
          memory: req.memory,
          disk: req.disk,
          pid: req.pid,
          started: req.started,
          registered: new Date().toISOString(),
          drained: previous?.drained ?? false,
          ...measuredFree(req),
        };
        await o.store.put(hostKeys.host(req.name), JSON.stringify(record));
        o.log?.(
          `host ${req.name}: agent ${req.pid} registered at ${req.endpoint}, underlay ${req.underlay}, ${req.cores} cores`,
        );
      } else if (movedFree(previous, req)) {
        // The same agent beating: its record changes only when what is free moved noticeably.
        // Compare-and-swap: an operator's drain at the same time is kept.
        const r = await updateJSON<HostRecord>(
          o.store,
          hostKeys.host(req.name),
          (cur) => cur && { ...cur, disk: req.disk, ...measuredFree(req) },
          { maxAttempts: 5, what: `host '${req.name}'` },
        );
        record = r.value ?? record;
      }
      await alive(req.name);
      if (!same && record) o.onRegister?.(record, previous);
      return { state: record?.drained ? "drained" : "up" };
    },
  };
  return serveTls({
    tls: o.tls,
    allow: ["host"],
    host: o.host,
    port: o.port ?? 0,
    routes: (router) => router.service(pb.HostRegistryService, impl),
  });
}

const MiB = 2 ** 20;

function measuredFree(req: pb.RegisterHostRequest): Pick<HostRecord, "coresFree" | "memoryFree" | "measured"> {
  return { coresFree: req.coresFree, memoryFree: req.memoryFree, measured: new Date().toISOString() };
}

/** Free memory or disk moved by more than 16 MiB and 2 %, or free cores by a whole core (the load moves often). */
function movedFree(r: HostRecord, req: pb.RegisterHostRequest): boolean {
  const moved = (a: number, b: number) => Math.abs(a - b) > Math.max(16 * MiB, 0.02 * Math.max(a, b));
  return (
    moved(r.memoryFree ?? 0, req.memoryFree) ||
    moved(r.disk, req.disk) ||
    Math.abs((r.coresFree ?? 0) - req.coresFree) >= 1
  );
}
