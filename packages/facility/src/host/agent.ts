/**
 * The host agent: one process per machine of a facility (`cog host agent`).
 * It registers with its facility over mutual TLS, reports what it measured
 * (cores, memory, disk) and its underlay address, keeps its registration alive
 * with a heartbeat, and carries out the backend operations rex routes to it
 * for the resources placed on its host (`Perform`: a Backend method and its
 * plain-data arguments). Only the facility's rex (certificate role
 * `commander`) may call it.
 */
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import * as pb from "@merge/proto";
import type { ActionContext, Backend } from "../backend.ts";
import { opsFailed } from "../driver-service.ts";
import { execChunkToPb, shellChunkToPb, shellInputFromPb } from "../exec-wire.ts";
import { serveTls } from "../grpc.ts";
import { execIn, localActivity, type ShellInput, shellIn } from "../node-ops.ts";
import { startHeartbeat } from "./heartbeat.ts";

/** Every Backend call an agent performs: the method and its arguments (the context aside). */
export const AGENT_METHODS = {
  infrapodEnclave: (b, [spec], ctx) => b.infrapodEnclave(spec as never, ctx),
  infrapodServices: (b, [spec], ctx) => b.infrapodServices(spec as never, ctx),
  infrapodEntries: (b, [spec, entries], ctx) => b.infrapodEntries(spec as never, entries as never, ctx),
  infrapodDestroy: (b, [spec], ctx) => b.infrapodDestroy(spec as never, ctx),
  infrapodNode: async (b, [spec, present], ctx) => {
    if (!b.infrapodNode) throw new Error(`the ${b.name} backend carries no nodes of other hosts`);
    await b.infrapodNode(spec as never, present === true, ctx);
  },
  infranetGateway: (b, [spec], ctx) => {
    if (!b.infranetGateway) throw new Error(`the ${b.name} backend routes no infranets to other facilities`);
    return b.infranetGateway(spec as never, ctx);
  },
  gatewayPeers: async (b, [mzid, peers], ctx) => {
    if (!b.gatewayPeers) throw new Error(`the ${b.name} backend has no gateway tunnels`);
    await b.gatewayPeers(mzid as string, peers as never, ctx);
  },
  harborEnsure: (b, [spec], ctx) => b.harborEnsure(spec as never, ctx),
  nodeSetup: (b, [spec], ctx) => b.nodeSetup(spec as never, ctx),
  nodeRecycle: (b, [spec], ctx) => b.nodeRecycle(spec as never, ctx),
  nodeReset: (b, [spec], ctx) => b.nodeReset(spec as never, ctx),
  nodePower: (b, [resource, action, node], ctx) =>
    b.nodePower(resource as string, action as never, ctx, (node ?? undefined) as never),
  linkCreate: (b, [spec], ctx) => b.linkCreate(spec as never, ctx),
  linkDestroy: (b, [spec], ctx) => b.linkDestroy(spec as never, ctx),
  emulationSetup: (b, [spec], ctx) => b.emulationSetup(spec as never, ctx),
  emulationUpdate: (b, [spec], ctx) => b.emulationUpdate(spec as never, ctx),
  emulationDestroy: (b, [spec], ctx) => b.emulationDestroy(spec as never, ctx),
  // What this host's nodes of a materialization did so far (idle detection); none when it has none here.
  activity: (b, [mzid]) => localActivity(b, mzid as string),
  // Sweep what the host holds of materializations not in `live` (the facility's store); returns them.
  reconcile: async (b, [live], ctx) => {
    const r = (b as unknown as { reconcile?: (l: Iterable<string>, log?: (m: string) => void) => Promise<string[]> })
      .reconcile;
    return r ? r.call(b, live as string[], ctx.log) : [];
  },
} satisfies Record<string, (b: Backend, args: unknown[], ctx: ActionContext) => Promise<unknown>>;

export type AgentMethod = keyof typeof AGENT_METHODS;

