/**
 * A whole facility in one process, the single-machine default: commander, one
 * driver serving every resource of the facility model, and a rex worker, over
 * one store and one backend. `daemon.ts facility` runs it as a process; a
 * start script can call it in-process (the portal ↔ commander boundary stays a
 * network boundary over loopback either way).
 */
import { create } from "@bufbuild/protobuf";
import * as pb from "@merge/proto";
import type { Store } from "@merge/store";
import type { Facility } from "@merge/xir";
import type { Backend, HarborSpec } from "./backend.ts";
import { certFiles, loadTls } from "./certs.ts";
import { startCommander } from "./commander.ts";
import { Driver } from "./driver.ts";
import { startDriverServer } from "./driver-service.ts";
import { facilityHealth } from "./health.ts";
import { reconcileHost } from "./host/reconcile.ts";
import { hostStatuses } from "./host/records.ts";
import { startHostRegistry } from "./host/registry.ts";
import { HostRoutedBackend } from "./host/routed.ts";
import { FacilityMetrics, serveMetrics } from "./metrics.ts";
import { NodeOps } from "./node-ops.ts";
import { Rex, type RexEvent } from "./rex.ts";
import { keys } from "./task.ts";

/** Rex's actions at once on a facility of many hosts (a 500-node materialization on four hosts in one go). */
const ROUTED_CONCURRENCY = 1024;

export interface FacilityOptions {
  store: Store;
  backend: Backend;
  model: Facility;
  /** Directory made by `cog certs make` (commander and driver certificates). */
  certs: string;
  host?: string;
  /** Facility API port for portals (0: any free port). */
  port?: number;
  registryPort?: number;
  driverPort?: number;
  /** Port of the host registry, where the host agents of a model naming hosts register (0: any free port). */
  hostRegistryPort?: number;
  /** Where the host registry listens, when the agents reach the facility elsewhere than `host` (a fabric's address). */
  hostRegistryHost?: string;
  /** The facility's own machine's underlay address (its VTEP), when its networks span other hosts. */
  underlay?: string;
  /** Seconds a host agent may stay silent before its host is down (default 6). */
  hostLeaseTtl?: number;
  /** Milliseconds one call to a host agent may take before it fails naming the host (default 120 s: host/deadline.ts). */
  agentCallTimeoutMs?: number;
  rex?: { concurrency?: number; leaseTtl?: number; onEvent?: (e: RexEvent) => void };
  /**
   * Serve Prometheus metrics (metrics.ts) on plain HTTP at this port (0: any free port) of
   * `metricsHost` (default 127.0.0.1); undefined: no metrics listener.
   */
  metricsPort?: number;
  metricsHost?: string;
  /** The holding network for unallocated nodes, brought up before anything else. */
  harbor?: HarborSpec;
  /** The key this facility mounts the portal's storage server with, for the portal to authorize (StorageKey). */
  storageKey?: () => { publicKey: string; mounted: boolean } | undefined;
  log?: (m: string) => void;
}

export interface RunningFacility {
  /** The commander's facility API URL, for the portal's facility record. */
  url: string;
  registryUrl: string;
  /** Where host agents register; present when the model names hosts. */
  hostRegistryUrl?: string;
  rex: Rex;
  /** The facility's metrics; `metricsUrl` when they are served. */
  metrics: FacilityMetrics;
  metricsUrl?: string;
  /** Stops rex (running actions finish), the driver and the commander; the store and backend stay open. */
  close(): Promise<void>;
}

/** A backend holding kernel objects that can outlive the facility (the linux one). */
interface Reconciling {
  reconcile(live: Iterable<string>, log?: (m: string) => void): Promise<string[]>;
}

function reconciling(b: Backend): Reconciling | undefined {
  const r = (b as unknown as Partial<Reconciling>).reconcile;
  return typeof r === "function" ? (b as unknown as Reconciling) : undefined;
}

/**
 * Sweep what the backend holds of materializations the store no longer has (a
 * crash, a reset store); backends without such state are left alone. Returns
 * what was swept. Run before rex starts.
 */
export async function reconcileBackend(store: Store, backend: Backend, log?: (m: string) => void): Promise<string[]> {
  const r = reconciling(backend);
  if (!r) return [];
  const live = (await new Driver(store).list()).map((i) => i.mzid);
  const swept = await r.reconcile(live, log);
  if (swept.length) log?.(`facility: swept ${swept.length} materializations not in the store: ${swept.join(", ")}`);
  return swept;
}

/** The hosts a facility model names, sorted (none: everything is on the facility's own machine). */
export function modelHosts(model: Facility): string[] {
  return [...new Set(model.resources.flatMap((r) => (r.host ? [r.host] : [])))].sort();
}

