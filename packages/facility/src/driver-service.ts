/**
 * The driver as a gRPC service: the facility API, served to its commander over
 * mutual TLS, carried out by a `Driver` on the store. It registers the resources
 * it serves with the commander, and again periodically, so a restarted commander
 * learns them back.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  emulationParamsFromPb,
  emulationParamsToPb,
  type Fragment,
  fragmentFromPb,
  powerActionFromPb,
  WireError,
} from "@merge/materialize";
import * as pb from "@merge/proto";
import type { MzId } from "./backend.ts";
import type { TlsMaterial } from "./certs.ts";
import { FragmentError } from "./dag.ts";
import { checkMzId, type Driver, MzIdError } from "./driver.ts";
import { execChunkToPb, shellChunkToPb, shellInputFromPb } from "./exec-wire.ts";
import { serveTls, type TlsServer, tlsClient } from "./grpc.ts";
import { type NodeOps, NodeOpsError, type ShellInput } from "./node-ops.ts";
import { keys } from "./task.ts";
import { statusToPb } from "./wire.ts";

const OPS_CODE: Record<NodeOpsError["code"], Code> = {
  not_found: Code.NotFound,
  failed_precondition: Code.FailedPrecondition,
  invalid_argument: Code.InvalidArgument,
  unimplemented: Code.Unimplemented,
};

function invalid(err: unknown): never {
  if (err instanceof NodeOpsError) throw new ConnectError(err.message, OPS_CODE[err.code]);
  if (err instanceof WireError || err instanceof FragmentError || err instanceof MzIdError) {
    throw new ConnectError(err.message, Code.InvalidArgument);
  }
  throw err;
}

/** Node operations: refusals keep their codes; a backend failure is reported with its message (operator-facing, no secrets). */
export function opsFailed(err: unknown): never {
  if (err instanceof NodeOpsError || err instanceof MzIdError) invalid(err);
  if (err instanceof ConnectError) throw err;
  throw new ConnectError((err as Error).message ?? String(err), Code.Internal);
}

function decode(mzid: string, fragments: pb.Fragment[]): { mzid: MzId; fragments: Fragment[] } {
  try {
    return { mzid: checkMzId(mzid), fragments: fragments.map(fragmentFromPb) };
  } catch (err) {
    invalid(err);
  }
}

const TERMINAL = new Set([pb.MzStatus.ACTIVE, pb.MzStatus.DEMATERIALIZED]);

/**
 * `ops` carries out node power, emulation changes and exec; without it (a driver
 * whose backend runs in another process) those calls are refused as unimplemented.
 */
