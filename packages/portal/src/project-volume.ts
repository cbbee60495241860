/**
 * Storage quotas on the portal's directories: a project with a quota has its
 * `/proj/<project>` on a file system of its own, an ext4 image of the quota's
 * size (`<data>/proj-volumes/<project>.ext4`, sparse) loop-mounted on the
 * project directory; a user with a home quota likewise has `/home/<user>` on
 * `<data>/home-volumes/<user>.ext4`. A write past the quota fails with ENOSPC
 * wherever the directory is mounted (XDCs and nodes bind-mount it; other
 * machines see it through the storage server). Why not quotas on the
 * portal's own file system: it may be any file system (overlay, tmpfs, xfs
 * without `prjquota`), and a loop image enforces the same way on every one,
 * needing only loop devices and ext4. A bigger quota grows the image (offline
 * `resize2fs` at the next mount: the portal's next start); a smaller one is refused (shrinking would lose data). The
 * mounts are the portal's running state: made at start and on project (user)
 * creation, undone at stop and on deletion; the images persist.
 *
 * Policy file:
 *   quota:
 *     project:
 *       default: 10GiB         # every project (absent: no quota)
 *       projects: {big: 1TiB}  # per project
 *     home:
 *       default: 2GiB          # every user's home (absent: no quota)
 *       users: {alice: 20GiB}  # per user
 */
import { execFile } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { parseQuantity } from "@merge/xir";
import { parse } from "yaml";
import { PolicyError } from "./policy.ts";

export interface ProjectQuota {
  /** Bytes of every project without its own; undefined: no quota. */
  default?: number;
  projects: Record<string, number>;
}

export interface HomeQuota {
  /** Bytes of every user's home without its own; undefined: no quota. */
  default?: number;
  users: Record<string, number>;
}

/** Smallest image mkfs.ext4 makes a usable file system of. */
const MIN_BYTES = 4 * 1024 * 1024;

/** `quota.<section>`: a default and sizes by name (under `names`); errors name the file and field. */
function parseSizes(
  text: string,
  file: string,
  section: "project" | "home",
  names: "projects" | "users",
): { default?: number; named: Record<string, number> } {
  const doc = parse(text) as { quota?: Record<string, unknown> } | null;
  const value = doc?.quota?.[section];
  const out: { default?: number; named: Record<string, number> } = { named: {} };
  if (value === undefined || value === null) return out;
  if (typeof value !== "object") {
    throw new PolicyError(`${file}: quota.${section}: expected '{default: 10GiB, ${names}: {name: 1TiB}}'`);
  }
  const size = (v: unknown, field: string): number => {
    let n: number;
    try {
      n = typeof v === "number" ? v : parseQuantity(String(v), "bytes", { what: `${file}: ${field}` });
    } catch (e) {
      throw new PolicyError((e as Error).message);
    }
    if (!Number.isFinite(n) || n < MIN_BYTES) {
      throw new PolicyError(`${file}: ${field}: ${JSON.stringify(v)} is below the smallest quota, 4MiB`);
    }
    return Math.floor(n);
  };
  for (const [k, v] of Object.entries(value)) {
    if (k === "default") out.default = size(v, `quota.${section}.default`);
    else if (k === names) {
      if (typeof v !== "object" || v === null)
        throw new PolicyError(`${file}: quota.${section}.${names}: expected a map`);
      for (const [p, q] of Object.entries(v)) out.named[p] = size(q, `quota.${section}.${names}.${p}`);
    } else throw new PolicyError(`${file}: quota.${section}.${k}: unknown field; known: default, ${names}`);
  }
  return out;
}

/** The `quota.project` section of a policy document; errors name the file and field. */
export function parseProjectQuota(text: string, file = "<policy>"): ProjectQuota {
  const { named, ...rest } = parseSizes(text, file, "project", "projects");
  return { ...rest, projects: named };
}

/** The `quota.home` section of a policy document; errors name the file and field. */
export function parseHomeQuota(text: string, file = "<policy>"): HomeQuota {
  const { named, ...rest } = parseSizes(text, file, "home", "users");
  return { ...rest, users: named };
}

export function quotaOf(q: ProjectQuota, project: string): number | undefined {
  return q.projects[project] ?? q.default;
}

export function homeQuotaOf(q: HomeQuota, user: string): number | undefined {
  return q.users[user] ?? q.default;
}

