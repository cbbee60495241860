/**
 * A facility of N hosts on this one machine, for tests and benchmarks: the
 * hosts are a fabric (src/linux/fabric.ts, as `npm start -- --hosts N` makes
 * them: a namespace, an underlay address, a data directory, a certificate and
 * an agent process each). The facility (commander, driver, rex, host registry)
 * runs in this process on the fabric's first address, so the fabric is its
 * underlay too. `close()` removes everything: agents (by pid), the facility,
 * what each host's data directory holds, the host namespaces, the fabric.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { fragmentToPb, type MaterializationPlan, planMaterialization, synthetic } from "@merge/materialize";
import * as pb from "@merge/proto";
import { openStore, type Store } from "@merge/store";
import type { Experiment, Facility, Realization } from "@merge/xir";
import { certFiles, loadTls, makeCerts } from "../../src/certs.ts";
import { type RunningFacility, startFacility } from "../../src/facility.ts";
import { tlsClient } from "../../src/grpc.ts";
import { harborSpecOf } from "../../src/harbor.ts";
import { LinuxBackend } from "../../src/linux/backend.ts";
import { type Fabric, openFabric } from "../../src/linux/fabric.ts";
import { prefixOn } from "../../src/linux/names.ts";
import { alive, listNetns } from "../../src/linux/processes.ts";
import { prefixesOwned } from "../../src/linux/state.ts";
import { isClean, leftovers, sweep } from "../../src/linux/sweep.ts";
import type { RexEvent } from "../../src/rex.ts";

export interface FixtureHost {
  name: string;
  netns: string;
  underlay: string;
  dataDir: string;
  certs: string;
  readonly agent?: ChildProcess;
  /** Start (or restart) the host's agent; resolves once it is registered and up. */
  start(): Promise<void>;
  /** Kill the agent with a signal (SIGKILL: as if the machine died); what it made stays. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface HostsFixture {
  run: string;
  tmp: string;
  store: Store;
  facility: RunningFacility;
  /** The backend of the facility's own machine (resources naming no host). */
  local: LinuxBackend;
  fabric: Fabric;
  hosts: FixtureHost[];
  /** The fabric's first address: the facility's own underlay address. */
  gateway: string;
  certs: string;
  /** Close the facility alone (its agents and hosts stay until `close`); once. */
  closeFacility(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Start a facility over `model` whose resources name hosts; one host namespace
 * and agent per host the model names (`hosts`, in order).
 */
export async function startHosts(
  model: Facility,
  hosts: string[],
  opts: {
    leaseTtl?: number;
    /** The facility's deadline of one agent call (ms). */
    agentCallTimeoutMs?: number;
    harbor?: boolean;
    /**
     * A routed underlay (a wide-area facility): these hosts are on a second
     * subnet behind a router namespace that delays each way by `delayMs`.
     */
    routed?: { hosts: string[]; delayMs: number };
    /** More arguments for a host's agent (e.g. a shared host's `--nat`). */
    agentArgs?: (host: string) => string[];
    /** Rex's outcome journal (the bench's per-stage timings). */
    onRexEvent?: (e: RexEvent) => void;
  } = {},
): Promise<HostsFixture> {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-mh-"));
  const step = (m: string) => process.env.HOSTS_DEBUG && console.error(`hosts fixture: ${m}`);
  let fabric: Fabric | undefined;
  let facility: RunningFacility | undefined;
  let store: Store | undefined;
  let local: LinuxBackend | undefined;
  let facilityClosed: Promise<void> | undefined;
  const closeFacility = () => {
    facilityClosed ??= facility?.close() ?? Promise.resolve();
    return facilityClosed;
  };

  // Each step on its own: one failing (or a test that failed half way) must not keep the rest from cleaning up.
  const close = async () => {
    const left: string[] = [];
    const attempt = async (what: string, f: () => Promise<unknown> | undefined) => {
      step(what);
      await Promise.resolve()
        .then(f)
        .catch((e: Error) => left.push(`${what}: ${e.message}`));
    };
    await attempt("stopping the agents", () => fabric?.stopAgents());
    await attempt("closing the facility", closeFacility);
    await attempt("closing the local backend", () => local?.close());
    await attempt("closing the store", () => store?.close());
    step("sweeping");
    const own = join(tmp, "facility");
    for (const prefix of prefixesOwned(own)) {
      const l = await sweep(prefix, own);
      if (!isClean(l)) left.push(`${prefix}: ${JSON.stringify(l)}`);
    }
    await fabric?.close().catch((e: Error) => left.push(e.message));
    rmSync(tmp, { recursive: true, force: true });
    if (fabric && openRuns.includes(fabric.run)) openRuns.splice(openRuns.indexOf(fabric.run), 1);
    if (left.length) throw new Error(`hosts fixture ${fabric?.run} left behind: ${left.join("; ")}`);
  };

  try {
    fabric = await openFabric({
      run: `mh${randomBytes(2).toString("hex")}`,
      dir: join(tmp, "hosts"),
      hosts,
      ...(opts.routed ? { routed: opts.routed } : {}),
      log: step,
    });
    openRuns.push(fabric.run);
    const gateway = fabric.gateway;
    const certs = join(tmp, "certs");
    makeCerts(certs, { facility: model.name, hosts: [gateway] });
    store = openStore({ backend: "sqlite", dir: join(tmp, "store") });
    local = await LinuxBackend.open({ dataDir: join(tmp, "facility"), defaultImage: "busybox" });
    facility = await startFacility({
      ...(process.env.HOSTS_DEBUG ? { log: (m: string) => console.error(`facility: ${m}`) } : {}),
      store,
      backend: local,
      model,
      certs,
      host: gateway,
      underlay: gateway,
      ...(opts.leaseTtl ? { hostLeaseTtl: opts.leaseTtl } : {}),
      ...(opts.agentCallTimeoutMs ? { agentCallTimeoutMs: opts.agentCallTimeoutMs } : {}),
      ...(opts.harbor ? { harbor: harborSpecOf(model) } : {}),
      ...(opts.onRexEvent ? { rex: { onEvent: opts.onRexEvent } } : {}),
    });
    const registry = facility.hostRegistryUrl;
    if (!registry) throw new Error(`model ${model.name} names no hosts`);
    const f = fabric;
    const made: FixtureHost[] = f.hosts.map((h) => ({
      name: h.name,
      netns: h.netns,
      underlay: h.underlay,
      dataDir: h.dataDir,
      certs: h.certs,
      get agent() {
        return h.agent;
      },
      start: () =>
        f.startAgent(h.name, { registry, ca: certs, defaultImage: "busybox", args: opts.agentArgs?.(h.name) ?? [] }),
      kill: (signal) => f.killAgent(h.name, signal),
    }));
    await Promise.all(made.map((h) => h.start()));
    return { run: f.run, tmp, store, facility, local, fabric: f, hosts: made, gateway, certs, closeFacility, close };
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}

/**
 * The suite's hosts: started before its tests (unless `skip` says why not),
 * closed after them, then checked that nothing of the run is left. Its members
 * are there once the suite's `before` has run.
 */
export function suiteHosts(
  model: Facility,
  hosts: string[],
  opts: Parameters<typeof startHosts>[2],
  skip: string | false,
): HostsFixture {
  const fx = {} as HostsFixture;
  let pids: (number | undefined)[] = [];
  before(async () => {
    if (skip) return;
    Object.assign(fx, await startHosts(model, hosts, opts));
    pids = fx.hosts.map((h) => h.agent?.pid);
  });
  after(async () => {
    if (!fx.close) return;
    await fx.close();
    assert.deepEqual(fixtureLeftovers(fx.run, pids), [], "no namespace, interface or agent of the run is left");
  });
  return fx;
}

/** What the run left on the machine: its namespaces, interfaces, agents; empty after close(). */
export function fixtureLeftovers(run: string, agents: (number | undefined)[]): string[] {
  const out = listNetns().filter((n) => n.startsWith(run));
  const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
  for (const l of links.split("\n")) {
    const name = /^\d+: ([^:@]+)/.exec(l)?.[1];
    if (name?.startsWith(run)) out.push(name);
  }
  for (const pid of agents) if (pid && alive(pid)) out.push(`agent pid ${pid}`);
  return out;
}

export { certFiles, leftovers, loadTls };

/** A synthetic experiment of `nodes` busybox nodes (fast to start) in LANs of `lanSize`, round robin over `hosts`, with its facility model. */
export function busyboxSynthetic(nodes: number, mzid: string, hosts: string[], lanSize = 4) {
  const s = synthetic(nodes, { mzid, lanSize, hosts });
  for (const n of s.experiment.nodes) delete n.image;
  return s;
}

/** The plan of a synthetic experiment on its own facility model (the one the suite's hosts run). */
export function planOf(s: {
  realization: Realization;
  experiment: Experiment;
  facility: Facility;
}): MaterializationPlan {
  return planMaterialization(s.realization, s.experiment, [s.facility]);
}

/** A portal's calls to the fixture's facility (mutual TLS, role portal): the real path to rex and the agents. */
export function portalOf(fx: HostsFixture) {
  return tlsClient(pb.FacilityService, fx.facility.url, loadTls(certFiles(fx.certs, "portal")));
}

/** Deliver a plan's fragments and follow the status until it settles (active, error, dematerialized). */
export async function materializePlan(
  fx: HostsFixture,
  plan: MaterializationPlan,
  op: "materialize" | "dematerialize" = "materialize",
): Promise<pb.StatusResponse> {
  const part = plan.facilities[0];
  if (!part) throw new Error(`plan ${plan.mzid} has no facility`);
  fx.fabric.track(plan.mzid);
  const portal = portalOf(fx);
  const fragments = part.fragments.map(fragmentToPb);
  const resources = part.resources;
  if (op === "materialize") await portal.notifyIncoming({ mzid: plan.mzid, resources });
  const r = await portal[op]({ mzid: plan.mzid, fragments });
  if (r.errors.length) throw new Error(`${op} ${plan.mzid}: ${JSON.stringify(r.errors)}`);
  const want = op === "materialize" ? [pb.MzStatus.ACTIVE, pb.MzStatus.ERROR] : [pb.MzStatus.DEMATERIALIZED];
  for (;;) {
    const s = await portal.status({ mzid: plan.mzid, resources });
    if (want.includes(s.status)) {
      if (op === "dematerialize") await portal.notifyTeardown({ mzid: plan.mzid, resources });
      return s;
    }
    // Each look reads the whole materialization (every action and node) in the facility's process: not too often.
    await new Promise((res) => setTimeout(res, 500));
  }
}

/** Dematerialize a plan and check that nothing of it is left on the named hosts. */
export async function dematerializeClean(fx: HostsFixture, plan: MaterializationPlan, hosts: string[]): Promise<void> {
  const d = await materializePlan(fx, plan, "dematerialize");
  assert.equal(d.status, pb.MzStatus.DEMATERIALIZED);
  for (const h of hosts)
    assert.deepEqual(
      listNetns().filter((n) => n.startsWith(hostPrefix(plan.mzid, h))),
      [],
      `nothing of ${plan.mzid} is left on ${h}`,
    );
}

/**
 * The kernel object prefix a materialization has on a host of a fixture (names qualified by host and fabric
 * run, `Fabric.qualifier`): of the fixture whose run is given, else of the fixture started last and still open.
 */
export function hostPrefix(mzid: string, host: string, run?: string): string {
  const r = run ?? openRuns.at(-1);
  if (!r) throw new Error(`hostPrefix(${mzid}, ${host}): no hosts fixture is open`);
  return prefixOn(mzid, `${host}@${r}`);
}

/** Runs of the fixtures started and not closed, oldest first (hostPrefix's default). */
const openRuns: string[] = [];
