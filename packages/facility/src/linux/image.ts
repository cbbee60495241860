/**
 * Node images: read-only directory trees that node root filesystems overlay.
 * `bookworm` (the default image) and the other Debian suites are real Debian,
 * made by debootstrap from Debian's packages (minutes, the Debian mirror;
 * scripts/setup.sh builds bookworm) and cached for every data directory in
 * IMAGE_CACHE, outside any checkout. `busybox` is built in milliseconds from
 * Debian's busybox-static into the data directory: scale tests and tests that
 * need speed ask for it. Every image gets the merge boot: DHCP on the
 * infranet, then the foundry client that fetches and applies the node's
 * configuration.
 */
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { check, run } from "./command.ts";
import { unmountUnder } from "./env.ts";
import { alive } from "./processes.ts";

/** The image a node gets when its model names none. */
export const DEFAULT_IMAGE = "bookworm";

/** Where Debian images are built and kept, shared by every data directory (`$MERGE_IMAGE_CACHE` moves it). */
export function imageCache(): string {
  return process.env.MERGE_IMAGE_CACHE ?? "/var/cache/merge/images";
}

/** What a Debian image has beyond debootstrap's minbase: what experimenters reach for first. */
export const DEBIAN_PACKAGES = [
  "iproute2",
  "iputils-ping",
  "procps",
  "iperf3",
  "tcpdump",
  "python3",
  "openssh-server",
  "curl",
  "ca-certificates",
  "netbase",
  "less",
];

export const BUSYBOX = "/usr/bin/busybox";
/** Where images keep the busybox the merge boot scripts use. */
export const IMAGE_BUSYBOX = "/usr/lib/mrg/busybox";

// VMs run this boot (vm-image.ts); containers boot natively in their init, the
// same steps without a process (native/mrg-boot.h, config.txt).
// The boot runs in every node at once when a materialization comes up, and a
// process (fork + exec of the static busybox) costs milliseconds of CPU here:
// it was ~27 processes a node, now ~12. Shell builtins instead of applets
// where they do the same (read, :>, test, echo to /proc); lo and eth0 are
// already up (mrg-node); ready/failed were removed by the starter (nodesStart).
const BOOT = `#!/usr/lib/mrg/busybox sh
# merge node boot: infranet DHCP, then the foundry client.
B=${IMAGE_BUSYBOX}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
n=0
until $B udhcpc -i eth0 -q -n -t 4 -T 1 -s /etc/mrg/udhcpc.sh; do
  n=$((n+1))
  if [ $n -ge 15 ]; then echo "no DHCP lease on the infranet" > /etc/mrg/failed; exit 1; fi
done
# The foundry is found by its DNS name, as nodes find it in MergeTB.
server=
$B nslookup foundry > /etc/mrg/foundry.dns 2>/dev/null
f=
while read -r k v; do
  case "$k" in
    Name:) f=1 ;;
    Address*) if [ -n "$f" ] && [ -z "$server" ]; then server=\${v##* }; fi ;;
  esac
done < /etc/mrg/foundry.dns
if [ -z "$server" ]; then
  while read -r k v; do if [ "$k" = nameserver ]; then server=$v; break; fi; done < /etc/resolv.conf
fi
read -r host < /proc/sys/kernel/hostname
n=0
# (busybox 1.35 wget -T segfaults; bound the wait with timeout instead)
until $B timeout 5 $B wget -q -O /etc/mrg/config.sh "http://$server/$host/config.sh"; do
  n=$((n+1))
  if [ $n -ge 20 ]; then echo "foundry unreachable at $server" > /etc/mrg/failed; exit 1; fi
  $B usleep 500000
done
# A subshell, not a new shell: one fork, no exec. Not in an if: there \`set -e\` would not stop it.
(. /etc/mrg/config.sh) > /var/log/mrg-config.log 2>&1
if [ $? -eq 0 ]; then
  : > /etc/mrg/ready
else
  echo "configuration failed: $($B tail -n 3 /var/log/mrg-config.log)" > /etc/mrg/failed
fi
[ -x /etc/mrg/rc.local ] && /etc/mrg/rc.local
exit 0
`;

const UDHCPC = `#!/usr/lib/mrg/busybox sh
B=${IMAGE_BUSYBOX}
case "$1" in
  bound|renew)
    $B ip addr replace "$ip/$mask" dev "$interface"
    # The infranet's router (the infrapod): the node's default route until its configuration sets others.
    for r in $router; do $B ip route replace default via "$r" dev "$interface"; break; done
    { [ -n "$domain" ] && echo "search $domain"; for d in $dns; do echo "nameserver $d"; done; } > /etc/resolv.conf
    ;;
esac
exit 0
`;