/** Run to completion; exit codes other than `ok` are an error naming the command. */
function sh(cmd: string, args: string[], ok: number[] = [0]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      if (ok.includes(code)) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(" ")}: ${stderr.trim() || stdout.trim() || err?.message}`));
    }),
  );
}

export function isMountPoint(dir: string): boolean {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((l) => l.split(" ")[4] === dir);
}

/** Loop-mounted ext4 volumes, one per name, each the size `sizeOf` gives it (none: a plain directory). */
export class LoopVolumes {
  constructor(
    readonly dir: string,
    private readonly sizeOf: (name: string) => number | undefined,
    /** What a volume is, in errors ("project", "home"). */
    private readonly what: string,
  ) {}

  image(name: string): string {
    return join(this.dir, `${name}.ext4`);
  }

  /** The quota of `name`, bytes; undefined: none. */
  quota(name: string): number | undefined {
    return this.sizeOf(name);
  }

  /**
   * The volume mounted on `target` (made the first time, grown to a bigger
   * quota); nothing without a quota. Files already in the directory (a quota
   * set later) move onto the volume; a new volume's root takes the
   * directory's owner and mode (a home its user's, a project directory setgid).
   */
  async ensure(name: string, target: string): Promise<void> {
    const bytes = this.sizeOf(name);
    if (bytes === undefined) return;
    const img = this.image(name);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const made = !existsSync(img);
    if (made) {
      const tmp = `${img}.new`;
      writeFileSync(tmp, "");
      truncateSync(tmp, bytes);
      // No reserved blocks (the quota is all the owner's), no lost+found worth keeping.
      await sh("mkfs.ext4", ["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1", tmp]);
      renameSync(tmp, img);
    }
    const size = statSync(img).size;
    if (bytes < size) {
      throw new Error(
        `${this.what} ${name}: its quota ${bytes} bytes is smaller than its volume (${size} bytes); shrinking is not supported`,
      );
    }
    if (isMountPoint(target)) return;
    if (bytes > size) {
      // Offline, before mounting (online growth needs an ioctl not every host allows): at the next start.
      truncateSync(img, bytes);
      await sh("e2fsck", ["-f", "-p", img], [0, 1]); // 1: fixed (e.g. lost+found made again)
      await sh("resize2fs", [img]);
    }
    mkdirSync(target, { recursive: true, mode: 0o770 });
    const before = statSync(target);
    if (readdirSync(target).length > 0) await this.adopt(img, target);
    await sh("mount", ["-o", "loop,nosuid,nodev", img, target]);
    rmSync(join(target, "lost+found"), { recursive: true, force: true });
    if (made) {
      chownSync(target, before.uid, before.gid);
      chmodSync(target, before.mode & 0o7777);
    }
  }

  /** Move what a directory holds onto the (not yet mounted) volume. */
  private async adopt(img: string, target: string): Promise<void> {
    const at = `${img}.mnt`;
    mkdirSync(at, { recursive: true });
    await sh("mount", ["-o", "loop", img, at]);
    try {
      await sh("cp", ["-a", `${target}/.`, `${at}/`]);
    } finally {
      await sh("umount", [at]);
      rmSync(at, { recursive: true, force: true });
    }
    for (const e of readdirSync(target)) rmSync(join(target, e), { recursive: true, force: true });
  }

  /** Unmount the volume (lazily: an XDC or node may still hold it, its mount goes with them). */
  async unmount(target: string): Promise<void> {
    if (isMountPoint(target)) await sh("umount", ["-l", target]);
  }

  /** Unmount and delete the volume (its project or user is deleted). */
  async remove(name: string, target: string): Promise<void> {
    await this.unmount(target);
    rmSync(this.image(name), { force: true });
  }
}

/** Projects' volumes: `<data>/proj-volumes/<project>.ext4` on `/proj/<project>`. */
export class ProjectVolumes extends LoopVolumes {
  constructor(dataDir: string, quota: ProjectQuota) {
    super(join(dataDir, "proj-volumes"), (p) => quotaOf(quota, p), "project");
  }
}

/** Users' home volumes: `<data>/home-volumes/<user>.ext4` on `/home/<user>`. */
export class HomeVolumes extends LoopVolumes {
  constructor(dataDir: string, quota: HomeQuota) {
    super(join(dataDir, "home-volumes"), (u) => homeQuotaOf(quota, u), "home");
  }
}
