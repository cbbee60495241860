/**
 * One XDC as a container: a network namespace (eth0, a /30 to the host) and,
 * inside it, new mount, PID, UTS and IPC namespaces whose root is an overlay of
 * the image (read-only) and the XDC's own upper layer. The account files, the
 * sshd configuration and keys, and the members' /home and the project's /proj
 * are bind mounts from the host. PID 1 is sshd (it reaps what it starts); the
 * container is started detached from the XDC host service, so it outlives a
 * restart of the service, and `unshare --kill-child` ends it with its holder.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { ipBatch, run, sleep } from "./run.ts";

export interface ContainerSpec {
  /** Namespace and interface prefix (`mx` + 6 hex). */
  prefix: string;
  hostname: string;
  /** This XDC's directory on the host: upper layer, generated /etc files, log. */
  dir: string;
  /** Image layers, topmost first (overlayfs lowerdir order). */
  layers: string[];
  /** host side and XDC side of the /30 */
  hostAddress: string;
  address: string;
  /** Bind mounts: host path → path inside the XDC. */
  mounts: { source: string; target: string }[];
  /** A command run in the background before sshd (Jupyter), inside the XDC; its secret in `$XDC_JUPYTER_TOKEN`. */
  background?: string;
  jupyterToken?: string;
}

export const netnsOf = (prefix: string) => prefix;
export const hostVethOf = (prefix: string) => `${prefix}h`;

/**
 * Runs in the new namespaces (host's /bin/sh). Every path comes from the environment, so nothing is quoted
 * into the script; `set -e`: a failed mount stops the container before sshd starts.
 */
const SCRIPT = `set -e
R="$XDC_DIR/root"
mount -t overlay overlay -o "lowerdir=$XDC_LAYERS,upperdir=$XDC_DIR/upper,workdir=$XDC_DIR/work" "$R"
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount -t tmpfs -o mode=755,size=1m tmpfs "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3; mknod -m 666 "$R/dev/zero" c 1 5; mknod -m 666 "$R/dev/full" c 1 7
mknod -m 666 "$R/dev/random" c 1 8; mknod -m 666 "$R/dev/urandom" c 1 9; mknod -m 666 "$R/dev/tty" c 5 0
mkdir "$R/dev/net" "$R/dev/pts" "$R/dev/shm"; mknod -m 666 "$R/dev/net/tun" c 10 200
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"; ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
mount -t tmpfs -o mode=755 tmpfs "$R/run"; mkdir -p "$R/run/sshd"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
for f in passwd group shadow hosts resolv.conf; do
  [ -e "$R/etc/$f" ] || touch "$R/etc/$f"
  mount --bind "$XDC_DIR/etc/$f" "$R/etc/$f"
done
mkdir -p "$R/etc/mrg-xdc"; mount --bind "$XDC_DIR/etc/mrg-xdc" "$R/etc/mrg-xdc"
mkdir -p "$R/etc/ssh/ssh_config.d"; ln -sf /etc/mrg-xdc/ssh_config "$R/etc/ssh/ssh_config.d/merge.conf"
echo "$XDC_MOUNTS" | while read -r src dst; do
  [ -n "$src" ] || continue
  mkdir -p "$R$dst"; mount --bind "$src" "$R$dst"
done
hostname "$XDC_HOSTNAME"
cd "$R"
if [ -n "$XDC_BACKGROUND" ]; then chroot "$R" /bin/sh -c "$XDC_BACKGROUND" >> "$XDC_DIR/background.log" 2>&1 & fi
unset XDC_JUPYTER_TOKEN
exec chroot "$R" /usr/sbin/sshd -D -e -f /etc/mrg-xdc/sshd_config
`;

/** The network namespace and its veth pair. */
export async function plumb(c: ContainerSpec): Promise<void> {
  const ns = netnsOf(c.prefix);
  const h = hostVethOf(c.prefix);
  await ipBatch([`netns add ${ns}`], true);
  await ipBatch([
    `link add ${h} type veth peer name eth0 netns ${ns}`,
    `addr add ${c.hostAddress}/30 dev ${h}`,
    `link set ${h} up`,
  ]);
  await ipBatch(
    [
      "link set lo up",
      `addr add ${c.address}/30 dev eth0`,
      "link set eth0 up",
      `route add default via ${c.hostAddress}`,
    ],
    false,
    ns,
  );
}