export async function startFacility(o: FacilityOptions): Promise<RunningFacility> {
  // Before anything runs: what the backend holds of materializations the store no longer has goes.
  await reconcileBackend(o.store, o.backend, o.log);
  const hosts = modelHosts(o.model);
  const hostOf = (id: string) => o.model.resources.find((r) => r.id === id)?.host;
  // A model naming hosts: rex's calls go to each host's agent, the facility's own machine's to o.backend.
  const routed = hosts.length
    ? new HostRoutedBackend({
        local: o.backend,
        store: o.store,
        tls: loadTls(certFiles(o.certs, "commander")),
        hostOf,
        natOf: (host) => o.model.hosts?.[host]?.nat,
        ...(o.underlay ? { underlay: o.underlay } : {}),
        ...(o.agentCallTimeoutMs ? { callTimeoutMs: o.agentCallTimeoutMs } : {}),
        ...(o.hostLeaseTtl ? { leaseTtl: o.hostLeaseTtl } : {}),
      })
    : undefined;
  const backend: Backend = routed ?? o.backend;
  const hostRegistry = hosts.length
    ? await startHostRegistry({
        store: o.store,
        tls: loadTls(certFiles(o.certs, "commander")),
        host: o.hostRegistryHost ?? o.host,
        port: o.hostRegistryPort ?? 0,
        hosts,
        ...(o.hostLeaseTtl ? { leaseTtl: o.hostLeaseTtl } : {}),
        log: o.log,
        // A new agent process (first start or restart) brings its host to the stored desired state.
        onRegister: (record) => {
          if (!routed) return;
          routed.hostsChanged();
          reconcileHost({ store: o.store, backend: routed, host: record.name, hostOf, log: o.log }).catch((e: Error) =>
            o.log?.(`reconcile ${record.name}: ${e.message}`),
          );
          if (o.harbor)
            routed
              .harborJoined(o.harbor, record.name, { signal: new AbortController().signal, log: (m) => o.log?.(m) })
              .catch((e: Error) => o.log?.(`harbor on ${record.name}: ${e.message}`));
        },
      })
    : undefined;
  if (o.harbor) {
    // On a facility of many hosts, each host's part of the harbor (routed.ts); the ones whose agents
    // are not registered yet get theirs when they register.
    await backend.harborEnsure(o.harbor, { signal: new AbortController().signal, log: (m) => o.log?.(m) });
    await o.store.put(keys.harbor(), JSON.stringify(o.harbor));
  }
  const metrics = new FacilityMetrics(o.store);
  const commander = await startCommander({
    interceptors: [metrics.interceptor],
    tls: loadTls(certFiles(o.certs, "commander")),
    host: o.host,
    port: o.port ?? 0,
    registryPort: o.registryPort ?? 0,
    hosts: async () => (await hostStatuses(o.store, o.model)).map((h) => create(pb.HostStatusSchema, h)),
    health: async () => {
      const h = await facilityHealth(o.store, { certs: o.certs });
      return { failed: h.failed, workers: h.workers.length, warnings: h.warnings };
    },
    ...(o.storageKey ? { storageKey: o.storageKey } : {}),
    log: o.log,
  });
  const driver = await startDriverServer({
    driver: new Driver(o.store),
    // The backend lives in this process: the driver carries out power, emulation and exec on it.
    ops: new NodeOps(o.store, backend, o.log),
    tls: loadTls(certFiles(o.certs, "driver")),
    name: `${o.model.name}-driver`,
    resources: o.model.resources.map((r) => r.id),
    registry: commander.registry.url,
    host: o.host,
    port: o.driverPort ?? 0,
    log: o.log,
  }).catch(async (err) => {
    await commander.close();
    await hostRegistry?.close();
    throw err;
  });
  const rex = new Rex({
    store: o.store,
    backend,
    log: o.log,
    // Across hosts an action mostly waits on its agent, and an agent folds the calls it has at once into
    // shared batches (one iproute2 process, one container starter; for teardown one /proc scan, one kill
    // wait, one namespace deletion batch: linux/recycle.ts): the more it has, the fewer it runs. Teardown
    // too, since its recycles batch (500 nodes on four hosts: 10.5 s at 64 at once, 8.1 s at 1,024).
    ...(routed ? { concurrency: ROUTED_CONCURRENCY } : {}),
    ...o.rex,
    onEvent: (e) => {
      metrics.rexEvent(e);
      o.rex?.onEvent?.(e);
    },
  });
  await rex.start();
  const served =
    o.metricsPort === undefined
      ? undefined
      : await serveMetrics(metrics.registry, { host: o.metricsHost, port: o.metricsPort });
  return {
    url: commander.facility.url,
    registryUrl: commander.registry.url,
    ...(hostRegistry ? { hostRegistryUrl: hostRegistry.url } : {}),
    rex,
    metrics,
    metricsUrl: served?.url,
    close: async () => {
      await served?.close();
      await rex.stop();
      // Whatever agents still have of ours (a reconcile, a harbor part) ends with us, hosts cut off or not.
      routed?.disconnect();
      await driver.close();
      await commander.close();
      await hostRegistry?.close();
    },
  };
}
