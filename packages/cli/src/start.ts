// npm start: the whole stack on one machine, with embedded defaults.
//
//   portal (this process)  ── gRPC/HTTP2 + mutual TLS over loopback ──►  facility (child process)
//   sqlite store in <data>/portal                                        commander + driver + rex
//   web UI at /ui/, API docs at /docs                                    sqlite store in <data>/facility
//                                                                        linux backend as root, else sim
//
// State lives in the data directory (default .data, or MERGE_DATA_DIR); a second
// start reuses it. The facility's certificates are made on first start; the
// portal's client credentials are copied to it, as an operator would hand them over.
//
// The facility child lives only as long as this process: it watches a pipe whose
// other end only this process holds (`--parent-fd`), so even a SIGKILL here stops
// it. Its pid is in <data>/facility/facility.pid; a start finding one of this data
// directory still running (an older start's) stops it first.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { facilityDaemonArgv, freePort, makeCerts } from "@merge/facility";
import { phobos, wideArea } from "@merge/facility-model";
import { PortalClient } from "@merge/portal/client";
import { startPortal } from "@merge/portal/main";
import { credentialsConnector, materializationPlugin } from "@merge/portal/materialize";
import type { EtcdServer } from "@merge/store/etcd-server";
import { DIST_DIR, webUiPlugin } from "@merge/web";
import { buildWeb, webUiCurrent } from "@merge/web/build";
import { parseQuantity } from "@merge/xir";
import { recordStart } from "./config.ts";
import { forgetStoreUrl, startLocalEtcd } from "./start-etcd.ts";
import { type StartedHosts, startHosts } from "./start-hosts.ts";
import { startMoreFacilities } from "./start-sites.ts";
import { WIDE_AREA_SITES, wideAreaLayout } from "./start-wide-area.ts";
import { type StartedXdc, startXdc } from "./start-xdc.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const { values } = parseArgs({
  options: {
    data: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: process.env.MERGE_PORT ?? "8080" },
    "facility-port": { type: "string", default: "6000" },
    "ssh-port": { type: "string", default: process.env.MERGE_SSH_PORT ?? "2202" },
    "storage-port": { type: "string", default: process.env.MERGE_STORAGE_PORT ?? "2203" },
    backend: { type: "string", default: process.env.MERGE_BACKEND ?? "auto" },
    store: { type: "string", default: process.env.MERGE_STORE ?? "sqlite" },
    "facility-metrics-port": { type: "string" },
    facilities: { type: "string", default: "1" },
    hosts: { type: "string" },
    "wide-area": { type: "boolean", default: false },
    "wan-latency": { type: "string", default: "15ms" },
    "wan-rate": { type: "string", default: "100Mbit" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(`npm start [-- --data DIR] [--port 8080] [--facility-port 6000] [--ssh-port 2202] [--storage-port 2203] [--backend auto|linux|sim]
          [--store sqlite|etcd] [--facility-metrics-port N]

       [--facilities N] [--wan-latency 15ms] [--wan-rate 100Mbit] [--hosts N] [--wide-area]

Starts a portal and the demo facility (phobos). --backend auto uses the linux data plane
when running as root with network namespaces, and the simulator otherwise. --store etcd
runs a local etcd (Debian's etcd-server; data in DIR/etcd) that portal and facility share,
instead of their sqlite files. The facility's Prometheus metrics are served on loopback at
--facility-metrics-port (default: the facility port + 10, or a free port with --facility-port 0). --facilities N
adds N-1 facilities (deimos, site3, …), each its own process, every facility in its own
site, the sites joined by an emulated wide area (one-way latency, rate). --hosts N (linux backend)
runs the demo facility over N hosts on this machine (h1 … hN: a network namespace, underlay address
and host agent each, on a fabric bridge); they are removed when start stops. --wide-area (linux backend)
runs a wide-area facility of shared hosts (geni) instead of phobos: --hosts sites (default 3), site1 …
behind a router delaying each way by --wan-latency, one node per experiment per host, nodes reached
from outside through NAT on their host's address (ssh -p PORT ADDRESS, as 'mrg show materialization'
says); its data directory defaults to .data/wide-area. On the linux backend the portal's storage server
(SFTP, --storage-port, 0: none) serves /home and /proj to facilities on other machines; the portal
lists their keys itself (a facility started with --storage sftp://… mounts once it is asked).`);
  process.exit(0);
}

