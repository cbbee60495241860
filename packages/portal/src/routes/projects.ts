/** Projects and their members. */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { projectRoles } from "../access.ts";
import { createProject, deleteProject, setMember } from "../accounts.ts";
import type { PortalContext } from "../context.ts";
import { Batch, list, read, readDoc } from "../documents.ts";
import { conflict, notFound } from "../errors.ts";
import { keys, type Member, type Project } from "../objects.ts";
import { allows, type Role } from "../policy.ts";
import * as S from "../schemas.ts";

const ProjectParams = Type.Object({ project: S.Name("project name") }, { additionalProperties: false });
const MemberParams = Type.Object(
  { project: S.Name("project name"), user: S.Name("user name") },
  { additionalProperties: false },
);

export const projectRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const { store } = ctx;

  app.get(
    "/projects",
    {
      config: { access: { object: "project", action: "read", list: true } },
      schema: {
        tags: ["projects"],
        summary: "Projects the caller may see",
        response: { 200: Type.Array(S.Project), ...S.errors },
      },
    },
    async (req) => {
      const me = req.principal!.user;
      const [projects, mine] = await Promise.all([
        list<Project>(store, keys.projects()),
        list<Member>(store, keys.memberships(me.name)),
      ]);
      const roleOf = new Map(mine.map((m) => [m.project, m]));
      return projects.filter((p) => {
        const roles = new Set<Role>(["Any.Any", ...projectRoles(roleOf.get(p.name))]);
        if (me.admin) roles.add("Portal.Admin");
        return allows(ctx.policy, "project", p.visibility, "read", roles);
      });
    },
  );

  app.post(
    "/projects",
    {
      config: { access: { object: "project", action: "create" } },
      schema: { tags: ["projects"], body: S.NewProject, response: { 201: S.Project, ...S.errors } },
    },
    async (req, reply) => {
      const p = await createProject(store, ctx.workspace, { ...req.body, creator: req.principal!.user.name });
      return reply.code(201).send(p);
    },
  );

  app.get(
    "/projects/:project",
    {
      config: { access: { object: "project", action: "read" } },
      schema: { tags: ["projects"], params: ProjectParams, response: { 200: S.Project, ...S.errors } },
    },
    async (req) => req.project!,
  );

  app.patch(
    "/projects/:project",
    {
      config: { access: { object: "project", action: "update", fields: { visibility: "visibility" } } },
      schema: {
        tags: ["projects"],
        params: ProjectParams,
        body: S.ProjectUpdate,
        response: { 200: S.Project, ...S.errors },
      },
    },
    async (req) => {
      const doc = await readDoc<Project>(store, keys.project(req.params.project));
      if (doc === undefined) throw notFound("project", req.params.project);
      const next = { ...doc.value, ...req.body };
      await new Batch()
        .unchanged(keys.project(next.name), doc.modRevision)
        .put(keys.project(next.name), next)
        .commit(store, "the project changed meanwhile; try again");
      return next;
    },
  );

  app.delete(
    "/projects/:project",
    {
      config: { access: { object: "project", action: "delete" } },
      schema: { tags: ["projects"], params: ProjectParams, response: { 204: Type.Null(), ...S.errors } },
    },
    async (req, reply) => {
      await deleteProject(store, ctx.workspace, req.params.project);
      return reply.code(204).send(null);
    },
  );

  app.get(
    "/projects/:project/members",
    {
      config: { access: { object: "member", action: "read" } },
      schema: { tags: ["members"], params: ProjectParams, response: { 200: Type.Array(S.Member), ...S.errors } },
    },
    async (req) => list<Member>(store, keys.members(req.params.project)),
  );

  app.post(
    "/projects/:project/members",
    {
      config: { access: { object: "member", action: "create" } },
      schema: {
        tags: ["members"],
        params: ProjectParams,
        body: S.NewMember,
        response: { 201: S.Member, ...S.errors },
      },
    },
    async (req, reply) => {
      const existing = await read<Member>(store, keys.member(req.params.project, req.body.user));
      if (existing !== undefined)
        throw conflict(`${req.body.user} is already a ${existing.role} of ${req.params.project}`);
      if (req.body.role === "creator") throw conflict("a project has one creator; add maintainers or members");
      const m = await setMember(store, req.params.project, req.body.user, req.body.role ?? "member");
      return reply.code(201).send(m);
    },
  );

  app.patch(
    "/projects/:project/members/:user",
    {
      config: { access: { object: "member", action: "update" } },
      schema: {
        tags: ["members"],
        params: MemberParams,
        body: S.MemberUpdate,
        response: { 200: S.Member, ...S.errors },
      },
    },
    async (req) => {
      const existing = await read<Member>(store, keys.member(req.params.project, req.params.user));
      if (existing === undefined) throw notFound("member", `${req.params.user} of ${req.params.project}`);
      if (existing.role === "creator" || req.body.role === "creator") {
        throw conflict("the creator's role cannot be changed, and there is only one creator");
      }
      return setMember(store, req.params.project, req.params.user, req.body.role);
    },
  );

  app.delete(
    "/projects/:project/members/:user",
    {
      config: { access: { object: "member", action: "delete" } },
      schema: { tags: ["members"], params: MemberParams, response: { 204: Type.Null(), ...S.errors } },
    },
    async (req, reply) => {
      const existing = await read<Member>(store, keys.member(req.params.project, req.params.user));
      if (existing === undefined) throw notFound("member", `${req.params.user} of ${req.params.project}`);
      if (existing.role === "creator")
        throw conflict("the project's creator cannot be removed; delete the project instead");
      await new Batch()
        .delete(keys.member(req.params.project, req.params.user))
        .delete(keys.membership(req.params.user, req.params.project))
        .commit(store, "conflict");
      return reply.code(204).send(null);
    },
  );
};
