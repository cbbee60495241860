/**
 * Rex's backend on a facility of many hosts: each call goes to the agent of
 * the host it concerns (the host the plan put on its spec; for power, the
 * host the model puts its resource on), the facility's own machine being the
 * in-process backend it wraps. A link touching several hosts is wired on each
 * of them (each wires its own endpoints and its end of the tunnels between
 * them). A call to a host whose agent is down fails at once, naming the host;
 * a call its agent does not finish in time (deadline.ts) fails naming the
 * host and the operation.
 */
import { isIP, connect as netConnect } from "node:net";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { create } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type InfranetPeer, linkHosts } from "@merge/materialize";
import * as pb from "@merge/proto";
import type { Store } from "@merge/store";
import type { HostNat } from "@merge/xir";
import { MergeError } from "@merge/xir/errors";
import type {
  ActionContext,
  Backend,
  EmulationSpec,
  GatewayEndSpec,
  HarborSpec,
  InfranetEntry,
  InfranetSpec,
  InfrapodSpec,
  InfrapodStatus,
  LinkCreateOutcome,
  LinkSpec,
  MzId,
  NodeRef,
  NodeSetupOutcome,
  NodeSpec,
  PowerAction,
} from "../backend.ts";
import { execChunkFromPb, shellInputToPb } from "../exec-wire.ts";
import type { NodeActivity } from "../linux/activity.ts";
import type { ExecChunk, ShellInput, ShellOptions } from "../node-ops.ts";
import type { AgentMethod } from "./agent.ts";
import { AGENT_CALL_MS, AgentDeadlineError, deadlineOf, describeCall } from "./deadline.ts";
import { type HostView, listHosts, readHost } from "./records.ts";
import { HOST_LEASE_TTL } from "./registry.ts";

export interface HostRoutedOptions {
  /** The backend of the facility's own machine (specs naming no host). */
  local: Backend;
  store: Store;
  /** The certificate rex calls agents with (role `commander`). */
  tls: { ca: Buffer; cert: Buffer; key: Buffer };
  /** The host the facility model puts a resource on (undefined: the facility's own machine). */
  hostOf: (resource: string) => string | undefined;
  /** The facility's own machine's underlay address, when the infranet or links span it and other hosts. */
  underlay?: string;
  /** A host's NAT for control access to its nodes, as the facility model says (`hosts.<name>.nat`); absent: none. */
  natOf?: (host: string) => HostNat | undefined;
  /** The deadline of one agent call (deadline.ts; default 120 s; calls covering a whole host get five). */
  callTimeoutMs?: number;
  /** The host registry's lease TTL, seconds (default HOST_LEASE_TTL): how long a host cut off may still look up. */
  leaseTtl?: number;
  log?: (m: string) => void;
}

/** How long a host's agent lease may still run after its network went away: the registry's TTL and this margin. */
const LEASE_MARGIN_MS = 2000;
/** How long a look whether anything still listens at a failed call's agent endpoint may take. */
const PROBE_MS = 1000;
/** What a call's error says when its connection, not the agent, failed (Node's errors arrive under several codes). */
const TRANSPORT_MESSAGE =
  /ECONNRESET|ECONNREFUSED|EPIPE|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|stream closed|socket hang up/;
/** Codes a call gets when its connection, not the agent, failed. */
const TRANSPORT_FAILURES = new Set([
  Code.Unavailable,
  Code.Canceled,
  Code.Unknown,
  Code.Internal,
  Code.DeadlineExceeded,
]);

/** Whether anything listens at an agent's endpoint: a TCP connection, refused, or no answer in PROBE_MS. */
function probe(endpoint: string): Promise<"listening" | "refused" | "silent"> {
  const u = new URL(endpoint);
  return new Promise((resolve) => {
    const s = netConnect({ host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port) });
    const done = (r: "listening" | "refused" | "silent") => {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => done("silent"), PROBE_MS);
    s.once("connect", () => done("listening"));
    s.once("error", (e: NodeJS.ErrnoException) => done(e.code === "ECONNREFUSED" ? "refused" : "silent"));
  });
}