if (values.store !== "sqlite" && values.store !== "etcd") {
  console.error(`start: --store '${values.store}': expected sqlite or etcd`);
  process.exit(2);
}
const wide = values["wide-area"] === true;
const data = resolve(values.data ?? process.env.MERGE_DATA_DIR ?? (wide ? join(".data", "wide-area") : ".data"));
// cog (from any directory) finds this facility's store and backend through this record.
recordStart({ data });
const facilityDir = join(data, "facility");
const certs = join(facilityDir, "certs");
mkdirSync(facilityDir, { recursive: true, mode: 0o700 });

const backend = await chooseBackend(values.backend as string);
const hostCount = Number(values.hosts ?? (wide ? WIDE_AREA_SITES : 1));
if (!Number.isInteger(hostCount) || hostCount < (wide ? 2 : 1) || hostCount > 8) {
  console.error(`start: --hosts '${values.hosts}': expected a whole number from ${wide ? 2 : 1} to 8`);
  process.exit(2);
}
if ((hostCount > 1 || wide) && backend !== "linux") {
  console.error(
    `start: ${wide ? "--wide-area" : "--hosts"} needs the linux backend (root, network namespaces): hosts are namespaces here`,
  );
  process.exit(2);
}
if (wide && Number(values.facilities) > 1) {
  console.error("start: --wide-area runs one facility (its hosts are the sites); leave out --facilities");
  process.exit(2);
}
// --wide-area: the wide area's one-way latency is the router's delay between the sites.
const wideLayout = wide
  ? wideAreaLayout(hostCount, parseQuantity(values["wan-latency"] as string, "ns", { what: "--wan-latency" }) / 1e6)
  : undefined;
const demo = wide ? wideArea({ sites: hostCount }) : phobos();
if (!existsSync(join(certs, "ca.pem"))) makeCerts(certs, { facility: demo.name });
// Port 0: any free ports (tests); otherwise the commander, registry and driver take three in a row.
const facilityPorts =
  Number(values["facility-port"]) === 0
    ? [await freePort(), await freePort(), await freePort()]
    : [0, 1, 2].map((i) => Number(values["facility-port"]) + i);
// --hosts N: the hosts and the model spread over them (start-hosts.ts); the host registry on the port after the driver's.
const hosts: StartedHosts | undefined =
  hostCount > 1
    ? await startHosts({
        data,
        count: hostCount,
        demo,
        certs,
        registryPort: Number(values["facility-port"]) === 0 ? await freePort() : (facilityPorts[2] as number) + 1,
        ...(wideLayout ? { layout: wideLayout } : {}),
      }).catch((e: Error) => {
        console.error(`start: --hosts: ${e.message}`);
        process.exit(1);
      })
    : undefined;