export interface HostAgentOptions {
  /** The host's name, as the facility model and the agent's certificate (CN) say. */
  name: string;
  backend: Backend;
  /** The agent's `host` certificate (`makeHostCert`) and the facility CA. */
  tls: { ca: Buffer; cert: Buffer; key: Buffer };
  /** The facility's host registry URL. */
  registry: string;
  /** Underlay address: where other hosts' VTEPs reach this one (and the agent listens unless `listen` says). */
  underlay: string;
  listen?: { host?: string; port?: number };
  /** The backend's data directory, whose file system's free space is reported. */
  dataDir: string;
  heartbeatMs?: number;
  log?: (m: string) => void;
}

export interface RunningAgent {
  url: string;
  /** Resolves once the facility has taken the first registration. */
  registered: Promise<void>;
  close(): Promise<void>;
}

export async function startHostAgent(o: HostAgentOptions): Promise<RunningAgent> {
  const log = o.log ?? (() => {});
  const impl: ServiceImpl<typeof pb.HostAgentService> = {
    async perform(req, hctx) {
      const fn = (AGENT_METHODS as Record<string, (typeof AGENT_METHODS)[AgentMethod]>)[req.method];
      if (!fn)
        throw new ConnectError(
          `no backend method '${req.method}' (one of ${Object.keys(AGENT_METHODS).join(", ")})`,
          Code.InvalidArgument,
        );
      let args: unknown;
      try {
        args = JSON.parse(req.argsJson);
      } catch (e) {
        throw new ConnectError(`${req.method}: arguments are not JSON: ${(e as Error).message}`, Code.InvalidArgument);
      }
      if (!Array.isArray(args))
        throw new ConnectError(`${req.method}: arguments must be a JSON array`, Code.InvalidArgument);
      const lines: string[] = [];
      const ctx: ActionContext = {
        signal: hctx.signal,
        log: (m) => {
          lines.push(m);
          log(`${o.name}: ${m}`);
        },
      };
      try {
        const result = await fn(o.backend, args, ctx);
        return { resultJson: result === undefined ? "" : JSON.stringify(result), log: lines };
      } catch (e) {
        throw new ConnectError((e as Error).message, Code.Aborted);
      }
    },
    // Commands in this host's nodes: the facility checked the node is ready; here it runs.
    async *nodeExec(req, hctx) {
      const r = req.request;
      if (!r) throw new ConnectError("nodeExec: no request", Code.InvalidArgument);
      try {
        const out = execIn(o.backend, r.mzid, r.node, r.argv, hctx.signal, r.timeoutMs);
        for await (const c of out) yield { response: execChunkToPb(c) };
      } catch (e) {
        opsFailed(e);
      }
    },
    async *nodeShell(reqs, hctx) {
      const it = reqs[Symbol.asyncIterator]();
      const first = await it.next();
      const start = first.done ? undefined : first.value.request?.in;
      if (start?.case !== "start")
        throw new ConnectError("nodeShell: the first message must be start (mzid, node)", Code.InvalidArgument);
      const s = start.value;
      async function* input(): AsyncGenerator<ShellInput> {
        for (let r = await it.next(); !r.done; r = await it.next()) {
          const m = r.value.request && shellInputFromPb(r.value.request.in);
          if (m) yield m;
        }
      }
      const opts = {
        tty: s.tty,
        ...(s.size ? { size: { rows: s.size.rows, cols: s.size.cols } } : {}),
        argv: s.argv,
        timeoutMs: s.timeoutMs,
      };
      try {
        for await (const c of shellIn(o.backend, s.mzid, s.node, opts, input(), hctx.signal))
          yield { response: shellChunkToPb(c) };
      } catch (e) {
        opsFailed(e);
      }
    },
  };
  const server = await serveTls({
    tls: o.tls,
    allow: ["commander"],
    host: o.listen?.host ?? o.underlay,
    port: o.listen?.port ?? 0,
    routes: (router) => router.service(pb.HostAgentService, impl),
  });
  const heartbeat = await startHeartbeat({
    setup: {
      registry: o.registry,
      tls: o.tls,
      request: {
        name: o.name,
        endpoint: server.url,
        underlay: o.underlay,
        pid: process.pid,
        started: new Date().toISOString(),
      },
      dataDir: o.dataDir,
      heartbeatMs: o.heartbeatMs ?? 2000,
    },
    log,
  });
  return {
    url: server.url,
    registered: heartbeat.registered,
    close: async () => {
      await heartbeat.stop();
      await server.close();
    },
  };
}