export function driverService(driver: Driver, ops?: NodeOps): ServiceImpl<typeof pb.FacilityService> {
  const nodeOps = () => {
    if (!ops)
      throw new ConnectError("this driver has no backend in its process for node operations", Code.Unimplemented);
    return ops;
  };
  const status = async (mzid: string) => {
    try {
      return statusToPb(mzid, await driver.status(checkMzId(mzid)));
    } catch (err) {
      invalid(err);
    }
  };
  return {
    async notifyIncoming(req) {
      await driver.notifyIncoming(decode(req.mzid, []).mzid).catch(invalid);
      return {};
    },
    async materialize(req) {
      const r = decode(req.mzid, req.fragments);
      await driver.materialize(r.mzid, r.fragments).catch(invalid);
      return { accepted: r.fragments.length };
    },
    async dematerialize(req) {
      const r = decode(req.mzid, req.fragments);
      await driver.dematerialize(r.mzid, r.fragments).catch(invalid);
      return { accepted: r.fragments.length };
    },
    async notifyTeardown(req) {
      await driver.notifyTeardown(decode(req.mzid, []).mzid).catch(invalid);
      return {};
    },
    status: (req) => status(req.mzid),
    async activity(req) {
      const mzid = decode(req.mzid, []).mzid;
      const nodes = await nodeOps().activity(mzid).catch(opsFailed);
      return create(pb.ActivityResponseSchema, {
        mzid,
        nodes: nodes.map((n) =>
          create(pb.NodeActivitySchema, {
            node: n.node,
            cpuSeconds: n.cpuSeconds,
            rxPackets: BigInt(n.rxPackets),
            txPackets: BigInt(n.txPackets),
            sshSessions: n.sshSessions,
            unmeasured: n.unmeasured ?? "",
          }),
        ),
        sampled: new Date().toISOString(),
      });
    },
    async nodePower(req, ctx) {
      const mzid = decode(req.mzid, []).mzid;
      const action = powerActionFromPb(req.action);
      if (!action)
        throw new ConnectError(
          "power action is unspecified: ON, OFF, CYCLE, SOFT_CYCLE or REIMAGE",
          Code.InvalidArgument,
        );
      await nodeOps().power(mzid, req.node, action, ctx.signal).catch(opsFailed);
      const s = await status(mzid);
      return { node: s.nodes.find((n) => n.node === req.node) };
    },
    async updateEmulation(req, ctx) {
      const mzid = decode(req.mzid, []).mzid;
      const params = await nodeOps()
        .emulation(mzid, req.link, emulationParamsFromPb(req.params), {
          ...(req.toward ? { toward: req.toward } : {}),
          signal: ctx.signal,
        })
        .catch(opsFailed);
      return { params: emulationParamsToPb(params) };
    },
    async attach(req) {
      const mzid = decode(req.mzid, []).mzid;
      const g = await nodeOps().attach(mzid, req.peer, req.publicKey).catch(opsFailed);
      return {
        publicKey: g.publicKey,
        endpointHost: "",
        endpointPort: g.port,
        address: g.address,
        infranet: g.infranet,
        nameserver: g.nameserver,
        search: g.search,
      };
    },
    async gatewayPeers(req) {
      const mzid = decode(req.mzid, []).mzid;
      const peers = req.peers.map((p) => ({
        peer: p.peer,
        publicKey: p.publicKey,
        endpoint: p.endpoint,
        address: p.address,
      }));
      await nodeOps().gatewayPeers(mzid, peers).catch(opsFailed);
      return {};
    },
    async detach(req) {
      const mzid = decode(req.mzid, []).mzid;
      return { detached: await nodeOps().detach(mzid, req.peer).catch(opsFailed) };
    },
    async *exec(req, ctx) {
      const mzid = decode(req.mzid, []).mzid;
      const out = await nodeOps().exec(mzid, req.node, req.argv, ctx.signal, req.timeoutMs).catch(opsFailed);
      try {
        for await (const c of out) yield execChunkToPb(c);
      } catch (err) {
        opsFailed(err);
      }
    },
    async *shell(reqs, ctx) {
      const it = reqs[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done || first.value.in.case !== "start")
        throw new ConnectError("shell: the first message must be start (mzid, node)", Code.InvalidArgument);
      const start = first.value.in.value;
      const mzid = decode(start.mzid, []).mzid;
      async function* input(): AsyncGenerator<ShellInput> {
        for (let r = await it.next(); !r.done; r = await it.next()) {
          const m = shellInputFromPb(r.value.in);
          if (m) yield m;
        }
      }
      const size = start.size ? { rows: start.size.rows, cols: start.size.cols } : undefined;
      const out = await nodeOps()
        .shell(
          mzid,
          start.node,
          { tty: start.tty, size, argv: start.argv, timeoutMs: start.timeoutMs },
          input(),
          ctx.signal,
        )
        .catch(opsFailed);
      try {
        for await (const c of out) yield shellChunkToPb(c);
      } catch (err) {
        opsFailed(err);
      }
    },
    hosts() {
      throw new ConnectError("a facility's hosts are the commander's to report, not a driver's", Code.Unimplemented);
    },
    health() {
      throw new ConnectError("a facility's health is the commander's to report, not a driver's", Code.Unimplemented);
    },
    storageKey() {
      throw new ConnectError(
        "a facility's storage key is the commander's to report, not a driver's",
        Code.Unimplemented,
      );
    },
    async *watchStatus(req, ctx) {
      const mzid = decode(req.mzid, []).mzid;
      let changed = true;
      let wake: () => void = () => {};
      const watch = await driver.store.watch(keys.mz(mzid), 0, () => {
        changed = true;
        wake();
      });
      const stop = () => wake();
      ctx.signal.addEventListener("abort", stop);
      try {
        let last = "";
        while (!ctx.signal.aborted) {
          if (changed) {
            changed = false;
            const s = await status(mzid);
            const sig = JSON.stringify([s.status, s.complete, s.errorCount, s.masked, s.actions, s.infrapodAddress]);
            if (sig !== last) {
              last = sig;
              yield create(pb.WatchStatusResponseSchema, { status: s });
            }
            if (TERMINAL.has(s.status)) return;
            // Coalesce bursts of changes (a thousand actions complete in a second).
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, 5000);
          });
        }
      } finally {
        ctx.signal.removeEventListener("abort", stop);
        await watch.cancel();
      }
    },
  };
}

export interface DriverServerOptions {
  driver: Driver;
  /** Node operations against the backend in this process (see driverService). */
  ops?: NodeOps;
  tls: TlsMaterial;
  /** Unique driver name. */
  name: string;
  /** Resource ids this driver serves. */
  resources: string[];
  /** The commander's registry URL; no registration when absent. */
  registry?: string;
  host?: string;
  port?: number;
  /** Re-register this often, ms (default 10,000). */
  heartbeatMs?: number;
  log?: (m: string) => void;
}

export interface DriverServer extends TlsServer {
  /** Register now (also done at start and on every heartbeat). */
  register(): Promise<void>;
}

export async function startDriverServer(opts: DriverServerOptions): Promise<DriverServer> {
  const server = await serveTls({
    tls: opts.tls,
    allow: ["commander"],
    host: opts.host,
    port: opts.port,
    routes: (router) => router.service(pb.FacilityService, driverService(opts.driver, opts.ops)),
  });
  const registry = opts.registry ? tlsClient(pb.RegistryService, opts.registry, opts.tls) : undefined;
  const register = async () => {
    if (!registry) return;
    await registry.register({ driver: opts.name, endpoint: server.url, resources: opts.resources });
  };
  let timer: NodeJS.Timeout | undefined;
  if (registry) {
    await register();
    timer = setInterval(() => {
      register().catch((err) => opts.log?.(`driver ${opts.name}: registration failed: ${(err as Error).message}`));
    }, opts.heartbeatMs ?? 10_000);
    timer.unref();
  }
  return {
    ...server,
    register,
    close: async () => {
      clearInterval(timer);
      await registry?.unregister({ driver: opts.name }).catch(() => {});
      await server.close();
    },
  };
}
