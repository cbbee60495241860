/**
 * Facility daemons as processes:
 *
 *   daemon.ts rex --store <url> [--backend sim] [--concurrency N] [--lease-ttl S]
 *                 [--sim-durations imaging,power,network,infrapod] [--journal file]
 *   daemon.ts facility --store <url> --certs <dir> --model <facility.json>
 *                 [--host 127.0.0.1] [--port 6000] [--registry-port 6001] [--driver-port 6002]
 *                 [--backend sim|linux] [--data-dir <dir>] [--sim-durations ...] [--no-harbor]
 *                 [--parent-fd N] [--host-registry-port 6003] [--metrics-port N] [--metrics-host 127.0.0.1]
 *                 [--qualify-names] [--storage <dir>|sftp://host:port --storage-host-key <key>] [--site <netns> --site-address <addr>]
 *                 [--host-registry-host <addr>] [--underlay <addr>] [--agent-call-timeout S]
 *   daemon.ts agent --name <host> --registry <url> --certs <dir> --data-dir <dir> --underlay <addr>
 *                 [--listen-port N] [--backend linux|sim] [--default-image busybox] [--qualify-names [--name-qualifier Q]]
 *                 [--nat FIRST-LAST[/PORTS_PER_NODE]] [--nat-address <addr>]  (a shared host's NAT to its nodes; overrides the model's hosts.<name>.nat)
 *                 [--site <netns> --site-address <addr>]  (the host carrying the facility's gateway: its wide-area side)
 *                 [--parent-fd N]
 *
 * `facility` runs a whole facility in one process (the single-machine default):
 * commander, one driver serving every resource of the model, a rex worker, and
 * the harbor (`main.harbor.<facility>`: every unallocated testbed node waits
 * there in standby; `--no-harbor` leaves it out). `--metrics-port` serves its
 * Prometheus metrics at http://<metrics-host>:<port>/metrics (plain HTTP, loopback
 * by default; 0 = a free port; absent = none); the URL is in the start-up line.
 *
 * Runs until SIGTERM/SIGINT (graceful: running actions finish, claims are
 * released), or, with `--parent-fd N`, until the pipe on fd N reaches its end:
 * the parent holds the other end, so however the parent ends (even SIGKILL)
 * the kernel closes it and the daemon stops with it (`npm start`; its host
 * agents too). A model naming hosts: `--host-registry-host` is where their
 * agents reach the registry (the fabric's address; default `--host`) and
 * `--underlay` the facility's own VTEP address. `--journal` appends one JSON line per rex outcome, for tests.
 * Run with `node --import tsx`; no shebang (tsx cannot parse a module with one
 * that also uses `import()`).
 */
import { appendFileSync, readFileSync } from "node:fs";
import { Socket } from "node:net";
import { parseArgs } from "node:util";
import { openStore } from "@merge/store";
import { type Facility, formatSchemaErrors, hostProblems, validateFacility } from "@merge/xir";
import { MergeError } from "@merge/xir/errors";
import type { Backend } from "./backend.ts";
import { reconcileBackend, startFacility } from "./facility.ts";
import { harborSpecOf } from "./harbor.ts";
import type { OpenStorage } from "./linux/storage-remote.ts";
import { Rex } from "./rex.ts";
import { SimBackend, type SimDurations } from "./sim/sim.ts";

export class DaemonUsageError extends MergeError<"facility"> {
  constructor(message: string, options?: ErrorOptions) {
    super("facility", "usage", message, options);
  }
}

function durations(s: string | undefined): Partial<SimDurations> | undefined {
  if (s === undefined) return undefined;
  const v = s.split(",").map(Number);
  if (v.length !== 4 || v.some((x) => !Number.isFinite(x) || x < 0)) {
    throw new DaemonUsageError(
      `--sim-durations '${s}': expected four ms values imaging,power,network,infrapod, e.g. 400,100,20,50`,
    );
  }
  return { imaging: v[0]!, power: v[1]!, network: v[2]!, infrapod: v[3]! };
}

