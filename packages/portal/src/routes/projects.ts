/** Projects and their members. */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { listingRoles } from "../access.ts";
import { createProject, deleteProject, setMember } from "../accounts.ts";
import type { PortalContext } from "../context.ts";
import { Batch, list, patchDoc, read } from "../documents.ts";
import { conflict, notFound } from "../errors.ts";
import { keys, type Member, type Project } from "../objects.ts";
import { allows } from "../policy.ts";
import * as S from "../schemas.ts";
import { routes } from "./declare.ts";

const ProjectParams = Type.Object({ project: S.Name("project name") }, { additionalProperties: false });
const MemberParams = Type.Object(
  { project: S.Name("project name"), user: S.Name("user name") },
  { additionalProperties: false },
);

export const projectRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const { store } = ctx;
  const api = routes(app);

  api.get(
    "/projects",
    {
      access: { object: "project", action: "read", list: true },
      tags: "projects",
      summary: "Projects the caller may see",
      answer: Type.Array(S.Project),
    },
    async (req) => {
      const me = req.principal!.user;
      const [projects, mine] = await Promise.all([
        list<Project>(store, keys.projects()),
        list<Member>(store, keys.memberships(me.name)),
      ]);
      const roleOf = new Map(mine.map((m) => [m.project, m]));
      return projects.filter((p) =>
        allows(ctx.policy, "project", p.visibility, "read", listingRoles(me, roleOf.get(p.name))),
      );
    },
  );

  api.post(
    "/projects",
    {
      access: { object: "project", action: "create" },
      tags: "projects",
      body: S.NewProject,
      answer: S.Project,
      status: 201,
    },
    async (req) => createProject(store, ctx.workspace, { ...req.body, creator: req.principal!.user.name }),
  );

  api.get(
    "/projects/:project",
    { access: { object: "project", action: "read" }, tags: "projects", params: ProjectParams, answer: S.Project },
    async (req) => req.project!,
  );

  api.patch(
    "/projects/:project",
    {
      access: { object: "project", action: "update", fields: { visibility: "visibility" } },
      tags: "projects",
      params: ProjectParams,
      body: S.ProjectUpdate,
      answer: S.Project,
    },
    async (req) => {
      const { project } = req.params;
      const patch = { kind: "project", name: project };
      return (await patchDoc<Project>(store, keys.project(project), patch, (p) => ({ ...p, ...req.body }))).after;
    },
  );

  api.delete(
    "/projects/:project",
    { access: { object: "project", action: "delete" }, tags: "projects", params: ProjectParams, answer: null },
    async (req) => {
      await deleteProject(store, ctx.workspace, req.params.project);
    },
  );

  api.get(
    "/projects/:project/members",
    {
      access: { object: "member", action: "read" },
      tags: "members",
      params: ProjectParams,
      answer: Type.Array(S.Member),
    },
    async (req) => list<Member>(store, keys.members(req.params.project)),
  );

  api.post(
    "/projects/:project/members",
    {
      access: { object: "member", action: "create" },
      tags: "members",
      params: ProjectParams,
      body: S.NewMember,
      answer: S.Member,
      status: 201,
    },
    async (req) => {
      const existing = await read<Member>(store, keys.member(req.params.project, req.body.user));
      if (existing !== undefined)
        throw conflict(`${req.body.user} is already a ${existing.role} of ${req.params.project}`);
      if (req.body.role === "creator") throw conflict("a project has one creator; add maintainers or members");
      return setMember(store, req.params.project, req.body.user, req.body.role ?? "member");
    },
  );

  /** The member the path names, or a 404; a creator's membership changes only with the project. */
  const member = async (project: string, user: string, change: string): Promise<Member> => {
    const existing = await read<Member>(store, keys.member(project, user));
    if (existing === undefined) throw notFound("member", `${user} of ${project}`);
    if (existing.role === "creator") throw conflict(change);
    return existing;
  };

  api.patch(
    "/projects/:project/members/:user",
    {
      access: { object: "member", action: "update" },
      tags: "members",
      params: MemberParams,
      body: S.MemberUpdate,
      answer: S.Member,
    },
    async (req) => {
      const { project, user } = req.params;
      const creatorsRole = "the creator's role cannot be changed, and there is only one creator";
      await member(project, user, creatorsRole);
      if (req.body.role === "creator") throw conflict(creatorsRole);
      return setMember(store, project, user, req.body.role);
    },
  );

  api.delete(
    "/projects/:project/members/:user",
    { access: { object: "member", action: "delete" }, tags: "members", params: MemberParams, answer: null },
    async (req) => {
      const { project, user } = req.params;
      await member(project, user, "the project's creator cannot be removed; delete the project instead");
      await new Batch()
        .delete(keys.member(project, user))
        .delete(keys.membership(user, project))
        .commit(store, "conflict");
    },
  );
};
