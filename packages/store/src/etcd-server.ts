/**
 * A real etcd on loopback: Debian's /usr/bin/etcd, on free ports. For tests
 * (through `@merge/store/testing/etcd`) with a temporary data directory; for
 * `npm start -- --store etcd` with a kept one (`dataDir`) that dies with its
 * parent (`dieWithParent`). Stopped by its PID (a temporary directory removed)
 * by `stop()`, and also when this process exits (even on failure).
 *
 *   const etcd = await startEtcd();
 *   after(() => etcd.stop());
 *   const store = openStore({ backend: "etcd", endpoints: etcd.endpoints });
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface EtcdServer {
  /** The ports it listens on (loopback). */
  ports: { client: number; peer: number };
  /** Client URLs, for `openStore({ backend: "etcd", endpoints })`. */
  endpoints: string[];
  /** `etcd://127.0.0.1:port`, for `openStore(url)`. */
  url: string;
  pid: number;
  dataDir: string;
  /** Stops etcd (SIGTERM, then SIGKILL after 5 s) and removes its data directory. */
  stop(): Promise<void>;
}

export interface StartEtcdOptions {
  /** etcd binary (default /usr/bin/etcd, or $ETCD_BIN). */
  bin?: string;
  /** How long to wait for etcd to report healthy, ms (default 20,000). */
  timeoutMs?: number;
}

export interface StartEtcdServerOptions extends StartEtcdOptions {
  /** A data directory kept across starts (default: a temporary one, removed on stop). */
  dataDir?: string;
  /** Client and peer ports to try first (an earlier start's), else free ones. */
  ports?: { client: number; peer: number };
  /**
   * The kernel kills etcd when this process dies, however it dies (setpriv
   * --pdeathsig; util-linux): nothing outlives an `npm start` killed with SIGKILL.
   */
  dieWithParent?: boolean;
}

/** A port that was free a moment ago (the kernel's choice for port 0). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const running = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHookInstalled = false;

/** Last resort on any exit of the test process: no etcd or temp dir is left behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of running) {
      try {
        if (child.pid) process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === "true";
  } catch {
    return false;
  }
}

export async function startEtcd(opts: StartEtcdServerOptions = {}): Promise<EtcdServer> {
  const bin = opts.bin ?? process.env.ETCD_BIN ?? "/usr/bin/etcd";
  if (!existsSync(bin))
    throw new Error(`startEtcd: ${bin} not found; install Debian's etcd-server (apt-get install etcd-server)`);
  installExitHook();
  let lastError: Error | undefined;
  // Ports are picked free but could be taken before etcd binds them: try a few times.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(bin, opts.timeoutMs ?? 20_000, attempt === 0 ? opts.ports : undefined, opts);
    } catch (err) {
      lastError = err as Error;
    }
  }
  throw lastError;
}

async function startOnce(
  bin: string,
  timeoutMs: number,
  ports: { client: number; peer: number } | undefined,
  opts: StartEtcdServerOptions,
): Promise<EtcdServer> {
  const [clientPort, peerPort] = ports ? [ports.client, ports.peer] : [await freePort(), await freePort()];
  const kept = opts.dataDir !== undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), `merge-etcd-${process.pid}-`));
  if (kept) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  else dirs.add(dataDir);
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  // A kept data directory names its member once: etcd refuses a different name on it later.
  const name = kept ? "merge" : `merge-test-${process.pid}`;
  const args = [
    `--name=${name}`,
    `--data-dir=${join(dataDir, "data")}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${name}=${peer}`,
    "--initial-cluster-state=new",
    // A fast single-node cluster: short election timing also lowers etcd's minimum
    // lease TTL (1.5 election timeouts) so lease tests can use 1 s.
    "--heartbeat-interval=50",
    "--election-timeout=500",
    "--log-level=warn",
    "--logger=zap",
  ];
  const child = opts.dieWithParent
    ? spawn("setpriv", ["--pdeathsig", "KILL", "--", bin, ...args], { stdio: ["ignore", "ignore", "pipe"] })
    : spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  let log = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (s: string) => {
    log = (log + s).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let gone = false;
  void exited.then(() => {
    gone = true;
    running.delete(child);
  });

  const stop = async () => {
    if (!gone && child.pid) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.pid && !gone && process.kill(child.pid, "SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (!kept) rmSync(dataDir, { recursive: true, force: true });
    dirs.delete(dataDir);
  };

  const deadline = Date.now() + timeoutMs;
  while (!(await healthy(client))) {
    if (gone || Date.now() > deadline) {
      await stop();
      throw new Error(
        `startEtcd: etcd ${gone ? "exited" : `not healthy after ${timeoutMs} ms`}; its log ends:\n${log}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoints: [client],
    url: `etcd://127.0.0.1:${clientPort}`,
    pid: child.pid!,
    dataDir,
    ports: { client: clientPort, peer: peerPort },
    stop,
  };
}

/** One member of a test cluster. */
export interface EtcdMember {
  name: string;
  /** Client URL. */
  endpoint: string;
  pid: number | undefined;
  alive: boolean;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** Every member's client URL. */
  endpoints: string[];
  /** `etcd://127.0.0.1:p1,127.0.0.1:p2,…`, for `openStore(url)`. */
  url: string;
  /** SIGKILLs member `i` (as a crash would) and waits for it to exit. */
  kill(i: number): Promise<void>;
  /** Starts member `i` again on its data directory; resolves when it answers healthy. */
  restart(i: number): Promise<void>;
  /** The index of the member the others follow (asked of a live member's /v3 status), or -1. */
  leader(): Promise<number>;
  /** Stops every member and removes the data directories. */
  stop(): Promise<void>;
}

