/**
 * Home and project directories under the portal's data directory:
 * `<data>/home/<user>` and `<data>/proj/<project>`, created and removed with
 * the user or project. Names were validated by the API (no separators), and
 * the resolved path is checked to stay inside its root anyway. A project or a
 * home with a quota is on a volume of its own (project-volume.ts).
 */
import { existsSync, readdirSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { checkName } from "./names.ts";
import { type HomeQuota, HomeVolumes, type ProjectQuota, ProjectVolumes } from "./project-volume.ts";

export class Workspace {
  readonly homeRoot: string;
  readonly projRoot: string;
  readonly volumes: ProjectVolumes;
  readonly homeVolumes: HomeVolumes;
  constructor(dataDir: string, quota: ProjectQuota = { projects: {} }, home: HomeQuota = { users: {} }) {
    this.homeRoot = resolve(dataDir, "home");
    this.projRoot = resolve(dataDir, "proj");
    this.volumes = new ProjectVolumes(resolve(dataDir), quota);
    this.homeVolumes = new HomeVolumes(resolve(dataDir), home);
  }
  homeDir(user: string): string {
    return inside(this.homeRoot, checkName(user, "user"));
  }
  projectDir(project: string): string {
    return inside(this.projRoot, checkName(project, "project"));
  }
  async createHome(user: string): Promise<void> {
    await mkdir(this.homeDir(user), { recursive: true, mode: 0o750 });
    await this.homeVolumes.ensure(user, this.homeDir(user));
  }
  async removeHome(user: string): Promise<void> {
    await this.homeVolumes.remove(user, this.homeDir(user));
    await rm(this.homeDir(user), { recursive: true, force: true });
  }
  async createProject(project: string): Promise<void> {
    await mkdir(this.projectDir(project), { recursive: true, mode: 0o770 });
    await this.volumes.ensure(project, this.projectDir(project));
  }
  async removeProject(project: string): Promise<void> {
    await this.volumes.remove(project, this.projectDir(project));
    await rm(this.projectDir(project), { recursive: true, force: true });
  }
  /** The portal stops: its projects' and homes' volumes are unmounted (the next start mounts them again). */
  async close(): Promise<void> {
    for (const [root, v] of [
      [this.projRoot, this.volumes],
      [this.homeRoot, this.homeVolumes],
    ] as const) {
      if (!existsSync(root)) continue;
      for (const d of readdirSync(root)) await v.unmount(join(root, d));
    }
  }
}

function inside(root: string, name: string): string {
  const p = join(root, name);
  if (!p.startsWith(root + sep)) throw new Error(`path ${p} escapes ${root}`);
  return p;
}
