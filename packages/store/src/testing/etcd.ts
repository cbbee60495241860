/**
 * A real etcd for tests: Debian's /usr/bin/etcd on loopback, on free ports, with a
 * temporary data directory; stopped by its PID and its directory removed by
 * `stop()`, and also when the test process exits (even on failure).
 *
 *   const etcd = await startEtcd();
 *   after(() => etcd.stop());
 *   const store = openStore({ backend: "etcd", endpoints: etcd.endpoints });
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface EtcdServer {
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

export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdServer> {
  const bin = opts.bin ?? process.env.ETCD_BIN ?? "/usr/bin/etcd";
  if (!existsSync(bin))
    throw new Error(`startEtcd: ${bin} not found; install Debian's etcd-server (apt-get install etcd-server)`);
  installExitHook();
  let lastError: Error | undefined;
  // Ports are picked free but could be taken before etcd binds them: try a few times.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(bin, opts.timeoutMs ?? 20_000);
    } catch (err) {
      lastError = err as Error;
    }
  }
  throw lastError;
}

async function startOnce(bin: string, timeoutMs: number): Promise<EtcdServer> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), `merge-etcd-${process.pid}-`));
  dirs.add(dataDir);
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const name = `merge-test-${process.pid}`;
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
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
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
    rmSync(dataDir, { recursive: true, force: true });
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
  return { endpoints: [client], url: `etcd://127.0.0.1:${clientPort}`, pid: child.pid!, dataDir, stop };
}
