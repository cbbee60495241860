// cog images build|list: node images for the linux backend. The Debian suites
// (bookworm is the default node image) are made by debootstrap from the Debian
// mirror (minutes, downloads) into the image cache shared by every data
// directory (/var/cache/merge/images, $MERGE_IMAGE_CACHE); `busybox` is built
// in milliseconds from Debian's busybox-static into the facility backend's data
// directory (default: npm start's).
import { type Dirent, existsSync, lstatSync, readdirSync, type Stats, statSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  busyboxImage,
  DEBIAN_PACKAGES,
  DEBIAN_SUITES,
  DEFAULT_IMAGE,
  debianBuildDir,
  debianImage,
  imageCache,
} from "@merge/facility/linux";
import type { Command } from "commander";
import { defaultDataDir } from "./facility-store.ts";

const IMAGES = ["busybox", ...DEBIAN_SUITES];
const MIRROR = "http://deb.debian.org/debian";

/**
 * Bytes under a directory, for build progress and `list`: one filesystem only
 * (debootstrap mounts /proc and /sys inside the tree it is building), symlinks not
 * followed, hard links counted once, and entries that vanish or cannot be read
 * while a build writes them skipped rather than thrown.
 */
export function treeBytes(dir: string): number {
  const top = statOrNull(dir);
  if (!top) return 0;
  let total = 0;
  const seen = new Set<number>();
  const walk = (d: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isSymbolicLink()) continue;
      const p = join(d, e.name);
      const s = statOrNull(p);
      if (!s || s.dev !== top.dev) continue;
      if (s.isDirectory()) walk(p);
      else if (!seen.has(s.ino)) {
        seen.add(s.ino);
        total += s.size;
      }
    }
  };
  walk(dir);
  return total;
}

function statOrNull(path: string): Stats | null {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

function human(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

export interface BuiltImage {
  name: string;
  path: string;
  bytes: number;
  built: string;
}

/** Images built in a data directory: those with the merge boot installed (a finished build). */
/** Images in the data directory, then those in the image cache. */
export function builtImages(dataDir: string): BuiltImage[] {
  return [...imagesIn(join(dataDir, "images")), ...imagesIn(imageCache())];
}

function imagesIn(dir: string): BuiltImage[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.endsWith(".tmp") && existsSync(join(dir, e.name, "etc/mrg/boot")))
    .map((e) => {
      const path = join(dir, e.name);
      return {
        name: e.name,
        path,
        bytes: treeBytes(path),
        built: statSync(join(path, "etc/mrg/boot")).mtime.toISOString(),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Can debootstrap reach the suite on the mirror? A HEAD of its Release file, a few seconds at most. */
async function mirrorReachable(mirror: string, suite: string): Promise<string | undefined> {
  const url = `${mirror.replace(/\/$/, "")}/dists/${suite}/Release`;
  try {
    const r = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(8000) });
    return r.ok ? undefined : `${url} answered ${r.status} ${r.statusText}`;
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return `${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`;
  }
}

function debootstrapPath(): string | undefined {
  return ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
    .map((d) => join(d, "debootstrap"))
    .find((p) => existsSync(p));
}

async function build(name: string, opts: { dataDir?: string; mirror: string; json?: boolean }): Promise<void> {
  const dataDir = resolve(opts.dataDir ?? defaultDataDir());
  if (!IMAGES.includes(name)) return fail("build", `unknown image "${name}": expected one of ${IMAGES.join(", ")}`);
  const t0 = Date.now();
  const say = (m: string) => {
    if (!opts.json) console.log(m);
  };
  let path: string;
  if (name === "busybox") {
    say(`building busybox into ${join(dataDir, "images", name)}`);
    path = await busyboxImage(dataDir);
  } else if (existsSync(join(imageCache(), name, "etc/mrg/boot"))) {
    path = join(imageCache(), name);
    say(`${name} is already built in the image cache`);
  } else {
    if (!debootstrapPath())
      return fail("build", `${name} needs debootstrap, which is not installed (apt-get install debootstrap)`);
    const unreachable = await mirrorReachable(opts.mirror, name);
    if (unreachable)
      return fail(
        "build",
        `the Debian mirror is unavailable (${unreachable}); ${name} is built from it by debootstrap. Use --mirror <url> for a reachable mirror, or build busybox, which needs none`,
      );
    say(
      `building ${name} from ${opts.mirror} into ${join(imageCache(), name)} (debootstrap; a few minutes): Debian minbase with ${DEBIAN_PACKAGES.join(", ")}`,
    );
    const tmp = debianBuildDir(imageCache(), name);
    // debootstrap says nothing until it ends: show it is alive and how much it has written.
    const ticker = setInterval(() => {
      const bytes = existsSync(tmp) ? treeBytes(tmp) : 0;
      say(`  ${name}: ${Math.round((Date.now() - t0) / 1000)} s, ${human(bytes)} written`);
    }, 10_000);
    try {
      path = await debianImage(name, { mirror: opts.mirror, log: say });
    } catch (e) {
      return fail("build", (e as Error).message);
    } finally {
      clearInterval(ticker);
    }
  }
  const bytes = treeBytes(path);
  if (opts.json) console.log(JSON.stringify({ name, path, bytes, ms: Date.now() - t0 }));
  else say(`built ${name}: ${path}, ${human(bytes)}, ${Date.now() - t0} ms`);
}

function list(opts: { dataDir?: string; json?: boolean }): void {
  const dataDir = resolve(opts.dataDir ?? defaultDataDir());
  const images = builtImages(dataDir);
  if (opts.json) {
    console.log(JSON.stringify(images, null, 2));
    return;
  }
  if (!images.length) {
    console.log(
      `no images built in ${dataDir} or ${imageCache()} (cog images build busybox|${DEBIAN_SUITES.join("|")}; nodes get ${DEFAULT_IMAGE} unless their model names an image)`,
    );
    return;
  }
  const w = Math.max(5, ...images.map((i) => i.name.length));
  console.log(`${"IMAGE".padEnd(w)}  ${"SIZE".padStart(10)}  BUILT                     PATH`);
  for (const i of images)
    console.log(`${i.name.padEnd(w)}  ${human(i.bytes).padStart(10)}  ${i.built.padEnd(24)}  ${i.path}`);
  const missing = IMAGES.filter((n) => !images.some((i) => i.name === n));
  if (missing.length) console.log(`not built: ${missing.join(", ")}`);
}

export function register(program: Command): void {
  const images = program
    .command("images")
    .description(
      `node images for the linux backend: ${DEFAULT_IMAGE} (the default) and the other Debian suites in ${imageCache()}, busybox in the data dir (default: ${defaultDataDir()}, as npm start uses)`,
    );
  images
    .command("build <image>")
    .description(`build a node image: ${IMAGES.join(", ")} (Debian suites need debootstrap and the Debian mirror)`)
    .option("--data-dir <dir>", "the facility backend's data directory (default .data/facility/backend)")
    .option("--mirror <url>", "Debian mirror for debootstrap", MIRROR)
    .option("--json", "print the result as JSON")
    .action((image: string, opts: { dataDir?: string; mirror: string; json?: boolean }) => build(image, opts));
  images
    .command("list")
    .description("images built in the data directory, with their sizes")
    .option("--data-dir <dir>", "the facility backend's data directory (default .data/facility/backend)")
    .option("--json", "print as JSON")
    .action((opts: { dataDir?: string; json?: boolean }) => list(opts));
}

function fail(cmd: string, message: string): void {
  console.error(`cog images ${cmd}: ${message}`);
  process.exitCode = 2;
}
