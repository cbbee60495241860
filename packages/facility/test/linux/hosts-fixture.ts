/**
 * A facility of N hosts on this one machine, for tests and benchmarks: each
 * host is a network namespace with its own underlay address on a fabric
 * bridge, its own data directory, its own host certificate and its own agent
 * process (`daemon.ts agent`, run in the host's namespace and qualifying its
 * kernel object names with the host's name). The facility (commander, driver,
 * rex, host registry) runs in this process on the fabric's first address, so
 * the fabric is its underlay too. `close()` removes everything: agents (by
 * pid), what each host's data directory holds, the host namespaces, the fabric.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { fragmentToPb, type MaterializationPlan } from "@merge/materialize";
import * as pb from "@merge/proto";
import { openStore, type Store } from "@merge/store";
import type { Facility } from "@merge/xir";
import { certFiles, loadTls, makeCerts, makeHostCert } from "../../src/certs.ts";
import { type RunningFacility, startFacility } from "../../src/facility.ts";
import { tlsClient } from "../../src/grpc.ts";
import { harborSpecOf } from "../../src/harbor.ts";
import { listHosts } from "../../src/host/records.ts";
import { LinuxBackend } from "../../src/linux/backend.ts";
import { nativeProgram } from "../../src/linux/native.ts";
import { alive, listNetns } from "../../src/linux/processes.ts";
import { prefixesOwned } from "../../src/linux/state.ts";
import { isClean, leftovers, sweep } from "../../src/linux/sweep.ts";
import { UNDERLAY_MTU } from "../../src/linux/vtep.ts";

const DAEMON = fileURLToPath(new URL("../../src/daemon.ts", import.meta.url));

export interface FixtureHost {
  name: string;
  netns: string;
  underlay: string;
  dataDir: string;
  certs: string;
  agent?: ChildProcess;
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
  hosts: FixtureHost[];
  /** The fabric's first address: the facility's own underlay address. */
  gateway: string;
  certs: string;
  close(): Promise<void>;
}