/**
 * Bring an image tree's merge boot up to date: images built earlier (the
 * Debian cache, a data directory's busybox) keep the boot they were built
 * with. Files are replaced, not written through: a data directory's image
 * shares its inodes with the cache (hard links).
 */
const bootCurrent = new Set<string>();
function refreshBoot(root: string): void {
  if (bootCurrent.has(root)) return;
  for (const [file, text] of [
    ["etc/mrg/boot", BOOT],
    ["etc/mrg/udhcpc.sh", UDHCPC],
  ] as const) {
    const path = join(root, file);
    if (existsSync(path) && readFileSync(path, "utf8") === text) continue;
    rmSync(path, { force: true });
    writeFileSync(path, text, { mode: 0o755 });
  }
  bootCurrent.add(root);
}

/** Install the merge boot into an image tree. */
export function installBoot(root: string): void {
  for (const d of ["etc/mrg", "usr/lib/mrg", "var/log", "proc", "sys", "dev", "tmp", "run", "root"]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  copyFileSync(BUSYBOX, join(root, IMAGE_BUSYBOX));
  chmodSync(join(root, IMAGE_BUSYBOX), 0o755);
  writeFileSync(join(root, "etc/mrg/boot"), BOOT, { mode: 0o755 });
  writeFileSync(join(root, "etc/mrg/udhcpc.sh"), UDHCPC, { mode: 0o755 });
  chmodSync(join(root, "tmp"), 0o1777);
}

/** The tiny busybox image, built once per data directory. */
export async function busyboxImage(dataDir: string): Promise<string> {
  const dir = join(dataDir, "images", "busybox");
  if (existsSync(join(dir, "etc/mrg/boot"))) return dir;
  const tmp = `${dir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  for (const d of ["bin", "usr"]) mkdirSync(join(tmp, d), { recursive: true });
  copyFileSync(BUSYBOX, join(tmp, "bin/busybox"));
  chmodSync(join(tmp, "bin/busybox"), 0o755);
  const applets = (await check(BUSYBOX, ["--list"])).split("\n").filter((a) => /^[a-z0-9_.[-]+$/.test(a));
  for (const a of applets) if (a !== "busybox") symlinkSync("busybox", join(tmp, "bin", a));
  symlinkSync("bin", join(tmp, "sbin"));
  symlinkSync("../bin", join(tmp, "usr/bin"));
  symlinkSync("../bin", join(tmp, "usr/sbin"));
  installBoot(tmp);
  writeFileSync(join(tmp, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(join(tmp, "etc/group"), "root:x:0:\n");
  writeFileSync(join(tmp, "etc/hosts"), "127.0.0.1 localhost\n");
  writeFileSync(join(tmp, "etc/profile"), 'export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nPS1="$(hostname):\\w# "\n');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dataDir, "images"), { recursive: true });
  renameSync(tmp, dir);
  return dir;
}

export const DEBIAN_SUITES = ["bookworm", "trixie", "bullseye"] as const;

/** Where `debianImage` builds `suite` before moving it into place (its size shows progress). */
export const debianBuildDir = (cache: string, suite: string): string => join(cache, `${suite}.${process.pid}.tmp`);

/**
 * A Debian image made with debootstrap (minbase plus DEBIAN_PACKAGES), plus the
 * merge boot, in the image cache. Needs Debian's package mirror; takes minutes;
 * cached afterwards.
 */
export async function debianImage(
  suite: string,
  opts: { mirror?: string; log?: (m: string) => void; cache?: string } = {},
): Promise<string> {
  if (!(DEBIAN_SUITES as readonly string[]).includes(suite)) {
    throw new Error(`unknown Debian suite "${suite}": expected one of ${DEBIAN_SUITES.join(", ")}`);
  }
  const cache = opts.cache ?? imageCache();
  const dir = join(cache, suite);
  if (existsSync(join(dir, "etc/mrg/boot"))) return dir;
  mkdirSync(cache, { recursive: true });
  removeStaleBuilds(cache, suite);
  const tmp = debianBuildDir(cache, suite);
  removeBuild(tmp);
  opts.log?.(`debootstrap ${suite} into ${tmp} (this takes a few minutes)`);
  const r = await run("debootstrap", [
    "--variant=minbase",
    `--include=${DEBIAN_PACKAGES.join(",")}`,
    suite,
    tmp,
    opts.mirror ?? "http://deb.debian.org/debian",
  ]);
  if (r.code !== 0) {
    removeBuild(tmp);
    throw new Error(`debootstrap ${suite} failed (exit ${r.code}): ${r.stderr.trim().split("\n").slice(-3).join(" ")}`);
  }
  installBoot(tmp);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}

/** A build directory, with whatever debootstrap mounted inside it (/proc, /sys) unmounted first. */
function removeBuild(tmp: string): void {
  unmountUnder(tmp);
  rmSync(tmp, { recursive: true, force: true });
}

/** Build directories of `suite` whose builder is gone (killed mid-debootstrap). */
export function removeStaleBuilds(cache: string, suite: string): string[] {
  const stale = readdirSync(cache).filter((e) => {
    const pid = new RegExp(`^${suite}\\.(\\d+)\\.tmp$`).exec(e)?.[1];
    return pid !== undefined && Number(pid) !== process.pid && !alive(Number(pid));
  });
  for (const e of stale) removeBuild(join(cache, e));
  return stale;
}

/** Whether an image is built in the image cache (busybox is built on demand, always). */
export function imageBuilt(name: string): boolean {
  return name === "busybox" || existsSync(join(imageCache(), name, "etc/mrg/boot"));
}

/**
 * Resolve an image name (none: DEFAULT_IMAGE) to its directory in the data
 * directory: busybox is built on the spot; an image from the cache is linked in
 * first (hard links, a second or so; a copy across file systems), since node
 * containers see only the data directory.
 */
export async function imageDir(dataDir: string, name: string | undefined): Promise<string> {
  const n = name || DEFAULT_IMAGE;
  if (n === "busybox") {
    const dir = await busyboxImage(dataDir);
    refreshBoot(dir);
    return dir;
  }
  const dir = join(dataDir, "images", n);
  if (existsSync(join(dir, "etc/mrg/boot"))) {
    refreshBoot(dir);
    return dir;
  }
  const cached = join(imageCache(), n);
  if (existsSync(join(cached, "etc/mrg/boot"))) {
    // Nodes set up at once ask at once: one link per image and data directory. (Two copies into one
    // temporary directory, each removing the other's and the finished image, left a node starting on a
    // lower directory that had just been removed: `mount overlay: No such file or directory`.)
    const pending = linking.get(dir) ?? linkImage(cached, dir);
    linking.set(dir, pending);
    try {
      return await pending;
    } finally {
      linking.delete(dir);
    }
  }
  throw new Error(
    `image "${n}" is not built on this host: run \`cog images build ${n}\` or scripts/setup.sh (available: busybox, ${DEBIAN_SUITES.join(", ")})`,
  );
}