const model = hosts?.model ?? demo;
// Until stop() is in place: a signal still removes the hosts (the facility child follows its pipe).
const stopHostsEarly = () => void (hosts?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
if (hosts) {
  process.once("SIGINT", stopHostsEarly);
  process.once("SIGTERM", stopHostsEarly);
}
const modelFile = join(facilityDir, `${model.name}.json`);
writeFileSync(modelFile, JSON.stringify(model, null, 2));

// The portal's credentials for this facility, as `cog certs make` issued them.
const creds = join(data, "portal", "facility-credentials");
mkdirSync(join(creds, model.name), { recursive: true, mode: 0o700 });
for (const f of ["ca.pem", "portal.pem", "portal-key.pem"]) copyFileSync(join(certs, f), join(creds, model.name, f));
const facilityPort = facilityPorts[0] as number;
const metricsPort =
  values["facility-metrics-port"] !== undefined
    ? Number(values["facility-metrics-port"])
    : facilityPort === 0 || Number(values["facility-port"]) === 0
      ? 0
      : facilityPort + 10;
// --store etcd: one local etcd for portal and facility, dying with this process (start-etcd.ts).
const etcd: EtcdServer | undefined = values.store === "etcd" ? await startLocalEtcd(data) : undefined;
if (!etcd) forgetStoreUrl(data);
const facilityStore = etcd?.url ?? `sqlite://${join(facilityDir, "store")}`;
const pidFile = join(facilityDir, "facility.pid");
await stopStaleFacility();
// --facilities N on linux: the demo facility is the wide area's first site, made after it starts.
const wanRun = `mw${randomBytes(2).toString("hex")}`;
const demoSite =
  backend === "linux" && Number(values.facilities) > 1
    ? (await import("@merge/facility/linux")).siteOf(wanRun, 0, model.name)
    : undefined;
const { child: facility, ready: facilityReady } = startFacilityProcess(backend);
writeFileSync(pidFile, `${facility.pid}\n`);
facility.once("exit", () => rmSync(pidFile, { force: true }));

// --facilities N: more facilities beside the demo, in sites on a wide area (start-sites.ts).
const facilityCount = Number(values.facilities);
if (!Number.isInteger(facilityCount) || facilityCount < 1 || facilityCount > 8) {
  console.error(`start: --facilities '${values.facilities}': expected a whole number from 1 to 8`);
  process.exit(2);
}
const more =
  facilityCount > 1
    ? await startMoreFacilities({
        data,
        backend,
        count: facilityCount,
        demo: model,
        latency: values["wan-latency"] as string,
        rate: values["wan-rate"] as string,
        run: wanRun,
      }).catch((e: Error) => {
        console.error(`start: ${e.message}`);
        process.exit(2);
      })
    : undefined;

// Built on the first start, and again when its sources changed since (a `git pull`).
if (!webUiCurrent()) {
  const first = !existsSync(join(DIST_DIR, "index.html"));
  console.log(first ? "building the web UI (first start only) ..." : "rebuilding the web UI (its sources changed) ...");
  await buildWeb();
}

// XDCs are containers: the linux backend's host only.
const xdc: StartedXdc | undefined =
  backend === "linux" ? await startXdc(data, Number(values["ssh-port"]), Number(values["storage-port"])) : undefined;
const portal = await startPortal({
  dataDir: join(data, "portal"),
  ...(etcd ? { storeUrl: etcd.url } : {}),
  host: values.host,
  port: Number(values.port),
  plugins: [
    materializationPlugin({ connect: credentialsConnector(creds), ...(xdc?.storage ? { storage: xdc.storage } : {}) }),
    webUiPlugin(),
    ...(xdc ? [xdc.plugin] : []),
  ],
  seed: [{ model, endpoint: `https://127.0.0.1:${facilityPort}`, description: "demo facility" }],
});

await registerFacility();
let facilityMetrics: string | undefined;
// "Merge is running" only once the facility is: its harbor up, its commander listening.
console.log(`waiting for the facility ${model.name} (${backend} backend: bringing up the harbor) ...`);
try {
  facilityMetrics = await facilityReady;
  if (hosts) {
    console.log(`starting the host agents of ${hosts.fabric.hosts.map((h) => h.name).join(", ")} ...`);
    await hosts.startAgents(demoSite);
  }
} catch (err) {
  console.error(`start: ${(err as Error).message}`);
  await portal.stop().catch(() => {});
  facility.kill("SIGTERM");
  await hosts?.stop().catch((e: Error) => console.error(`start: ${e.message}`));
  process.exit(1);
}

// One machine-readable line first (tests and scripts read it), then the human summary.
console.log(
  `START ${JSON.stringify({ url: portal.url, facility: facility.pid, facilityPort, facilityMetrics, backend, data, store: etcd?.url ?? "sqlite", ...(etcd ? { etcd: etcd.pid } : {}), ...(hosts ? { hosts: hosts.fabric.hosts.map((h) => ({ name: h.name, underlay: h.underlay, netns: h.netns, agent: h.agent?.pid })), fabric: hosts.fabric.run } : {}), ...(more ? { more: more.sites.facilities.map((f) => ({ name: f.name, pid: f.process.child.pid, site: f.site?.netns })) } : {}) })}`,
);
console.log(`
Merge is running.
  portal     ${portal.url}   (web UI ${portal.url}/ui/, API docs ${portal.url}/docs)
  ssh        ${xdc ? xdc.summary : "no XDCs or jump host (they need the linux backend)"}
  storage    ${xdc ? xdc.storageSummary : "no storage server (it needs the linux backend)"}
  facility   ${model.name}: commander https://127.0.0.1:${facilityPort}, ${backend} backend (log: ${join(facilityDir, "facility.log")})${hosts ? `\n  ${hosts.summary().join("\n  ")}` : ""}${more ? `\n  ${more.summary.join("\n  ")}` : ""}
  metrics    ${facilityMetrics ?? "none"} (the facility's; the portal's at ${portal.url}/metrics, administrators)
  store      ${etcd ? `etcd ${etcd.endpoints[0]} (pid ${etcd.pid}, data ${etcd.dataDir}), portal and facility` : "sqlite files in the data directory"}
  data       ${data}
  admin      ${portal.admin.name}${portal.admin.created ? ` / ${portal.admin.password}   (also in ${join(data, "portal", "admin-credentials")})` : `   (password printed on the first start; as first set, in ${join(data, "portal", "admin-credentials")})`}

Try the demo (README "${wide ? "A wide-area facility" : "Quick start"}"):
  export MERGE_PORTAL=${portal.url}
  npx mrg login admin --password '${portal.admin.created ? portal.admin.password : "<admin password>"}'
${
  wide
    ? `  npx mrg keys add
  npx mrg new experiment wide.admin
  npx mrg push examples/wide-area.ts wide.admin
  npx mrg realize r1.wide.admin --accept
  npx mrg materialize r1.wide.admin
  npx mrg show materialization r1.wide.admin     # each node's 'ssh -p PORT ADDRESS' through its host's NAT
  ssh -p <PORT> admin@<ADDRESS> hostname`
    : `  npx mrg new experiment demo.admin
  npx mrg push examples/demo.ts demo.admin
  npx mrg realize r1.demo.admin --accept
  npx mrg materialize r1.demo.admin
  npx mrg exec c0 r1.demo.admin -- ping -c 3 server`
}

The facility's operator view (cog finds this store from any directory):
  npx cog harbor
  npx cog list mz${
    backend === "linux"
      ? `
  npx cog host list`
      : ""
  }

mrg, mergectl and cog outside this checkout: scripts/setup.sh --link (symlinks in /usr/local/bin).

Ctrl-C stops everything: the portal and the facility.${
  hosts
    ? `
The hosts go with it: their agents, what they carry (the harbor, materializations), namespaces and fabric.`
    : backend === "linux"
      ? `
(The harbor and active materializations keep running on the host, and the next start takes
them back; 'npx cog host sweep --all --data-dir ${join(facilityDir, "backend")}' removes them.)`
      : ""
}`);

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await portal.stop().catch(() => {});
  await xdc?.stop().catch(() => {});
  await more?.stop().catch(() => {});
  if (facility.exitCode === null && facility.signalCode === null) {
    facility.kill("SIGTERM");
    await new Promise<void>((res) => {
      const t = setTimeout(() => {
        facility.kill("SIGKILL");
        res();
      }, 15_000);
      facility.once("exit", () => {
        clearTimeout(t);
        res();
      });
    });
  }
  await hosts?.stop().catch((e: Error) => {
    console.error(`start: ${e.message}`);
    code = code || 1;
  });
  await etcd?.stop().catch(() => {});
  process.exit(code);
}
process.off("SIGINT", stopHostsEarly);
process.off("SIGTERM", stopHostsEarly);
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
facility.once("exit", (code, signal) => {
  if (stopping) return;
  console.error(
    `start: the facility process exited (${signal ?? `code ${code}`}); see ${join(facilityDir, "facility.log")}`,
  );
  void stop(1);
});

