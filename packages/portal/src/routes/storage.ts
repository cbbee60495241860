/**
 * What the caller's storage quotas are and how much of them is used: their
 * `/home/<user>` and the `/proj/<project>` of each project they are a member of
 * (project-volume.ts). A directory with a quota is a volume of its own, so its
 * use is the file system's (statfs, no walk of the files); one without a quota
 * has no figure (a walk could take as long as the files are many).
 */
import { statfsSync } from "node:fs";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { list } from "../documents.ts";
import { keys, type Member } from "../objects.ts";
import { isMountPoint, type LoopVolumes } from "../project-volume.ts";
import * as S from "../schemas.ts";
import { routes } from "./declare.ts";

const Volume = Type.Object({
  /** Where it is mounted in XDCs and on nodes. */
  path: Type.String(),
  /** Bytes; null: no quota. */
  quota: Type.Union([Type.Integer(), Type.Null()]),
  /** Bytes used and still free on its volume; null without a quota (or not mounted). */
  used: Type.Union([Type.Integer(), Type.Null()]),
  available: Type.Union([Type.Integer(), Type.Null()]),
});
const Storage = Type.Object({ home: Volume, projects: Type.Array(Volume) });
export type StorageUsage = Type.Static<typeof Storage>;

function usage(volumes: LoopVolumes, name: string, dir: string, path: string) {
  const quota = volumes.quota(name) ?? null;
  if (quota === null || !isMountPoint(dir)) return { path, quota, used: null, available: null };
  const s = statfsSync(dir);
  return { path, quota, used: (s.blocks - s.bfree) * s.bsize, available: s.bavail * s.bsize };
}

export const storageRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const api = routes(app);
  const ws = ctx.workspace;
  api.get(
    "/users/:user/storage",
    {
      access: { object: "user", action: "update" },
      tags: "users",
      summary: "The user's home and their projects' directories: quota and use",
      params: Type.Object({ user: S.Name("user name") }, { additionalProperties: false }),
      answer: Storage,
    },
    async (req) => {
      const user = req.params.user;
      const projects = (await list<Member>(ctx.store, keys.memberships(user))).map((m) => m.project).sort();
      return {
        home: usage(ws.homeVolumes, user, ws.homeDir(user), `/home/${user}`),
        projects: projects.map((p) => usage(ws.volumes, p, ws.projectDir(p), `/proj/${p}`)),
      };
    },
  );
};
