/**
 * Home and project directories under the portal's data directory:
 * `<data>/home/<user>` and `<data>/proj/<project>`, created and removed with
 * the user or project. Names were validated by the API (no separators), and
 * the resolved path is checked to stay inside its root anyway.
 */
import { mkdir, rm } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { checkName } from "./names.ts";

export class Workspace {
  readonly homeRoot: string;
  readonly projRoot: string;
  constructor(dataDir: string) {
    this.homeRoot = resolve(dataDir, "home");
    this.projRoot = resolve(dataDir, "proj");
  }
  homeDir(user: string): string {
    return inside(this.homeRoot, checkName(user, "user"));
  }
  projectDir(project: string): string {
    return inside(this.projRoot, checkName(project, "project"));
  }
  async createHome(user: string): Promise<void> {
    await mkdir(this.homeDir(user), { recursive: true, mode: 0o750 });
  }
  async removeHome(user: string): Promise<void> {
    await rm(this.homeDir(user), { recursive: true, force: true });
  }
  async createProject(project: string): Promise<void> {
    await mkdir(this.projectDir(project), { recursive: true, mode: 0o770 });
  }
  async removeProject(project: string): Promise<void> {
    await rm(this.projectDir(project), { recursive: true, force: true });
  }
}

function inside(root: string, name: string): string {
  const p = join(root, name);
  if (!p.startsWith(root + sep)) throw new Error(`path ${p} escapes ${root}`);
  return p;
}