function ip(args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
}

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
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
    harbor?: boolean;
    /**
     * A routed underlay (a wide-area facility): these hosts are on a second
     * subnet behind a router namespace that delays each way by `delayMs`.
     */
    routed?: { hosts: string[]; delayMs: number };
    /** More arguments for a host's agent (e.g. a shared host's `--nat`). */
    agentArgs?: (host: string) => string[];
  } = {},
): Promise<HostsFixture> {
  const run = `mh${randomBytes(2).toString("hex")}`;
  const tmp = mkdtempSync(join(tmpdir(), `mrg-${run}-`));
  const subnet = `10.${200 + (randomBytes(1)[0]! % 50)}.${randomBytes(1)[0]! % 250}`;
  const gateway = `${subnet}.1`;
  const bridge = `${run}fab`;
  // The far side of a routed underlay: its own bridge and subnet, a router namespace between.
  const far = `${run}far`;
  const router = `${run}-rt`;
  const delay = `${run}-dl`;
  let delayLine: ChildProcess | undefined;
  const farNet = `10.${200 + ((Number(subnet.split(".")[1]) - 200 + 25) % 50)}.${subnet.split(".")[2]}`;
  const made: FixtureHost[] = [];
  let facility: RunningFacility | undefined;
  let store: Store | undefined;
  let local: LinuxBackend | undefined;

  const step = (m: string) => process.env.HOSTS_DEBUG && console.error(`hosts fixture ${run}: ${m}`);
  const close = async () => {
    for (const h of made) {
      step(`stopping agent ${h.name}`);
      await h.kill("SIGTERM").catch(() => h.kill("SIGKILL"));
    }
    step("closing the facility");
    await facility?.close();
    step("closing the local backend and the store");
    await local?.close();
    await store?.close();
    step("sweeping");
    const left: string[] = [];
    for (const dir of [...made.map((h) => h.dataDir), join(tmp, "facility")]) {
      for (const prefix of prefixesOwned(dir)) {
        const l = await sweep(prefix, dir);
        if (!isClean(l)) left.push(`${prefix}: ${JSON.stringify(l)}`);
      }
    }
    for (const h of made) if (listNetns().includes(h.netns)) spawnSync("ip", ["netns", "del", h.netns]);
    if (delayLine?.pid && delayLine.exitCode === null) {
      const gone = new Promise((r) => delayLine?.once("exit", r));
      delayLine.kill("SIGKILL");
      await gone;
    }
    for (const ns of [router, delay]) if (listNetns().includes(ns)) spawnSync("ip", ["netns", "del", ns]);
    spawnSync("ip", ["link", "del", bridge]);
    spawnSync("ip", ["link", "del", far]);
    rmSync(tmp, { recursive: true, force: true });
    if (left.length) throw new Error(`hosts fixture ${run} left behind: ${left.join("; ")}`);
  };

  try {
    // The underlay carries the tunnels' overhead (vtep.ts): 1550 on the fabric, 1500 for nodes.
    ip(["link", "add", bridge, "mtu", String(UNDERLAY_MTU), "type", "bridge"]);
    ip(["addr", "add", `${gateway}/24`, "dev", bridge]);
    ip(["link", "set", bridge, "up"]);
    if (opts.routed) {
      // fabric (subnet.0/24) ⇄ router ⇄ delay line ⇄ far bridge (farNet.0/24). The delay line is the
      // data plane's own userspace one (mrg-emu: this kernel may have no netem), each way delayed.
      ip(["link", "add", far, "mtu", String(UNDERLAY_MTU), "type", "bridge"]);
      ip(["link", "set", far, "up"]);
      ip(["netns", "add", router]);
      ip(["netns", "add", delay]);
      const mtu = ["mtu", String(UNDERLAY_MTU)];
      ip(["link", "add", `${run}ra`, ...mtu, "type", "veth", "peer", "name", "ra", "netns", router]);
      ip(["link", "set", `${run}ra`, "master", bridge, "up"]);
      ip(["-n", router, "link", "add", "rb", ...mtu, "type", "veth", "peer", "name", "d0", "netns", delay]);
      ip(["link", "add", `${run}rf`, ...mtu, "type", "veth", "peer", "name", "d1", "netns", delay]);
      ip(["link", "set", `${run}rf`, "master", far, "up"]);
      ip(["-n", router, "addr", "add", `${subnet}.254/24`, "dev", "ra"]);
      ip(["-n", router, "addr", "add", `${farNet}.1/24`, "dev", "rb"]);
      // A veth's peer takes the default MTU: every leg carries the tunnels' overhead.
      for (const dev of ["ra", "rb"]) ip(["-n", router, "link", "set", dev, ...mtu]);
      for (const dev of ["d0", "d1"]) ip(["-n", delay, "link", "set", dev, ...mtu]);
      for (const dev of ["lo", "ra", "rb"]) ip(["-n", router, "link", "set", dev, "up"]);
      for (const dev of ["lo", "d0", "d1"]) ip(["-n", delay, "link", "set", dev, "up"]);
      const emu = await nativeProgram(tmp, "mrg-emu");
      const ns = `${opts.routed.delayMs * 1e6}`;
      delayLine = spawn(emu, ["-n", `/run/netns/${delay}`, "-c", join(tmp, "delay.sock"), `d0:${ns}:0`, `d1:${ns}:0`], {
        stdio: ["ignore", "ignore", openSync(join(tmp, "delay.log"), "a")],
      });
      ip(["netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
      // The facility (on the fabric) reaches the far side through the router; the route goes with the bridge.
      ip(["route", "add", `${farNet}.0/24`, "via", `${subnet}.254`, "dev", bridge]);
    }
    const certs = join(tmp, "certs");
    makeCerts(certs, { facility: model.name, hosts: [gateway] });
    store = openStore({ backend: "sqlite", dir: join(tmp, "store") });
    local = await LinuxBackend.open({ dataDir: join(tmp, "facility"), defaultImage: "busybox" });
    facility = await startFacility({
      store,
      backend: local,
      model,
      certs,
      host: gateway,
      underlay: gateway,
      ...(opts.leaseTtl ? { hostLeaseTtl: opts.leaseTtl } : {}),
      ...(opts.harbor ? { harbor: harborSpecOf(model) } : {}),
    });
    const registry = facility.hostRegistryUrl;
    if (!registry) throw new Error(`model ${model.name} names no hosts`);
    hosts.forEach((name, i) => {
      const netns = `${run}-${name}`;
      const isFar = opts.routed?.hosts.includes(name) ?? false;
      const underlay = `${isFar ? farNet : subnet}.${10 + i}`;
      const dataDir = join(tmp, name);
      mkdirSync(dataDir, { recursive: true });
      const hcerts = join(tmp, `${name}-certs`);
      makeHostCert(certs, hcerts, name, { addresses: [underlay] });
      ip(["netns", "add", netns]);
      ip([
        "link",
        "add",
        `${run}v${i}`,
        "mtu",
        String(UNDERLAY_MTU),
        "type",
        "veth",
        "peer",
        "name",
        "ul0",
        "netns",
        netns,
      ]);
      ip(["link", "set", `${run}v${i}`, "master", isFar ? far : bridge, "up"]);
      ip(["-n", netns, "addr", "add", `${underlay}/24`, "dev", "ul0"]);
      ip(["-n", netns, "link", "set", "ul0", "mtu", String(UNDERLAY_MTU), "up"]);
      ip(["-n", netns, "link", "set", "lo", "up"]);
      // Across the router: each side's hosts reach the other subnet through it.
      if (opts.routed)
        ip([
          "-n",
          netns,
          "route",
          "add",
          `${isFar ? subnet : farNet}.0/24`,
          "via",
          isFar ? `${farNet}.1` : `${subnet}.254`,
        ]);
      const h: FixtureHost = {
        name,
        netns,
        underlay,
        dataDir,
        certs: hcerts,
        async start() {
          const log = createWriteStream(join(tmp, `${name}-agent.log`), { flags: "a" });
          const before = (await listHosts(store as Store)).find((x) => x.name === name)?.pid;
          // nsenter only enters the network namespace: mounts (node roots) stay the machine's, as on a host.
          const child = spawn(
            "nsenter",
            [
              `--net=/run/netns/${netns}`,
              "--",
              process.execPath,
              "--import",
              "tsx",
              DAEMON,
              "agent",
              "--name",
              name,
              "--registry",
              registry,
              "--certs",
              hcerts,
              "--data-dir",
              dataDir,
              "--underlay",
              underlay,
              "--default-image",
              "busybox",
              "--qualify-names",
              ...(opts.agentArgs?.(name) ?? []),
            ],
            { stdio: ["ignore", "pipe", "pipe"] },
          );
          child.stdout?.pipe(log);
          child.stderr?.pipe(log);
          h.agent = child;
          await until(
            `agent ${name} registered`,
            async () => {
              if (child.exitCode !== null)
                throw new Error(
                  `agent ${name} exited (${child.exitCode}): ${readFileSync(join(tmp, `${name}-agent.log`), "utf8").slice(-2000)}`,
                );
              const rec = (await listHosts(store as Store)).find((x) => x.name === name);
              return !!rec?.alive && rec.pid === child.pid && rec.pid !== before;
              // A first start compiles the native programs into the host's data directory: slow on a loaded machine.
            },
            180_000,
          );
        },
        async kill(signal = "SIGKILL") {
          const c = h.agent;
          if (!c?.pid || c.exitCode !== null || c.signalCode !== null) return;
          const exited = new Promise<void>((r) => c.once("exit", () => r()));
          c.kill(signal);
          const t = setTimeout(() => c.kill("SIGKILL"), 10_000);
          await exited;
          clearTimeout(t);
          if (alive(c.pid)) throw new Error(`agent ${name} (pid ${c.pid}) is still running`);
        },
      };
      made.push(h);
    });
    await Promise.all(made.map((h) => h.start()));
    return {
      run,
      tmp,
      store,
      facility,
      local,
      hosts: made,
      gateway,
      certs,
      close,
    };
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}

/** What the run left on the machine: its namespaces, interfaces, agents; empty after close(). */
/**
 * The suite's hosts: started before its tests (unless `skip` says why not),
 * closed after them, then checked that nothing of the run is left. Its members
 * are there once the suite's \`before\` has run.
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
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** The kernel object prefix a materialization has on a host of the fixture (names qualified by host). */
export function hostPrefix(mzid: string, host: string): string {
  return `mg${createHash("sha256").update(`${mzid}@${host}`).digest("hex").slice(0, 6)}`;
}