export class HostDownError extends MergeError<"facility"> {
  constructor(message: string, options?: ErrorOptions) {
    super("facility", "host-down", message, options);
  }
}

/** How often a call in flight looks whether its host is still up. */
const LIVENESS_MS = 1000;
/** How old the hosts' registrations a call is routed by may be (a lease lasts seconds). */
const HOSTS_FRESH_MS = 250;

export class HostRoutedBackend implements Backend {
  private readonly clients = new Map<string, { endpoint: string; client: Client<typeof pb.HostAgentService> }>();

  constructor(private readonly o: HostRoutedOptions) {}

  get name(): string {
    return this.o.local.name;
  }

  /** The local backend's data plane (exec and shells in the nodes of the facility's own machine; others go to their agents). */
  get dataPlane(): unknown {
    return (this.o.local as unknown as { dataPlane?: unknown }).dataPlane;
  }

  /** Sweeping orphans is the local backend's (each agent reconciles its own host). */
  reconcile(live: Iterable<string>, log?: (m: string) => void): Promise<string[]> {
    const r = (this.o.local as unknown as { reconcile?: HostRoutedBackend["reconcile"] }).reconcile;
    return r ? r.call(this.o.local, live, log) : Promise.resolve([]);
  }

  /** The hosts as registered, read at most every HOSTS_FRESH_MS: every call looks its host up. */
  private hostsRead: { at: number; hosts: Promise<Map<string, HostView>> } | undefined;

  /**
   * A host (re)registered: read the hosts afresh at the next lookup. What follows a registration (the
   * host's reconcile, its part of the harbor, the VTEPs the server's host floods to) must see it; a read
   * from just before, kept for HOSTS_FRESH_MS, left the harbor's server without the new host's VTEP.
   */
  hostsChanged(): void {
    this.hostsRead = undefined;
  }

  private async lookup(host: string): Promise<HostView | undefined> {
    const now = Date.now();
    if (!this.hostsRead || now - this.hostsRead.at > HOSTS_FRESH_MS) {
      const hosts = listHosts(this.o.store).then((l) => new Map(l.map((h) => [h.name, h])));
      this.hostsRead = { at: now, hosts };
      hosts.catch(() => {
        if (this.hostsRead?.hosts === hosts) this.hostsRead = undefined;
      });
    }
    return (await this.hostsRead.hosts).get(host);
  }

  private async client(host: string): Promise<Client<typeof pb.HostAgentService>> {
    const h = await this.lookup(host);
    if (!h) throw new HostDownError(`host ${host} has no agent registered with the facility`);
    if (!h.alive) throw new HostDownError(`host ${host} is down: its agent (pid ${h.pid}) stopped answering`);
    const had = this.clients.get(host);
    if (had && had.endpoint === h.endpoint) return had.client;
    const client = this.agentClient(h.endpoint);
    this.clients.set(host, { endpoint: h.endpoint, client });
    return client;
  }

  /** Every connection to an agent: `disconnect` ends them outright. */
  private readonly sockets = new Set<TLSSocket>();

  /**
   * A client of an agent whose connections are this backend's own (mutual
   * TLS, HTTP/2): closing an HTTP/2 session still waits for its unsent data to
   * drain, which never happens toward a host cut off without a reset, so the
   * sockets themselves are destroyed at `disconnect`.
   */
  private agentClient(endpoint: string): Client<typeof pb.HostAgentService> {
    const u = new URL(endpoint);
    const host = u.hostname.replace(/^\[|\]$/g, "");
    const transport = createGrpcTransport({
      baseUrl: endpoint,
      nodeOptions: {
        createConnection: () => {
          const s = tlsConnect({
            host,
            port: Number(u.port),
            ...(isIP(host) ? {} : { servername: host }),
            ca: this.o.tls.ca,
            cert: this.o.tls.cert,
            key: this.o.tls.key,
            ALPNProtocols: ["h2"],
          });
          this.sockets.add(s);
          s.on("close", () => this.sockets.delete(s));
          return s;
        },
      },
    });
    return createClient(pb.HostAgentService, transport);
  }