/**
 * A cluster of `size` (default 3) etcd members on loopback, each its own process and data
 * directory under one temp directory; members can be killed and restarted (chaos tests).
 */
export async function startEtcdCluster(size = 3, opts: StartEtcdOptions = {}): Promise<EtcdCluster> {
  const bin = opts.bin ?? process.env.ETCD_BIN ?? "/usr/bin/etcd";
  if (!existsSync(bin))
    throw new Error(`startEtcdCluster: ${bin} not found; install Debian's etcd-server (apt-get install etcd-server)`);
  installExitHook();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const base = mkdtempSync(join(tmpdir(), `merge-etcd3-${process.pid}-`));
  dirs.add(base);
  const ports: { client: number; peer: number }[] = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const name = (i: number) => `m${i}-${process.pid}`;
  const initial = ports.map((p, i) => `${name(i)}=http://127.0.0.1:${p.peer}`).join(",");
  const children: (ChildProcess | undefined)[] = [];
  const logs: string[] = ports.map(() => "");
  const members: EtcdMember[] = ports.map((p, i) => ({
    name: name(i),
    endpoint: `http://127.0.0.1:${p.client}`,
    pid: undefined,
    alive: false,
  }));

  const spawnMember = (i: number) => {
    const p = ports[i]!;
    const client = `http://127.0.0.1:${p.client}`;
    const peer = `http://127.0.0.1:${p.peer}`;
    const child = spawn(
      bin,
      [
        `--name=${name(i)}`,
        `--data-dir=${join(base, name(i))}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=${initial}`,
        "--initial-cluster-state=new",
        "--initial-cluster-token=merge-test",
        // Quick elections: a killed leader is replaced in about a second.
        "--heartbeat-interval=100",
        "--election-timeout=1000",
        "--log-level=warn",
        "--logger=zap",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    running.add(child);
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (s: string) => {
      logs[i] = (logs[i] + s).slice(-4000);
    });
    child.once("exit", () => {
      running.delete(child);
      members[i]!.alive = false;
    });
    children[i] = child;
    members[i]!.pid = child.pid;
    members[i]!.alive = true;
  };

  const waitHealthy = async (i: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await healthy(members[i]!.endpoint))) {
      if (!members[i]!.alive || Date.now() > deadline)
        throw new Error(
          `startEtcdCluster: member ${name(i)} ${members[i]!.alive ? `not healthy after ${timeoutMs} ms` : "exited"}; its log ends:\n${logs[i]}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const kill = async (i: number) => {
    const c = children[i];
    if (!c || !members[i]!.alive) return;
    const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    c.kill("SIGKILL");
    await exited;
  };

  const stop = async () => {
    await Promise.all(members.map((_, i) => kill(i)));
    rmSync(base, { recursive: true, force: true });
    dirs.delete(base);
  };

  try {
    for (let i = 0; i < size; i++) spawnMember(i);
    await Promise.all(members.map((_, i) => waitHealthy(i)));
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    members,
    endpoints: members.map((m) => m.endpoint),
    url: `etcd://${members.map((m) => m.endpoint.replace("http://", "")).join(",")}`,
    kill,
    async restart(i) {
      if (members[i]!.alive) return;
      spawnMember(i);
      await waitHealthy(i);
    },
    async leader() {
      for (const m of members) {
        if (!m.alive) continue;
        try {
          const res = await fetch(`${m.endpoint}/v3/maintenance/status`, {
            method: "POST",
            body: "{}",
            signal: AbortSignal.timeout(1000),
          });
          const s = (await res.json()) as { leader?: string; header?: { member_id?: string } };
          if (!s.leader || s.leader === "0") continue;
          const list = (await (
            await fetch(`${m.endpoint}/v3/cluster/member/list`, {
              method: "POST",
              body: "{}",
              signal: AbortSignal.timeout(1000),
            })
          ).json()) as { members: { ID: string; name: string }[] };
          const leaderName = list.members.find((x) => x.ID === s.leader)?.name;
          return members.findIndex((x) => x.name === leaderName);
        } catch {
          // this member does not answer: ask the next
        }
      }
      return -1;
    },
    stop,
  };
}