/**
 * Point the portal's record of the demo facility at the commander just started, with its CA. As the
 * administrator through a one-minute API token made in-process (never the password: it may have changed).
 */
async function registerFacility(): Promise<void> {
  const adminUser = await portal.portal.ctx.identity.activeUser(portal.admin.name);
  if (adminUser === undefined) {
    console.error(`start: no active account '${portal.admin.name}'; the facility's endpoint is not updated`);
    return;
  }
  const { token, record } = await portal.portal.ctx.identity.issueToken(adminUser, "npm start", 60);
  const admin = new PortalClient(portal.url, token);
  try {
    await admin.updateFacility(model.name, {
      endpoint: `https://127.0.0.1:${facilityPort}`,
      certificate: readFileSync(join(certs, "ca.pem"), "utf8"),
    });
    await more?.register(admin);
  } finally {
    await admin.deleteToken(adminUser.name, record.id).catch(() => {});
  }
}

/**
 * Stops a facility an earlier start of this data directory left running (its pid file names a live
 * daemon of this directory): SIGTERM, then SIGKILL after 20 s. Anything else the pid names is left alone.
 */
async function stopStaleFacility(): Promise<void> {
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").trim()) : Number.NaN;
  if (!Number.isInteger(pid) || pid <= 0 || !isOurFacility(pid)) return;
  console.log(`stopping the facility an earlier start left running (pid ${pid}) ...`);
  process.kill(pid, "SIGTERM");
  for (let waited = 0; isOurFacility(pid); waited += 100) {
    if (waited >= 20_000) process.kill(pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 100));
  }
  rmSync(pidFile, { force: true });
}