  /**
   * The facility stops: calls still in flight to agents are aborted and every
   * connection to them ends now, whether or not their hosts answer.
   */
  disconnect(): void {
    for (const calls of this.inflight.values()) for (const c of calls) c.abort(new Error("the facility is stopping"));
    clearInterval(this.liveness);
    this.liveness = undefined;
    for (const s of this.sockets) s.destroy();
    this.clients.clear();
  }

  /** A host's underlay address (its VTEP), from its registration; the facility's own from the options. */
  private async underlayOf(host: string): Promise<string> {
    if (!host) {
      if (!this.o.underlay)
        throw new Error("the facility's own machine has no underlay address (give startFacility an underlay)");
      return this.o.underlay;
    }
    const h = await this.lookup(host);
    if (!h) throw new HostDownError(`host ${host} has no agent registered with the facility`);
    return h.underlay;
  }

  /** The infranet as a host sees it: the other hosts' VTEPs added. */
  private async infranetOn<T extends { infranet: InfranetSpec }>(spec: T, host: string | undefined): Promise<T> {
    const hosts = spec.infranet.hosts;
    if (!hosts || hosts.length < 2) return spec;
    const vteps = await Promise.all(hosts.filter((h) => h !== (host ?? "")).map((h) => this.underlayOf(h)));
    return { ...spec, infranet: { ...spec.infranet, vteps } };
  }

  /** The host of a node's infrapod, when another host than the node's. */
  private podHostOf(spec: NodeSpec): string | undefined {
    const pod = spec.infranet.hosts?.[0];
    return pod !== undefined && pod !== (spec.host ?? "") ? pod : undefined;
  }

  /** One backend call on one host; `local` runs it here. */
  private async on<T>(
    host: string | undefined,
    method: AgentMethod,
    args: unknown[],
    ctx: ActionContext,
    local: (b: Backend) => Promise<T>,
  ): Promise<T> {
    if (!host) return local(this.o.local);
    const client = await this.client(host);
    let res: pb.PerformResponse;
    // A host that vanishes mid-call (its machine or network gone) never answers: the call ends when
    // the host is down (its agent's lease ran out), not when TCP gives up minutes later.
    const call = new AbortController();
    const cancel = () => call.abort();
    if (ctx.signal.aborted) cancel();
    ctx.signal.addEventListener("abort", cancel);
    const untrack = this.track(host, call);
    // An agent that is up but does not answer (stopped, stuck): the call ends at its deadline.
    const ms = deadlineOf(method, this.o.callTimeoutMs ?? AGENT_CALL_MS);
    const deadline = setTimeout(() => call.abort(new AgentDeadlineError(host, describeCall(method, args), ms)), ms);
    try {
      res = await client.perform({ method, argsJson: JSON.stringify(args) }, { signal: call.signal });
    } catch (e) {
      const why: unknown = call.signal.reason;
      if (why instanceof HostDownError || why instanceof AgentDeadlineError) throw why;
      const msg = (e as Error).message.replace(/^\[\w+\] /, "");
      if (await this.wentDown(host, e)) throw new HostDownError(`host ${host} is down: ${msg}`);
      throw new Error(`host ${host}: ${msg}`);
    } finally {
      clearTimeout(deadline);
      untrack();
      ctx.signal.removeEventListener("abort", cancel);
    }
    for (const line of res.log) ctx.log(`${host}: ${line}`);
    return (res.resultJson ? JSON.parse(res.resultJson) : undefined) as T;
  }

