/**
 * The commander: the facility's front door. It serves the facility API to
 * portals (client certificate with role `portal`, mutual TLS) and a registry to
 * drivers (role `driver`). It carries out nothing itself: each request is split
 * by resource id to the drivers registered for those resources; fragments for
 * resources nobody serves, and drivers that fail, come back as errors.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type Client,
  Code,
  ConnectError,
  type ConnectRouter,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import * as pb from "@merge/proto";
import type { CertRole, TlsMaterial } from "./certs.ts";
import { serveTls, type TlsServer, tlsClient } from "./grpc.ts";

interface Registration {
  name: string;
  endpoint: string;
  resources: Set<string>;
  client: Client<typeof pb.FacilityService>;
}

export interface CommanderOptions {
  tls: TlsMaterial;
  host?: string;
  /** Facility API port for portals (0: any free port). */
  port?: number;
  /** Registry port for drivers (0: any free port). */
  registryPort?: number;
  /** Interceptors on both servers (metrics.ts counts and times calls). */
  interceptors?: Interceptor[];
  /** The facility's hosts and their state (a facility of many hosts); none when absent. */
  hosts?: () => Promise<pb.HostStatus[]>;
  /** The facility's health (health.ts) for the portal's operations view; empty when absent. */
  health?: () => Promise<MessageInitShape<typeof pb.HealthResponseSchema>>;
  /** The key this facility mounts the portal's storage with (storage-remote.ts); none when absent. */
  storageKey?: () => { publicKey: string; mounted: boolean } | undefined;
  log?: (m: string) => void;
}

export interface Commander {
  facility: TlsServer;
  registry: TlsServer;
  drivers(): { name: string; endpoint: string; resources: number }[];
  close(): Promise<void>;
}

const SEVERITY: pb.MzStatus[] = [
  pb.MzStatus.DEMATERIALIZED,
  pb.MzStatus.ACTIVE,
  pb.MzStatus.INCOMING,
  pb.MzStatus.MATERIALIZING,
  pb.MzStatus.DEMATERIALIZING,
  pb.MzStatus.ERROR,
];

/** One status from several drivers' parts: lists joined, the most pressing state wins. */
export function mergeStatus(mzid: string, parts: pb.StatusResponse[], errors: pb.FragmentError[]): pb.StatusResponse {
  const out = create(pb.StatusResponseSchema, { mzid, status: pb.MzStatus.DEMATERIALIZED, errors });
  for (const p of parts) {
    if (SEVERITY.indexOf(p.status) > SEVERITY.indexOf(out.status)) out.status = p.status;
    out.infrapodAddress ||= p.infrapodAddress;
    out.actions += p.actions;
    out.complete += p.complete;
    out.errorCount += p.errorCount;
    out.masked += p.masked;
    out.nodes.push(...p.nodes);
    out.links.push(...p.links);
    out.tasks.push(...p.tasks);
    out.failed.push(...p.failed);
    out.errors.push(...p.errors);
    out.gateways.push(...p.gateways);
  }
  if (errors.length && out.status !== pb.MzStatus.DEMATERIALIZED) out.status = pb.MzStatus.ERROR;
  return out;
}