/** Whether `pid` runs this data directory's facility daemon (its command line names both). */
function isOurFacility(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
    return state !== "Z" && argv.some((a) => a.endsWith("daemon.ts")) && argv.includes(certs);
  } catch {
    return false;
  }
}

/**
 * The facility as a child process, its output appended to facility.log. `ready`
 * settles when the daemon says its commander is up (after reconcile and the
 * harbor), or fails with the log's last lines if it exits first.
 */
function startFacilityProcess(kind: string): { child: ChildProcess; ready: Promise<string | undefined> } {
  const logFile = join(facilityDir, "facility.log");
  const log = createWriteStream(logFile, { flags: "a" });
  const child = spawn(
    process.execPath,
    [
      ...facilityDaemonArgv({
        store: facilityStore,
        certs,
        modelFile,
        ports: { commander: facilityPort, registry: facilityPorts[1] as number, driver: facilityPorts[2] as number },
        backend: kind,
        dataDir: join(facilityDir, "backend"),
      }),
      // One machine: nodes bind-mount the portal's homes and project directories (as XDCs do).
      ...(kind === "linux" ? ["--storage", join(data, "portal")] : []),
      "--metrics-port",
      String(metricsPort),
      "--parent-fd",
      "3",
      ...(demoSite ? ["--site", demoSite.netns, "--site-address", demoSite.address] : []),
      ...(hosts?.facilityArgs ?? []),
    ],
    // fd 3: a pipe only this process writes to; its end tells the daemon this process is gone.
    { cwd: root, stdio: ["ignore", "pipe", "pipe", "pipe"] },
  );
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  // Resolves with the metrics URL the daemon's start-up line gives.
  const ready = new Promise<string | undefined>((res, rej) => {
    let seen = "";
    const onData = (d: Buffer) => {
      seen = (seen + d.toString()).slice(-8192);
      const up = /^facility \S+: commander .*$/m.exec(seen);
      if (up) {
        child.stderr?.off("data", onData);
        child.off("exit", onExit);
        res(/, metrics (\S+)/.exec(up[0])?.[1]);
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      const tail = seen.trim().split("\n").slice(-15).join("\n  ");
      rej(new Error(`the facility exited (${signal ?? `code ${code}`}) before it was up; from ${logFile}:\n  ${tail}`));
    };
    child.stderr?.on("data", onData);
    child.once("exit", onExit);
  });
  return { child, ready };
}

async function chooseBackend(asked: string): Promise<"linux" | "sim"> {
  if (asked === "sim") return "sim";
  if (asked !== "auto" && asked !== "linux") {
    console.error(`start: --backend '${asked}': expected auto, linux or sim`);
    process.exit(2);
  }
  const { detectCapabilities, describeCapabilities, requireCapabilities } = await import("@merge/facility/linux");
  const caps = await detectCapabilities();
  try {
    requireCapabilities(caps);
    for (const line of describeCapabilities(caps)) console.log(`  ${line}`);
    return "linux";
  } catch (err) {
    if (asked === "linux") {
      console.error(`start: ${(err as Error).message}`);
      process.exit(2);
    }
    console.log(`using the sim backend: ${(err as Error).message}`);
    return "sim";
  }
}