  /**
   * Whether a failed call's host is down. A transport failure (the connection
   * reset or the stream cancelled as the host's network went away) comes before
   * the agent's lease runs out, so for those the registry is asked until the
   * lease decides (a few seconds); an answer of the agent's own is not waited on.
   */
  private async wentDown(host: string, e: unknown): Promise<boolean> {
    const transport =
      !(e instanceof ConnectError) || TRANSPORT_FAILURES.has(e.code) || TRANSPORT_MESSAGE.test(e.rawMessage);
    const until = Date.now() + (transport ? (this.o.leaseTtl ?? HOST_LEASE_TTL) * 1000 + LEASE_MARGIN_MS : 0);
    for (let probed = !transport; ; ) {
      const h = await readHost(this.o.store, host).catch(() => undefined);
      if (h && !h.alive) return true;
      // Its agent's process is gone (killed, crashed) when nothing listens at its endpoint: no need to wait for its lease.
      if (!probed && h) {
        probed = true;
        if ((await probe(h.endpoint)) === "refused") return true;
      }
      if (Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** The host a resource is on, when another than the facility's own machine (NodeOps routes commands by it). */
  hostOfResource(resource: string): string | undefined {
    return this.o.hostOf(resource) || undefined;
  }

  /** What the nodes of a materialization on another host did so far, as its agent measured them. */
  nodeActivity(host: string, mzid: string, signal: AbortSignal): Promise<NodeActivity[]> {
    return this.on(host, "activity", [mzid], { signal, log: () => {} }, async () => []);
  }

  /** A command in a node of another host, through its agent. */
  async nodeExec(
    host: string,
    req: { mzid: string; node: string; argv: string[]; timeoutMs: number },
    signal: AbortSignal,
  ): Promise<AsyncIterable<ExecChunk>> {
    const client = await this.client(host);
    const request = create(pb.ExecRequestSchema, req);
    return this.streamed(host, client.nodeExec({ request }, { signal }));
  }

  /** A shell (or a command with its stdin) in a node of another host, through its agent. */
  async nodeShell(
    host: string,
    req: { mzid: string; node: string } & ShellOptions,
    input: AsyncIterable<ShellInput>,
    signal: AbortSignal,
  ): Promise<AsyncIterable<ExecChunk>> {
    const client = await this.client(host);
    const start = create(pb.ShellStartSchema, {
      mzid: req.mzid,
      node: req.node,
      tty: req.tty,
      argv: req.argv ?? [],
      timeoutMs: req.timeoutMs ?? 0,
      ...(req.size ? { size: create(pb.WindowSizeSchema, req.size) } : {}),
    });
    async function* requests(): AsyncGenerator<pb.NodeShellRequest> {
      yield create(pb.NodeShellRequestSchema, { request: { in: { case: "start", value: start } } });
      for await (const i of input) yield create(pb.NodeShellRequestSchema, { request: shellInputToPb(i) });
    }
    return this.streamed(host, client.nodeShell(requests(), { signal }));
  }

  /**
   * An agent's output stream as chunks. The first message is awaited here, so
   * a refusal (no such node, host gone) fails the call rather than the stream.
   */
  private async streamed(
    host: string,
    stream: AsyncIterable<{ response?: { out: pb.ExecResponse["out"] } }>,
  ): Promise<AsyncIterable<ExecChunk>> {
    const it = stream[Symbol.asyncIterator]();
    const failed = (e: unknown): never => {
      if (e instanceof ConnectError) throw new ConnectError(`host ${host}: ${e.rawMessage}`, e.code);
      throw new Error(`host ${host}: ${(e as Error).message}`);
    };
    const first = await it.next().catch(failed);
    return (async function* () {
      for (let r = first; !r.done; r = await it.next().catch(failed)) {
        const c = r.value.response && execChunkFromPb(r.value.response.out);
        if (c) yield c;
      }
    })();
  }

  /** Calls in flight per host, and the one timer that looks whether their hosts are still up. */
  private readonly inflight = new Map<string, Set<AbortController>>();
  private liveness: NodeJS.Timeout | undefined;

  private track(host: string, call: AbortController): () => void {
    const set = this.inflight.get(host) ?? new Set();
    set.add(call);
    this.inflight.set(host, set);
    this.liveness ??= setInterval(() => void this.checkLiveness(), LIVENESS_MS).unref();
    return () => {
      set.delete(call);
      if (set.size === 0) this.inflight.delete(host);
      if (this.inflight.size === 0) {
        clearInterval(this.liveness);
        this.liveness = undefined;
      }
    };
  }

  private async checkLiveness(): Promise<void> {
    const hosts = await listHosts(this.o.store).catch(() => []);
    for (const h of hosts) {
      if (h.alive) continue;
      for (const call of this.inflight.get(h.name) ?? [])
        call.abort(new HostDownError(`host ${h.name} is down: its agent stopped answering`));
    }
  }

  /** Sweep what a host holds of materializations not in `live` (its agent's backend decides by its own records). */
  async sweepHost(host: string, live: string[], ctx: ActionContext): Promise<string[]> {
    return this.on<string[]>(
      host || undefined,
      "reconcile",
      [live],
      ctx,
      (b) =>
        ((b as unknown as { reconcile?: HostRoutedBackend["reconcile"] }).reconcile?.call(b, live, ctx.log) ??
          Promise.resolve([])) as Promise<string[]>,
    );
  }

  /**
   * Teardown on a host that is down succeeds without it: what it holds of the
   * materialization is swept when its agent comes back (reconcile.ts), so a
   * dematerialize never waits for a dead machine.
   */
  private async away(what: string, ctx: ActionContext, call: () => Promise<void>): Promise<void> {
    try {
      await call();
    } catch (e) {
      if (!(e instanceof HostDownError)) throw e;
      ctx.log(`${what}: ${e.message}; its part is removed when the host comes back`);
    }
  }

  /**
   * A call on every host of a link, together, each told which part is its own
   * (`span`); the error names each host that failed.
   */
  private async onEach(
    hosts: string[],
    method: "linkCreate" | "linkDestroy",
    spec: LinkSpec,
    ctx: ActionContext,
  ): Promise<LinkCreateOutcome> {
    let underlays: Record<string, string> = {};
    if (hosts.length > 1) {
      // Teardown needs no addresses: a host that is gone keeps none of it to tear down here.
      const known = await Promise.all(hosts.map((h) => this.underlayOf(h).catch(() => "")));
      underlays = Object.fromEntries(hosts.map((h, i) => [h, known[i] as string]));
    }
    const results = await Promise.allSettled(
      hosts.map((h) => {
        const s: LinkSpec = hosts.length > 1 ? { ...spec, span: { local: h, underlays } } : spec;
        const call = () =>
          this.on<LinkCreateOutcome>(h || undefined, method, [s], ctx, (b) =>
            method === "linkCreate" ? b.linkCreate(s, ctx) : b.linkDestroy(s, ctx),
          );
        return method === "linkDestroy" ? this.away(`link ${spec.link}`, ctx, async () => void (await call())) : call();
      }),
    );
    const failed = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : []));
    if (failed.length) throw new Error(`link ${spec.link}: ${failed.join("; ")}`);
    // An external link's gateway ends come from its gateways' hosts.
    const gateways = results.flatMap((r) => (r.status === "fulfilled" && r.value ? (r.value.gateways ?? []) : []));
    return gateways.length ? { gateways } : undefined;
  }

  /**
   * The infrapod on its host; when it routes other facilities' infranets
   * through gateways on other hosts, those hosts' sides first (the tunnels
   * toward their peers, `infranetGateway`), each joined to the infrapod by a
   * VXLAN tunnel between the two hosts on its own link slot (`gatewayLinks`).
   */
  async infrapodEnclave(spec: InfrapodSpec, ctx: ActionContext): Promise<InfrapodStatus> {
    const s = await this.infranetOn(spec, spec.host);
    const pod = spec.host ?? "";
    const away = new Map<string, InfranetPeer[]>();
    for (const p of spec.peers ?? [])
      if ((p.host ?? "") !== pod) away.set(p.host ?? "", [...(away.get(p.host ?? "") ?? []), p]);
    if (!away.size) return this.on(spec.host, "infrapodEnclave", [s], ctx, (b) => b.infrapodEnclave(s, ctx));
    const hosts = [...away.keys()].sort();
    const [podUnderlay = "", ...underlays] = await Promise.all([pod, ...hosts].map((h) => this.underlayOf(h)));
    const links = hosts.map((h, i) => ({ host: h, remote: underlays[i] ?? "", slot: i + 1 }));
    const gateways = await Promise.all(
      links.map(({ host, slot }) => {
        const atGw: InfrapodSpec = { ...spec, peers: away.get(host), gatewayLink: { remote: podUnderlay, slot } };
        return this.on(host || undefined, "infranetGateway", [atGw], ctx, (b) => {
          if (!b.infranetGateway) throw new Error(`the ${b.name} backend routes no infranets to other facilities`);
          return b.infranetGateway(atGw, ctx);
        });
      }),
    );
    const atPod: InfrapodSpec = {
      ...s,
      gatewayLinks: links.map(({ host, remote, slot }) => ({
        remote,
        slot,
        peers: (away.get(host) ?? []).map((p) => p.peer),
      })),
    };
    const st = await this.on(spec.host, "infrapodEnclave", [atPod], ctx, (b) => b.infrapodEnclave(atPod, ctx));
    return { ...st, gateways: [...(st.gateways ?? []), ...gateways.flat()] };
  }

  /** The peers' gateway ends, each to the host of this facility's gateway toward it. */
  async gatewayPeers(mzid: MzId, peers: (GatewayEndSpec & { host?: string })[], ctx: ActionContext): Promise<void> {
    const byHost = new Map<string, GatewayEndSpec[]>();
    for (const { host, ...p } of peers) byHost.set(host ?? "", [...(byHost.get(host ?? "") ?? []), p]);
    for (const [host, ends] of byHost)
      await this.on(host || undefined, "gatewayPeers", [mzid, ends], ctx, async (b) => {
        if (!b.gatewayPeers) throw new Error(`the ${b.name} backend has no gateway tunnels`);
        await b.gatewayPeers(mzid, ends, ctx);
      });
  }
  infrapodServices(spec: InfrapodSpec, ctx: ActionContext): Promise<InfrapodStatus> {
    return this.on(spec.host, "infrapodServices", [spec], ctx, (b) => b.infrapodServices(spec, ctx));
  }
  infrapodEntries(spec: InfrapodSpec, entries: InfranetEntry[], ctx: ActionContext): Promise<void> {
    return this.on(spec.host, "infrapodEntries", [spec, entries], ctx, (b) => b.infrapodEntries(spec, entries, ctx));
  }
  /**
   * The infrapod goes last in a teardown; with it, whatever any other host
   * still holds of the materialization (an emulator on a host with neither
   * its nodes nor its infrapod, a part left by a failed action): each host
   * sweeps it (idempotent; nothing there is nothing to do).
   */
  async infrapodDestroy(spec: InfrapodSpec, ctx: ActionContext): Promise<void> {
    const pod = spec.host ?? "";
    const others = ["", ...(await listHosts(this.o.store)).map((h) => h.name)].filter((h) => h !== pod);
    // Every host's sweep at once: each waits mostly on its kernel's namespace deletions, not on the others.
    const results = await Promise.allSettled(
      [pod, ...others].map((h) =>
        this.away(
          h === pod ? `infrapod ${spec.mzid}` : `materialization ${spec.mzid} on host ${h || "(the facility's own)"}`,
          ctx,
          () => this.on(h || undefined, "infrapodDestroy", [spec], ctx, (b) => b.infrapodDestroy(spec, ctx)),
        ),
      ),
    );
    const failed = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : []));
    if (failed.length) throw new Error(`infrapod ${spec.mzid}: ${failed.join("; ")}`);
  }

  /**
   * The harbor on every host with testbed nodes: the infrapod server's host
   * serves it (nex, foundry) and holds its own standby nodes; each other host
   * holds its standby nodes on the harbor's infranet, tunnelled to the
   * server's host. Hosts whose agent is down are skipped (`harborJoined`
   * brings them in when they register).
   */
  async harborEnsure(spec: HarborSpec, ctx: ActionContext): Promise<void> {
    const { hosts } = this.harborHosts(spec);
    if (hosts.length === 1 && hosts[0] === "") return this.o.local.harborEnsure(spec, ctx);
    return this.harborInTurn(() => this.harborEverywhere(spec, ctx));
  }

  private async harborEverywhere(spec: HarborSpec, ctx: ActionContext): Promise<void> {
    const { server, hosts } = this.harborHosts(spec);
    await this.harborOn(spec, server, ctx);
    await Promise.all(hosts.filter((h) => h !== server).map((h) => this.harborOn(spec, h, ctx)));
  }

  /**
   * The harbor's calls one after another: two hosts registering at once would otherwise have the server's
   * host make its part twice at once, each call with the VTEPs known when it began. (A call to an agent that
   * does not answer holds the others up to its deadline, `host/deadline.ts`.)
   */
  private harborTurn: Promise<unknown> = Promise.resolve();
  private harborInTurn<T>(f: () => Promise<T>): Promise<T> {
    const next = this.harborTurn.then(f, f);
    this.harborTurn = next.catch(() => {});
    return next;
  }

  /**
   * A host's agent (re)registered: its part of the harbor, and the server's
   * again (a flooding entry toward it); the server's host coming back brings
   * every other host's part back too.
   */
  async harborJoined(spec: HarborSpec, host: string, ctx: ActionContext): Promise<void> {
    const { server, hosts } = this.harborHosts(spec);
    if (!hosts.includes(host)) return;
    return this.harborInTurn(async () => {
      if (host === server) return this.harborEverywhere(spec, ctx);
      // The host's own part even if the server's refreshing failed (its error is still reported).
      try {
        await this.harborOn(spec, server, ctx);
      } finally {
        await this.harborOn(spec, host, ctx);
      }
    });
  }

  private harborHosts(spec: HarborSpec): { server: string; hosts: string[] } {
    const server = this.o.hostOf(spec.server) ?? "";
    const hosts = [...new Set([server, ...spec.resources.map((r) => this.o.hostOf(r.id) ?? "")])];
    return { server, hosts };
  }

  /** The underlay addresses the server's part of the harbor floods its infranet to, as last made. */
  private harborFloods = new Set<string>();

  /** One host's part of the harbor (see harborEnsure); a host that is down is left for when it registers. */
  private async harborOn(spec: HarborSpec, host: string, ctx: ActionContext): Promise<void> {
    const { server, hosts } = this.harborHosts(spec);
    const own = spec.resources.filter((r) => (this.o.hostOf(r.id) ?? "") === host);
    const known = async (hs: string[]) =>
      (await Promise.all(hs.map((h) => this.underlayOf(h).catch(() => "")))).filter(Boolean);
    if (host !== server) {
      // The server floods to this host before its standby nodes ask for leases: a host that registered after
      // the server's part was made would otherwise wait out its nodes' boot deadline (90 s) unanswered,
      // holding the harbor's turn, and so its own join's refresh of the server.
      const here = await this.underlayOf(host).catch(() => "");
      if (here && !this.harborFloods.has(here)) await this.harborOn(spec, server, ctx);
    }
    const vteps = await known(host === server ? hosts.filter((h) => h !== server) : [server]);
    const part: HarborSpec =
      host === server
        ? { ...spec, standby: own.map((r) => r.id), infranet: { ...spec.infranet, vteps } }
        : {
            ...spec,
            resources: own,
            standby: own.map((r) => r.id),
            podElsewhere: true,
            infranet: { ...spec.infranet, vteps },
          };
    await this.away(`harbor on host ${host || "(the facility's own)"}`, ctx, async () => {
      await this.on(host || undefined, "harborEnsure", [part], ctx, (b) => b.harborEnsure(part, ctx));
      if (host === server) this.harborFloods = new Set(vteps);
    });
  }
  /** Tell the infrapod's host about a node another host carries (its configuration, its DHCP/DNS entry). */
  private async toPod(spec: NodeSpec, present: boolean, ctx: ActionContext): Promise<void> {
    const pod = this.podHostOf(spec);
    if (pod === undefined) return;
    await this.on(pod || undefined, "infrapodNode", [spec, present], ctx, async (b) => {
      if (!b.infrapodNode) throw new Error(`the ${b.name} backend carries no nodes of other hosts`);
      await b.infrapodNode(spec, present, ctx);
    });
  }
  /** The node as its host gets it: with the host's NAT from the model, if it has one. */
  private withNat(spec: NodeSpec): NodeSpec {
    const nat = spec.host ? this.o.natOf?.(spec.host) : undefined;
    return nat ? { ...spec, nat } : spec;
  }
  async nodeSetup(spec: NodeSpec, ctx: ActionContext): Promise<NodeSetupOutcome> {
    await this.toPod(spec, true, ctx);
    const s = this.withNat(await this.infranetOn(spec, spec.host));
    return this.on(spec.host, "nodeSetup", [s], ctx, (b) => b.nodeSetup(s, ctx));
  }
  async nodeRecycle(spec: NodeSpec, ctx: ActionContext): Promise<void> {
    const s = this.withNat(spec);
    // The infrapod's entry goes meanwhile (a second host's call, as long as the node's own): nothing waits on
    // the order. The infrapod may be gone already (its teardown sweeps these entries too): not worth failing for.
    // When the infrapod goes after (sweptAfter), no call: hundreds of them crowded its host's agent.
    const pod = spec.sweptAfter
      ? Promise.resolve()
      : this.toPod(spec, false, ctx).catch((e: Error) => ctx.log(`node ${spec.node}: ${e.message}`));
    try {
      await this.away(`node ${spec.node}`, ctx, () =>
        this.on(spec.host, "nodeRecycle", [s], ctx, (b) => b.nodeRecycle(s, ctx)),
      );
    } finally {
      await pod;
    }
  }
  async nodeReset(spec: NodeSpec, ctx: ActionContext): Promise<NodeSetupOutcome> {
    await this.toPod(spec, true, ctx);
    const s = this.withNat(await this.infranetOn(spec, spec.host));
    return this.on(spec.host, "nodeReset", [s], ctx, (b) => b.nodeReset(s, ctx));
  }
  nodePower(resource: string, action: PowerAction, ctx: ActionContext, node?: NodeRef): Promise<NodeSetupOutcome> {
    return this.on(this.o.hostOf(resource), "nodePower", [resource, action, node ?? null], ctx, (b) =>
      b.nodePower(resource, action, ctx, node),
    );
  }
  linkCreate(spec: LinkSpec, ctx: ActionContext): Promise<LinkCreateOutcome> {
    return this.onEach(linkHosts(spec), "linkCreate", spec, ctx);
  }
  async linkDestroy(spec: LinkSpec, ctx: ActionContext): Promise<void> {
    if (spec.sweptAfter && !spec.external?.length) {
      // The infrapod's teardown sweeps every host of the materialization after this: no call to make.
      ctx.log(`link ${spec.link} left to the materialization's sweep on each host`);
      return;
    }
    await this.onEach(linkHosts(spec), "linkDestroy", spec, ctx);
  }
  emulationSetup(spec: EmulationSpec, ctx: ActionContext): Promise<void> {
    return this.on(spec.host, "emulationSetup", [spec], ctx, (b) => b.emulationSetup(spec, ctx));
  }
  emulationUpdate(spec: EmulationSpec, ctx: ActionContext): Promise<void> {
    return this.on(spec.host, "emulationUpdate", [spec], ctx, (b) => b.emulationUpdate(spec, ctx));
  }
  async emulationDestroy(spec: EmulationSpec, ctx: ActionContext): Promise<void> {
    if (spec.sweptAfter) {
      // As a link's: the infrapod's teardown sweeps the emulator's host after this.
      ctx.log(`emulation ${spec.emulation} left to the materialization's sweep`);
      return;
    }
    return this.away(`emulation ${spec.emulation}`, ctx, () =>
      this.on(spec.host, "emulationDestroy", [spec], ctx, (b) => b.emulationDestroy(spec, ctx)),
    );
  }
  close(): Promise<void> {
    return this.o.local.close();
  }
}