export async function startCommander(opts: CommanderOptions): Promise<Commander> {
  const drivers = new Map<string, Registration>();
  /** resource id → drivers serving it */
  const table = new Map<string, Set<Registration>>();

  const unregister = (name: string) => {
    const r = drivers.get(name);
    if (!r) return;
    for (const res of r.resources) table.get(res)?.delete(r);
    drivers.delete(name);
  };

  const registry: ServiceImpl<typeof pb.RegistryService> = {
    register(req) {
      if (!req.driver) throw new ConnectError("driver name is empty", Code.InvalidArgument);
      if (!/^https:\/\//.test(req.endpoint)) {
        throw new ConnectError(`driver endpoint '${req.endpoint}' is not an https:// URL`, Code.InvalidArgument);
      }
      const prev = drivers.get(req.driver);
      if (prev && prev.endpoint === req.endpoint && prev.resources.size === req.resources.length) {
        if (req.resources.every((r) => prev.resources.has(r))) return { resources: prev.resources.size };
      }
      unregister(req.driver);
      const reg: Registration = {
        name: req.driver,
        endpoint: req.endpoint,
        resources: new Set(req.resources),
        client: tlsClient(pb.FacilityService, req.endpoint, opts.tls),
      };
      drivers.set(reg.name, reg);
      for (const res of reg.resources) {
        let s = table.get(res);
        if (!s) {
          s = new Set();
          table.set(res, s);
        }
        s.add(reg);
      }
      opts.log?.(`commander: driver ${reg.name} at ${reg.endpoint} serves ${reg.resources.size} resources`);
      return { resources: reg.resources.size };
    },
    unregister(req) {
      unregister(req.driver);
      return {};
    },
  };

  /** Fragments grouped by driver; the ones no driver serves become errors. */
  const split = (fragments: pb.Fragment[]) => {
    const byDriver = new Map<Registration, pb.Fragment[]>();
    const errors: pb.FragmentError[] = [];
    for (const f of fragments) {
      const ds = table.get(f.resource);
      if (!ds?.size) {
        errors.push(
          create(pb.FragmentErrorSchema, {
            resource: f.resource,
            op: f.op.case ?? "",
            message: `no driver serves resource '${f.resource}'`,
          }),
        );
        continue;
      }
      for (const d of ds) {
        const list = byDriver.get(d) ?? [];
        list.push(f);
        byDriver.set(d, list);
      }
    }
    return { byDriver, errors };
  };

  /** Drivers a resource list routes to (all drivers when the list is empty). */
  const route = (resources: string[]) => {
    if (!resources.length) return { targets: [...drivers.values()], errors: [] as pb.FragmentError[] };
    const targets = new Set<Registration>();
    const errors: pb.FragmentError[] = [];
    for (const r of resources) {
      const ds = table.get(r);
      if (!ds?.size) {
        errors.push(create(pb.FragmentErrorSchema, { resource: r, message: `no driver serves resource '${r}'` }));
      } else for (const d of ds) targets.add(d);
    }
    return { targets: [...targets], errors };
  };

  const driverError = (d: Registration, err: unknown, fragments: pb.Fragment[] = []) => {
    const message = `driver ${d.name}: ${err instanceof ConnectError ? err.rawMessage : (err as Error).message}`;
    if (!fragments.length) return [create(pb.FragmentErrorSchema, { message })];
    return fragments.map((f) => create(pb.FragmentErrorSchema, { resource: f.resource, op: f.op.case ?? "", message }));
  };

  const delegate = async (
    mzid: string,
    fragments: pb.Fragment[],
    call: (c: Client<typeof pb.FacilityService>, fs: pb.Fragment[]) => Promise<{ accepted: number }>,
  ) => {
    const { byDriver, errors } = split(fragments);
    let accepted = 0;
    await Promise.all(
      [...byDriver].map(async ([d, fs]) => {
        try {
          accepted += (await call(d.client, fs)).accepted;
        } catch (err) {
          errors.push(...driverError(d, err, fs));
        }
      }),
    );
    opts.log?.(`commander: ${mzid}: ${accepted} fragments accepted, ${errors.length} errors`);
    return { accepted, errors };
  };

  const notify = async (resources: string[], call: (c: Client<typeof pb.FacilityService>) => Promise<unknown>) => {
    const { targets, errors } = route(resources);
    await Promise.all(
      targets.map(async (d) => {
        try {
          await call(d.client);
        } catch (err) {
          errors.push(...driverError(d, err));
        }
      }),
    );
    return { errors };
  };

  const status = async (mzid: string, resources: string[]) => {
    const { targets, errors } = route(resources);
    const parts: pb.StatusResponse[] = [];
    await Promise.all(
      targets.map(async (d) => {
        try {
          parts.push(await d.client.status({ mzid }));
        } catch (err) {
          errors.push(...driverError(d, err));
        }
      }),
    );
    return mergeStatus(mzid, parts, errors);
  };

  /** Every routed driver's nodes; a driver that does not hold the materialization has none to add. */
  const activity = async (req: pb.ActivityRequest, signal: AbortSignal) => {
    const { targets } = route(req.resources);
    const nodes: pb.NodeActivity[] = [];
    const failures: string[] = [];
    await Promise.all(
      targets.map(async (d) => {
        try {
          nodes.push(...(await d.client.activity({ mzid: req.mzid }, { signal })).nodes);
        } catch (err) {
          if (!(err instanceof ConnectError && err.code === Code.NotFound))
            failures.push(driverError(d, err)[0]!.message);
        }
      }),
    );
    if (failures.length && !nodes.length) throw new ConnectError(failures.join("; "), Code.Unavailable);
    return create(pb.ActivityResponseSchema, { mzid: req.mzid, nodes, sampled: new Date().toISOString() });
  };

  /** The driver for a request about one resource (node operations go to exactly one). */
  const one = (resource: string) => {
    const d = [...(table.get(resource) ?? [])][0];
    if (!d) throw new ConnectError(`no driver serves resource '${resource}'`, Code.NotFound);
    return d;
  };

  const facility: ServiceImpl<typeof pb.FacilityService> = {
    notifyIncoming: (req) => notify(req.resources, (c) => c.notifyIncoming({ mzid: req.mzid })),
    materialize: (req) =>
      delegate(req.mzid, req.fragments, (c, fragments) => c.materialize({ mzid: req.mzid, fragments })),
    dematerialize: (req) =>
      delegate(req.mzid, req.fragments, (c, fragments) => c.dematerialize({ mzid: req.mzid, fragments })),
    notifyTeardown: (req) => notify(req.resources, (c) => c.notifyTeardown({ mzid: req.mzid })),
    status: (req) => status(req.mzid, req.resources),
    activity: (req, ctx) => activity(req, ctx.signal),
    nodePower: (req, ctx) => one(req.resource).client.nodePower(req, { signal: ctx.signal }),
    updateEmulation: (req, ctx) => one(req.resource).client.updateEmulation(req, { signal: ctx.signal }),
    attach: (req, ctx) => one(req.resource).client.attach(req, { signal: ctx.signal }),
    detach: (req, ctx) => one(req.resource).client.detach(req, { signal: ctx.signal }),
    gatewayPeers: (req, ctx) => one(req.resource).client.gatewayPeers(req, { signal: ctx.signal }),
    async *exec(req, ctx) {
      yield* one(req.resource).client.exec(req, { signal: ctx.signal });
    },
    async *shell(reqs, ctx) {
      // The first message names the node's resource, which picks the driver; the rest passes through.
      const it = reqs[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done || first.value.in.case !== "start")
        throw new ConnectError("shell: the first message must be start (mzid, resource, node)", Code.InvalidArgument);
      const d = one(first.value.in.value.resource);
      async function* all() {
        yield first.value as pb.ShellRequest;
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
      }
      yield* d.client.shell(all(), { signal: ctx.signal });
    },
    hosts: async () => ({ hosts: (await opts.hosts?.()) ?? [] }),
    health: async () => (await opts.health?.()) ?? {},
    storageKey: async () => opts.storageKey?.() ?? {},
    async *watchStatus(req, ctx) {
      let last = "";
      while (!ctx.signal.aborted) {
        const s = await status(req.mzid, req.resources);
        const sig = JSON.stringify([s.status, s.complete, s.errorCount, s.masked, s.actions, s.errors.length]);
        if (sig !== last) {
          last = sig;
          yield create(pb.WatchStatusResponseSchema, { status: s });
        }
        if (s.status === pb.MzStatus.ACTIVE || s.status === pb.MzStatus.DEMATERIALIZED) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };

  // Two servers on one certificate: each its own port, service and the one role that may call it.
  const serve = (allow: CertRole, port: number | undefined, routes: (router: ConnectRouter) => void) =>
    serveTls({ tls: opts.tls, allow: [allow], host: opts.host, port, routes, interceptors: opts.interceptors });
  const facilityServer = await serve("portal", opts.port, (router) => router.service(pb.FacilityService, facility));
  const registryServer = await serve("driver", opts.registryPort, (router) =>
    router.service(pb.RegistryService, registry),
  );
  return {
    facility: facilityServer,
    registry: registryServer,
    drivers: () =>
      [...drivers.values()].map((d) => ({ name: d.name, endpoint: d.endpoint, resources: d.resources.size })),
    close: async () => {
      await Promise.all([facilityServer.close(), registryServer.close()]);
    },
  };
}