/** Starts the container; resolves with the holder's pid once sshd answers on port 22. */
export async function startContainer(c: ContainerSpec, timeoutMs = 30_000): Promise<number> {
  for (const d of ["root", "upper", "work"]) mkdirSync(join(c.dir, d), { recursive: true });
  const logFile = join(c.dir, "container.log");
  const log = openSync(logFile, "a");
  const child = spawn(
    "ip",
    [
      "netns",
      "exec",
      netnsOf(c.prefix),
      "unshare",
      "--mount",
      "--pid",
      "--uts",
      "--ipc",
      "--fork",
      "--kill-child",
      "--propagation",
      "private",
      "/bin/sh",
      "-c",
      SCRIPT,
    ],
    {
      detached: true,
      stdio: ["ignore", log, log],
      env: {
        PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
        XDC_DIR: c.dir,
        XDC_LAYERS: c.layers.join(":"),
        XDC_HOSTNAME: c.hostname,
        XDC_MOUNTS: c.mounts.map((m) => `${m.source} ${m.target}`).join("\n"),
        XDC_BACKGROUND: c.background ?? "",
        XDC_JUPYTER_TOKEN: c.jupyterToken ?? "",
      },
    },
  );
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`XDC ${c.hostname}: the container did not start (ip netns exec)`);
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (exited) break;
    if (await answers(c.address, 22)) return pid;
    await sleep(50);
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, "utf8").trim().split("\n").slice(-5).join(" | ") : "";
  await stopContainer(c.prefix, pid);
  throw new Error(
    `XDC ${c.hostname}: sshd did not answer at ${c.address}:22 ${exited ? "(the container exited)" : `within ${timeoutMs} ms`}${tail ? `: ${tail}` : ""}`,
  );
}

/** Whether a TCP port answers. */
export function answers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

/** Pids of every process in a named network namespace. */
export function processesIn(ns: string): number[] {
  let target: { dev: number; ino: number };
  try {
    const st = statSync(`/run/netns/${ns}`);
    target = { dev: st.dev, ino: st.ino };
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = statSync(`/proc/${e}/ns/net`);
      if (st.ino === target.ino && st.dev === target.dev) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Ends the container: its holder (and with it PID 1 and everything in the PID namespace), then anything
 * else still in the network namespace (a process someone entered with nsenter), then the namespace and
 * the veth pair. The mounts lived in the container's mount namespace and went with its last process.
 */
export async function stopContainer(prefix: string, pid: number | undefined): Promise<void> {
  const ns = netnsOf(prefix);
  if (pid !== undefined) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (let i = 0; i < 200; i++) {
    const left = processesIn(ns);
    if (left.length === 0) break;
    for (const p of left) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // gone
      }
    }
    await sleep(25);
  }
  await ipBatch([`link del ${hostVethOf(prefix)}`, `netns del ${ns}`], true);
}

/** Whether the container's holder is alive (and still this container's, not a recycled pid). */
export function running(prefix: string, pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    // After `ip netns exec` the holder is unshare, in the XDC's network namespace.
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return (argv[0] ?? "").endsWith("unshare") && processesIn(netnsOf(prefix)).includes(pid);
  } catch {
    return false;
  }
}

/** What is left of a container on the host: namespace, interface, processes. */
export async function containerLeftovers(prefix: string): Promise<string[]> {
  const out: string[] = [];
  if (existsSync(`/run/netns/${netnsOf(prefix)}`)) out.push(`netns ${netnsOf(prefix)}`);
  const links = await run("ip", ["-o", "link", "show", hostVethOf(prefix)]);
  if (links.code === 0 && links.stdout.trim() !== "") out.push(`interface ${hostVethOf(prefix)}`);
  for (const p of processesIn(netnsOf(prefix))) out.push(`process ${p}`);
  return out;
}