/** The sim backend, or the linux data plane (loaded only when asked for; needs root and namespaces). */
async function openBackend(
  kind: string | undefined,
  simDurations: string | undefined,
  dataDir: string | undefined,
  site?: { netns: string; address: string },
  storage?: string,
): Promise<Backend> {
  // Other rex processes may have done a step's prerequisites: this process's model cannot know.
  if (kind === undefined || kind === "sim")
    return new SimBackend({ durations: durations(simDurations), strict: false });
  if (kind === "linux") {
    if (!dataDir)
      throw new DaemonUsageError("--backend linux needs --data-dir <dir> (images, node layers, infrapod files)");
    const { LinuxBackend } = await import("./linux/index.ts");
    return LinuxBackend.open({
      dataDir,
      log: (m) => console.error(m),
      ...(site ? { site } : {}),
      ...(storage ? { storage } : {}),
    });
  }
  throw new DaemonUsageError(`--backend '${kind}': expected sim or linux`);
}

async function rexMain(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      store: { type: "string" },
      backend: { type: "string", default: "sim" },
      concurrency: { type: "string", default: "64" },
      "lease-ttl": { type: "string", default: "10" },
      "sim-durations": { type: "string" },
      journal: { type: "string" },
      id: { type: "string" },
      "data-dir": { type: "string" },
    },
  });
  if (!values.store) throw new DaemonUsageError("rex: --store <url> is required (sqlite:///dir, etcd://host:port)");
  const backend = await openBackend(values.backend, values["sim-durations"], values["data-dir"]);
  const store = openStore(values.store);
  // A rex worker on a linux host also takes over after a crash: orphans go before it runs anything.
  await reconcileBackend(store, backend, (m) => console.error(m));
  const journal = values.journal;
  const rex = new Rex({
    store,
    backend,
    ...(values.id ? { id: values.id } : {}),
    concurrency: Number(values.concurrency),
    leaseTtl: Number(values["lease-ttl"]),
    log: (m) => console.error(m),
    onEvent: journal ? (e) => appendFileSync(journal, `${JSON.stringify({ ...e, pid: process.pid })}\n`) : undefined,
  });
  await rex.start();
  console.error(`rex ${rex.id}: running on ${store.backend} with the ${backend.name} backend`);
  const stop = async () => {
    await rex.stop();
    await backend.close();
    await store.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}

