/**
 * A facility as a child process (`daemon.ts facility`) in a directory of its
 * own: certificates (`certs/`, made on first start), sqlite store (`store/`),
 * backend data (`backend/`), its model (`<name>.json`), log (`facility.log`).
 * What `npm start -- --facilities N` starts for each facility beyond the demo,
 * and what the multi-facility tests and benchmark start (e2e multi-fixture):
 * one facility per process, each with its own commander, certificates, store
 * and data plane.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Facility } from "@merge/xir";
import { makeCerts } from "./certs.ts";

const DAEMON = fileURLToPath(new URL("./daemon.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

export interface FacilityProcessOptions {
  /** The facility's directory (made if missing). */
  dir: string;
  model: Facility;
  backend: "linux" | "sim";
  /** Commander port (0: any free port; the URL is read from the daemon's start line). */
  port?: number;
  /** Leave the harbor out (tests: faster). */
  noHarbor?: boolean;
  /** Qualify kernel object names with the facility's name: several facilities on one machine. */
  qualifyNames?: boolean;
  /**
   * Stop with this process: the child watches a pipe (fd 3) only this process holds, so
   * even a SIGKILL here ends it (`npm start`).
   */
  withParent?: boolean;
  /** The facility's site (linux backend): where its gateway tunnels to other facilities have their sockets. */
  site?: { netns: string; address: string };
  /**
   * A model naming hosts: the facility's own address on their fabric (its
   * host registry and VTEP listen there; linux/fabric.ts).
   */
  fabric?: string;
  /** The portal's storage (linux backend): a directory, or `sftp://host:port` with the server's host key. */
  storage?: { at: string; hostKey?: string };
}

export interface FacilityProcess {
  name: string;
  child: ChildProcess;
  /** The commander's facility API URL, once up. */
  ready: Promise<string>;
  /** The host registry's URL, once up (a model naming hosts; else undefined). */
  hostRegistry: Promise<string | undefined>;
  certs: string;
  log: string;
  /** SIGTERM, then SIGKILL after `ms`; resolves once the process is gone. */
  stop(ms?: number): Promise<void>;
}

/** What every facility daemon is started with; the rest of its flags are per caller. */
export interface FacilityDaemonArgs {
  /** `sqlite:///dir` or `etcd://host:port`. */
  store: string;
  certs: string;
  modelFile: string;
  /** Where the commander, registry and driver listen (default 127.0.0.1). */
  host?: string;
  /** 0: any free port. `hostRegistry` left out: the daemon's default. */
  ports: { commander: number; registry: number; driver: number; hostRegistry?: number };
  backend: string;
  dataDir: string;
}

/**
 * `node`'s arguments that run `daemon.ts facility` with `a`: the one place outside the daemon that
 * spells its required flags (npm start, spawnFacility and tests that start a daemon themselves).
 */
export function facilityDaemonArgv(a: FacilityDaemonArgs): string[] {
  const { commander, registry, driver, hostRegistry } = a.ports;
  return [
    "--import",
    "tsx",
    DAEMON,
    "facility",
    "--store",
    a.store,
    "--certs",
    a.certs,
    "--model",
    a.modelFile,
    "--host",
    a.host ?? "127.0.0.1",
    "--port",
    String(commander),
    "--registry-port",
    String(registry),
    "--driver-port",
    String(driver),
    ...(hostRegistry === undefined ? [] : ["--host-registry-port", String(hostRegistry)]),
    "--backend",
    a.backend,
    "--data-dir",
    a.dataDir,
  ];
}

/** Start the facility daemon for `o.model` in `o.dir`. */
export function spawnFacility(o: FacilityProcessOptions): FacilityProcess {
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const certs = join(o.dir, "certs");
  if (!existsSync(join(certs, "ca.pem")))
    makeCerts(certs, { facility: o.model.name, ...(o.fabric ? { hosts: [o.fabric] } : {}) });
  const modelFile = join(o.dir, `${o.model.name}.json`);
  writeFileSync(modelFile, JSON.stringify(o.model, null, 2));
  const logFile = join(o.dir, "facility.log");
  const log = createWriteStream(logFile, { flags: "a" });
  const args = [
    ...facilityDaemonArgv({
      store: `sqlite://${join(o.dir, "store")}`,
      certs,
      modelFile,
      ports: { commander: o.port ?? 0, registry: 0, driver: 0, hostRegistry: 0 },
      backend: o.backend,
      dataDir: join(o.dir, "backend"),
    }),
    ...(o.noHarbor ? ["--no-harbor"] : []),
    ...(o.qualifyNames ? ["--qualify-names"] : []),
    ...(o.site ? ["--site", o.site.netns, "--site-address", o.site.address] : []),
    ...(o.storage ? ["--storage", o.storage.at] : []),
    ...(o.storage?.hostKey ? ["--storage-host-key", o.storage.hostKey] : []),
    ...(o.withParent ? ["--parent-fd", "3"] : []),
    ...(o.fabric ? ["--host-registry-host", o.fabric, "--underlay", o.fabric] : []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe", ...(o.withParent ? (["pipe"] as const) : [])],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  let hostRegistry: (url: string | undefined) => void = () => {};
  const ready = new Promise<string>((res, rej) => {
    let seen = "";
    const onData = (d: Buffer) => {
      seen = (seen + d.toString()).slice(-8192);
      const m = /^facility \S+: commander (https:\/\/\S+).*$/m.exec(seen);
      if (m) {
        child.stderr?.off("data", onData);
        child.off("exit", onExit);
        hostRegistry(/host registry (https:\/\/[^\s,]+)/.exec(m[0])?.[1]);
        res(m[1] as string);
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      const tail = seen.trim().split("\n").slice(-15).join("\n  ");
      rej(
        new Error(
          `facility ${o.model.name} exited (${signal ?? `code ${code}`}) before it was up; from ${logFile}:\n  ${tail}`,
        ),
      );
    };
    child.stderr?.on("data", onData);
    child.once("exit", onExit);
  });
  ready.catch(() => {});
  const registry = new Promise<string | undefined>((res) => {
    hostRegistry = res;
    ready.catch(() => res(undefined));
  });
  const stop = async (ms = 15_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), ms);
    await gone;
    clearTimeout(t);
  };
  return { name: o.model.name, child, ready, hostRegistry: registry, certs, log: logFile, stop };
}

/** The CA certificate a portal's facility record carries for this facility. */
export function facilityCa(p: Pick<FacilityProcess, "certs">): string {
  return readFileSync(join(p.certs, "ca.pem"), "utf8");
}