const linking = new Map<string, Promise<string>>();

/** Link (or copy) a cached image into the data directory, via a temporary directory of this call's own. */
async function linkImage(cached: string, dir: string): Promise<string> {
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = `${dir}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    if ((await run("cp", ["-al", cached, tmp])).code !== 0) {
      rmSync(tmp, { recursive: true, force: true });
      await check("cp", ["-a", cached, tmp]);
    }
    // Another process may have finished it meanwhile: the finished image is never replaced under running nodes.
    if (existsSync(join(dir, "etc/mrg/boot"))) return dir;
    refreshBoot(tmp);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    return dir;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * A node's image directory. When the image is not built here and the data
 * plane was opened with an `imageFallback`, the fallback is used and the
 * substitution logged (a one-host demo without Debian); otherwise the error
 * says how to build it.
 */
export async function nodeImage(
  dataDir: string,
  name: string | undefined,
  opts: { node: string; fallback?: string | undefined; defaultImage?: string | undefined; log: (m: string) => void },
): Promise<string> {
  const wanted = name || opts.defaultImage || DEFAULT_IMAGE;
  try {
    return await imageDir(dataDir, wanted);
  } catch (e) {
    // A node that asked for nothing still boots where the default is not built yet, on busybox.
    const fallback = opts.fallback ?? (name ? undefined : "busybox");
    if (!fallback || fallback === wanted) throw e;
    opts.log(
      `node ${opts.node}: image "${wanted}" is not built on this host; using "${fallback}" instead (build it with \`cog images build ${wanted}\` or scripts/setup.sh)`,
    );
    return imageDir(dataDir, fallback);
  }
}
