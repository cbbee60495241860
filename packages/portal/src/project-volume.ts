/**
 * Per-project storage quotas: a project with a quota has its `/proj/<project>`
 * on a file system of its own, an ext4 image of the quota's size
 * (`<data>/proj-volumes/<project>.ext4`, sparse) loop-mounted on the project
 * directory, so a write past the quota fails with ENOSPC wherever the
 * directory is mounted (XDCs and nodes bind-mount it). Why not quotas on the
 * portal's own file system: it may be any file system (overlay, tmpfs, xfs
 * without `prjquota`), and a loop image enforces the same way on every one,
 * needing only loop devices and ext4. A bigger quota grows the image (offline
 * `resize2fs` at the next mount: the portal's next start); a smaller one is refused (shrinking would lose data). The
 * mounts are the portal's running state: made at start and on project
 * creation, undone at stop and on project deletion; the images persist.
 *
 * Policy file:
 *   quota:
 *     project:
 *       default: 10GiB         # every project (absent: no quota)
 *       projects: {big: 1TiB}  # per project
 */
import { execFile } from "node:child_process";
import {
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

/** Smallest image mkfs.ext4 makes a usable file system of. */
const MIN_BYTES = 4 * 1024 * 1024;

/** The `quota.project` section of a policy document; errors name the file and field. */
export function parseProjectQuota(text: string, file = "<policy>"): ProjectQuota {
  const doc = parse(text) as { quota?: { project?: unknown } } | null;
  const section = doc?.quota?.project;
  const out: ProjectQuota = { projects: {} };
  if (section === undefined || section === null) return out;
  if (typeof section !== "object") {
    throw new PolicyError(`${file}: quota.project: expected '{default: 10GiB, projects: {name: 1TiB}}'`);
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
  for (const [k, v] of Object.entries(section)) {
    if (k === "default") out.default = size(v, "quota.project.default");
    else if (k === "projects") {
      if (typeof v !== "object" || v === null) throw new PolicyError(`${file}: quota.project.projects: expected a map`);
      for (const [p, q] of Object.entries(v)) out.projects[p] = size(q, `quota.project.projects.${p}`);
    } else throw new PolicyError(`${file}: quota.project.${k}: unknown field; known: default, projects`);
  }
  return out;
}

export function quotaOf(q: ProjectQuota, project: string): number | undefined {
  return q.projects[project] ?? q.default;
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

export class ProjectVolumes {
  readonly dir: string;
  constructor(
    dataDir: string,
    private readonly quota: ProjectQuota,
  ) {
    this.dir = join(dataDir, "proj-volumes");
  }

  image(project: string): string {
    return join(this.dir, `${project}.ext4`);
  }

  /**
   * The project's volume mounted on `projectDir` (made the first time, grown to
   * a bigger quota); nothing without a quota. Files already in the directory
   * (a quota set later) move onto the volume.
   */
  async ensure(project: string, projectDir: string): Promise<void> {
    const bytes = quotaOf(this.quota, project);
    if (bytes === undefined) return;
    const img = this.image(project);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (!existsSync(img)) {
      const tmp = `${img}.new`;
      writeFileSync(tmp, "");
      truncateSync(tmp, bytes);
      // No reserved blocks (the quota is all the project's), no lost+found worth keeping.
      await sh("mkfs.ext4", ["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1", tmp]);
      renameSync(tmp, img);
    }
    const size = statSync(img).size;
    if (bytes < size) {
      throw new Error(
        `project ${project}: its quota ${bytes} bytes is smaller than its volume (${size} bytes); shrinking is not supported`,
      );
    }
    if (isMountPoint(projectDir)) return;
    if (bytes > size) {
      // Offline, before mounting (online growth needs an ioctl not every host allows): at the next start.
      truncateSync(img, bytes);
      await sh("e2fsck", ["-f", "-p", img], [0, 1]); // 1: fixed (e.g. lost+found made again)
      await sh("resize2fs", [img]);
    }
    mkdirSync(projectDir, { recursive: true, mode: 0o770 });
    if (readdirSync(projectDir).length > 0) await this.adopt(img, projectDir);
    await sh("mount", ["-o", "loop,nosuid,nodev", img, projectDir]);
    rmSync(join(projectDir, "lost+found"), { recursive: true, force: true });
  }

  /** Move what a directory holds onto the (not yet mounted) volume. */
  private async adopt(img: string, projectDir: string): Promise<void> {
    const at = `${img}.mnt`;
    mkdirSync(at, { recursive: true });
    await sh("mount", ["-o", "loop", img, at]);
    try {
      await sh("cp", ["-a", `${projectDir}/.`, `${at}/`]);
    } finally {
      await sh("umount", [at]);
      rmSync(at, { recursive: true, force: true });
    }
    for (const e of readdirSync(projectDir)) rmSync(join(projectDir, e), { recursive: true, force: true });
  }

  /** Unmount the project's volume (lazily: an XDC or node may still hold it, its mount goes with them). */
  async unmount(projectDir: string): Promise<void> {
    if (isMountPoint(projectDir)) await sh("umount", ["-l", projectDir]);
  }

  /** Unmount and delete the project's volume (the project is deleted). */
  async remove(project: string, projectDir: string): Promise<void> {
    await this.unmount(projectDir);
    rmSync(this.image(project), { force: true });
  }
}