async function facilityMain(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      store: { type: "string" },
      certs: { type: "string" },
      model: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "6000" },
      "registry-port": { type: "string", default: "6001" },
      "driver-port": { type: "string", default: "6002" },
      backend: { type: "string", default: "sim" },
      "sim-durations": { type: "string" },
      "data-dir": { type: "string" },
      "no-harbor": { type: "boolean", default: false },
      "parent-fd": { type: "string" },
      "host-registry-port": { type: "string", default: "6003" },
      "metrics-port": { type: "string" },
      "metrics-host": { type: "string", default: "127.0.0.1" },
      "qualify-names": { type: "boolean", default: false },
      site: { type: "string" },
      "site-address": { type: "string" },
      // The portal's home/ and proj/: a directory of this machine, or sftp://host:port the daemon mounts
      // (linux/storage-remote.ts); nodes bind from it (linux/storage.ts).
      storage: { type: "string" },
      "storage-host-key": { type: "string" },
      "host-registry-host": { type: "string" },
      underlay: { type: "string" },
      // Seconds one call to a host agent may take (host/deadline.ts).
      "agent-call-timeout": { type: "string" },
    },
  });
  // Watched from the start: a parent gone while the harbor comes up must not leave us running (the next
  // start's reconcile takes back whatever was half made).
  let stop: () => Promise<void> = async () => process.exit(0);
  if (values["parent-fd"] !== undefined) watchParent(Number(values["parent-fd"]), () => void stop());
  if (!values.store || !values.certs || !values.model) {
    throw new DaemonUsageError(
      "facility: --store <url>, --certs <dir> (from 'cog certs make') and --model <facility.json> are required",
    );
  }
  let model: Facility;
  try {
    model = JSON.parse(readFileSync(values.model, "utf8")) as Facility;
  } catch (err) {
    throw new DaemonUsageError(`facility: --model ${values.model}: ${(err as Error).message}`);
  }
  const v = validateFacility(model);
  if (!v.ok) throw new DaemonUsageError(`facility: --model ${values.model}: ${formatSchemaErrors(v.errors)}`);
  const hostsBad = hostProblems(model);
  if (hostsBad.length)
    throw new DaemonUsageError(
      `facility: --model ${values.model}: ${hostsBad.map((p) => `${p.field}: ${p.message}`).join("; ")}`,
    );
  const metricsPort = values["metrics-port"] === undefined ? undefined : Number(values["metrics-port"]);
  if (metricsPort !== undefined && !(Number.isInteger(metricsPort) && metricsPort >= 0 && metricsPort < 65536)) {
    throw new DaemonUsageError(
      `facility: --metrics-port '${values["metrics-port"]}': expected a port number (0 for any free port)`,
    );
  }
  const agentCall = values["agent-call-timeout"];
  if (agentCall !== undefined && !(Number(agentCall) > 0))
    throw new DaemonUsageError(`facility: --agent-call-timeout '${agentCall}': expected seconds, more than 0`);
  if (values["qualify-names"] && values.backend === "linux") {
    // Several facilities on one machine (sites, e2e multi-fixture): their objects of one mzid never share a name.
    const { qualifyNames } = await import("./linux/index.ts");
    qualifyNames(model.name);
  }
  if ((values.site === undefined) !== (values["site-address"] === undefined))
    throw new DaemonUsageError("facility: --site <netns> and --site-address <address> go together");
  const site = values.site ? { netns: values.site, address: values["site-address"] ?? "" } : undefined;
  const storage = values.storage ? await facilityStorage(values) : undefined;
  const backend = await openBackend(values.backend, values["sim-durations"], values["data-dir"], site, storage?.path);
  const store = openStore(values.store);
  const facility = await startFacility({
    store,
    backend,
    model,
    certs: values.certs,
    host: values.host,
    port: Number(values.port),
    registryPort: Number(values["registry-port"]),
    driverPort: Number(values["driver-port"]),
    hostRegistryPort: Number(values["host-registry-port"]),
    ...(values["host-registry-host"] ? { hostRegistryHost: values["host-registry-host"] } : {}),
    ...(values.underlay ? { underlay: values.underlay } : {}),
    ...(agentCall !== undefined ? { agentCallTimeoutMs: Number(agentCall) * 1000 } : {}),
    ...(metricsPort === undefined ? {} : { metricsPort, metricsHost: values["metrics-host"] }),
    ...(values["no-harbor"] ? {} : { harbor: harborSpecOf(model) }),
    ...(storage?.publicKey
      ? { storageKey: () => ({ publicKey: storage.publicKey as string, mounted: storage.mounted() }) }
      : {}),
    log: (m) => console.error(m),
  });
  console.error(
    `facility ${model.name}: commander ${facility.url} (registry ${facility.registryUrl}), rex on ${store.backend}${facility.hostRegistryUrl ? `, host registry ${facility.hostRegistryUrl}` : ""}${facility.metricsUrl ? `, metrics ${facility.metricsUrl}` : ""}`,
  );
  let stopping = false;
  stop = async () => {
    if (stopping) return;
    stopping = true;
    await facility.close();
    await backend.close();
    await storage?.close();
    await store.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}

/** `--storage`: a directory, or the portal's storage server mounted here (linux/storage-remote.ts). */
async function facilityStorage(values: {
  storage?: string;
  "storage-host-key"?: string;
  backend?: string;
  "data-dir"?: string;
}): Promise<OpenStorage> {
  if (values.backend !== "linux") throw new DaemonUsageError("facility: --storage needs --backend linux");
  const { openStorage, parseStorageOption } = await import("./linux/storage-remote.ts");
  let opt: ReturnType<typeof parseStorageOption>;
  try {
    opt = parseStorageOption(values.storage as string, values["storage-host-key"]);
  } catch (e) {
    throw new DaemonUsageError(`facility: ${(e as Error).message}`);
  }
  if (opt.kind === "sftp" && !values["data-dir"])
    throw new DaemonUsageError("facility: --storage sftp://… needs --data-dir (where it is mounted)");
  // Not listed at the portal's storage server yet: the portal asks for this key (StorageKey) and lists
  // it; the mount follows within a retry.
  return openStorage(opt, values["data-dir"] as string, { retryMs: 1000, log: (m) => console.error(`facility: ${m}`) });
}

async function agentMain(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      name: { type: "string" },
      registry: { type: "string" },
      certs: { type: "string" },
      "data-dir": { type: "string" },
      underlay: { type: "string" },
      "listen-port": { type: "string", default: "0" },
      backend: { type: "string", default: "linux" },
      "default-image": { type: "string" },
      "qualify-names": { type: "boolean", default: false },
      "name-qualifier": { type: "string" },
      nat: { type: "string" },
      "nat-address": { type: "string" },
      "parent-fd": { type: "string" },
      site: { type: "string" },
      "site-address": { type: "string" },
    },
  });
  let stop: () => Promise<void> = async () => process.exit(0);
  if (values["parent-fd"] !== undefined) watchParent(Number(values["parent-fd"]), () => void stop(), "agent");
  const missing = ["name", "registry", "certs", "data-dir", "underlay"].filter(
    (k) => !values[k as keyof typeof values],
  );
  if (missing.length)
    throw new DaemonUsageError(
      `agent: --${missing.join(", --")} required (the host's name, the facility's host registry URL, its certificate directory from 'cog certs host', its data directory and underlay address)`,
    );
  if (values.backend !== "linux" && values.backend !== "sim")
    throw new DaemonUsageError(`agent: --backend '${values.backend}': expected linux or sim`);
  if ((values.site === undefined) !== (values["site-address"] === undefined))
    throw new DaemonUsageError("agent: --site <netns> and --site-address <address> go together");
  const { runAgentProcess } = await import("./host/run.ts");
  const { agent, backend } = await runAgentProcess({
    name: values.name as string,
    registry: values.registry as string,
    certs: values.certs as string,
    dataDir: values["data-dir"] as string,
    underlay: values.underlay as string,
    listenPort: Number(values["listen-port"]),
    qualifyNames: values["qualify-names"],
    ...(values["name-qualifier"] ? { nameQualifier: values["name-qualifier"] } : {}),
    backend: values.backend,
    ...(values["default-image"] ? { defaultImage: values["default-image"] } : {}),
    ...(values.nat ? { nat: values.nat } : {}),
    ...(values["nat-address"] ? { natAddress: values["nat-address"] } : {}),
    ...(values.site ? { site: { netns: values.site, address: values["site-address"] ?? "" } } : {}),
  });
  // The fabric (linux/fabric.ts) waits for this line.
  void agent.registered.then(() => console.error(`host agent ${values.name}: registered`));
  stop = async () => {
    await agent.close();
    await backend.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}

let parentGone = false;

/** Calls `onEnd` once the pipe on `fd` ends (its writer, the parent, has exited or closed it). */
function watchParent(fd: number, onEnd: () => void, who = "facility"): void {
  if (!Number.isInteger(fd) || fd < 3)
    throw new DaemonUsageError(`${who}: --parent-fd ${fd}: expected a pipe's fd (3 or more)`);
  const pipe = new Socket({ fd, readable: true, writable: false });
  const end = () => {
    if (parentGone) return;
    parentGone = true;
    // The parent held our stdout/stderr pipes too: writing there now fails (EPIPE), which must not crash the stop.
    process.stdout.on("error", () => {});
    process.stderr.on("error", () => {});
    console.error(`${who}: the parent process is gone (its pipe closed); stopping`);
    onEnd();
  };
  pipe.on("end", end);
  pipe.on("close", end);
  pipe.on("error", end);
  pipe.resume();
  // The pipe alone keeps nothing running.
  pipe.unref();
}

const [cmd, ...rest] = process.argv.slice(2);
if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    if (cmd === "rex") await rexMain(rest);
    else if (cmd === "facility") await facilityMain(rest);
    else if (cmd === "agent") await agentMain(rest);
    else throw new DaemonUsageError(`usage: daemon.ts rex|facility|agent [options] (got '${cmd ?? ""}')`);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number; address?: string };
    if (e.code === "EADDRINUSE") {
      console.error(
        `${cmd}: ${e.address}:${e.port} is already in use; choose other ports (--port, --registry-port, --driver-port; npm start: --facility-port)`,
      );
    } else console.error(err instanceof DaemonUsageError ? err.message : err);
    process.exit(2);
  }
}
