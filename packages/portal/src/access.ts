/**
 * The one place access is decided. Every route declares in its config either
 * `access: { object, action }` or `access: "public"`; a route without either
 * makes the portal refuse to start. Two hooks enforce it on every request:
 * `onRequest` authenticates (401 without a valid token, 403 for inactive
 * accounts), `preHandler` (after input validation) loads the project and
 * experiment named in the path, works out the caller's roles and asks the
 * policy. A project or experiment the caller may not read is "not found"
 * (404), exactly like a name that does not exist, whatever the route: a 403
 * would tell a non-member that a private project or experiment is there.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { PortalContext } from "./context.ts";
import { read } from "./documents.ts";
import { forbidden, notFound, PortalError } from "./errors.ts";
import type { Principal } from "./identity.ts";
import { type Experiment, keys, type Member, type Project, type Visibility } from "./objects.ts";
import { type Action, allows, type ObjectType, type PolicyVisibility, type Role } from "./policy.ts";

/**
 * `list: true` marks listing routes with no object in the path: the hook only
 * checks the caller is signed in and active, and the handler filters every
 * item through the same policy (`allows`). `fields` names body fields whose
 * change needs the same action on another object type of the policy as well
 * (`visibility: "visibility"`: changing who may see an experiment is not an
 * ordinary update).
 */
export type AccessRule =
  | "public"
  | { object: ObjectType; action: Action; list?: boolean; fields?: Partial<Record<string, ObjectType>> };

declare module "fastify" {
  interface FastifyContextConfig {
    access?: AccessRule;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
    project: Project | undefined;
    experiment: Experiment | undefined;
    roles: Set<Role>;
  }
}

/** Routes other plugins register (docs, OIDC) that are public by nature. */
const PUBLIC_PREFIXES = ["/docs", "/oidc"];

export function installAccess(app: FastifyInstance, ctx: PortalContext): void {
  app.decorateRequest("principal", undefined);
  app.decorateRequest("project", undefined);
  app.decorateRequest("experiment", undefined);
  app.decorateRequest("roles", undefined as unknown as Set<Role>);

  app.addHook("onRoute", (route) => {
    const cfg = (route.config ?? {}) as { access?: AccessRule };
    if (cfg.access !== undefined) return;
    if (PUBLIC_PREFIXES.some((p) => route.url.startsWith(p)) || route.method === "HEAD") {
      route.config = { ...(route.config ?? {}), access: "public" };
      return;
    }
    throw new Error(`route ${String(route.method)} ${route.url} declares no access rule`);
  });

  app.addHook("onRequest", async (req) => {
    const rule = req.routeOptions.config.access;
    // Public routes (health, registration, sign-in, OIDC) never look at credentials.
    if (rule === "public" || rule === undefined) return;
    const principal = await ctx.identity.authenticate(req.headers.authorization, req.ip);
    req.principal = principal;
    if (principal === undefined) {
      throw new PortalError("unauthenticated", "this call needs a signed-in user; run 'mrg login' first");
    }
    if (principal.user.state !== "active") {
      throw new PortalError(
        "inactive",
        principal.user.state === "pending"
          ? `account '${principal.user.name}' is waiting for an administrator to activate it`
          : `account '${principal.user.name}' is frozen; contact a portal administrator`,
      );
    }
  });

  app.addHook("preHandler", async (req) => {
    const rule = req.routeOptions.config.access;
    if (rule === "public" || rule === undefined) return;
    const principal = req.principal as Principal;
    const params = (req.params ?? {}) as Record<string, string | undefined>;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const roles = await rolesFor(ctx, principal, params, req);
    req.roles = roles;
    if (rule.list === true) return;
    let visibility: PolicyVisibility = "any";
    if (req.experiment !== undefined && rule.object !== "project" && rule.object !== "member") {
      visibility = req.experiment.visibility;
    } else if (rule.object === "experiment" && rule.action === "create") {
      visibility = (body.visibility as Visibility | undefined) ?? "private";
    } else if (rule.object === "project" && rule.action === "create") {
      visibility = (body.visibility as Visibility | undefined) ?? "private";
    } else if (req.project !== undefined) {
      visibility = req.project.visibility;
    }
    if (!allows(ctx.policy, rule.object, visibility, rule.action, roles)) {
      const where = req.experiment
        ? ` in experiment ${req.experiment.name}.${req.experiment.project}`
        : req.project
          ? ` in project ${req.project.name}`
          : "";
      throw forbidden(
        `${principal.user.name} may not ${rule.action} ${rule.object}${where} (${visibility}); ask a project maintainer or an administrator`,
      );
    }
    const current = (rule.object === "experiment" ? req.experiment : req.project) as
      | Record<string, unknown>
      | undefined;
    for (const [field, object] of Object.entries(rule.fields ?? {})) {
      if (object === undefined || body[field] === undefined || body[field] === current?.[field]) continue;
      if (!allows(ctx.policy, object, visibility, rule.action, roles)) {
        throw forbidden(
          `${principal.user.name} may not change the ${field} of this ${rule.object} (policy: ${object} ${rule.action}); ask a project maintainer`,
        );
      }
    }
  });
}

/** The caller's roles toward the user/project/experiment named in the path; loads those objects onto the request. */
async function rolesFor(
  ctx: PortalContext,
  principal: Principal,
  params: Record<string, string | undefined>,
  req: FastifyRequest,
): Promise<Set<Role>> {
  const roles = new Set<Role>(["Any.Any"]);
  const me = principal.user.name;
  if (principal.user.admin) roles.add("Portal.Admin");
  if (params.user !== undefined && params.user === me) roles.add("User.Self");
  if (params.project !== undefined) {
    const [project, member] = await Promise.all([
      read<Project>(ctx.store, keys.project(params.project)),
      read<Member>(ctx.store, keys.member(params.project, me)),
    ]);
    for (const r of projectRoles(member)) roles.add(r);
    if (project === undefined || !allows(ctx.policy, "project", project.visibility, "read", roles))
      throw notFound("project", params.project);
    req.project = project;
    if (params.experiment !== undefined) {
      const exp = await read<Experiment>(ctx.store, keys.experiment(params.project, params.experiment));
      if (exp?.creator === me) roles.add("Experiment.Creator");
      if (exp === undefined || !allows(ctx.policy, "experiment", exp.visibility, "read", roles))
        throw notFound("experiment", `${params.experiment}.${params.project}`);
      req.experiment = exp;
    }
  }
  return roles;
}

/** A signed-in user's roles toward a project's objects, from their membership there: listing routes filter with them. */
export function listingRoles(user: { admin: boolean }, member: Member | undefined): Set<Role> {
  const roles = new Set<Role>(["Any.Any", ...projectRoles(member)]);
  if (user.admin) roles.add("Portal.Admin");
  return roles;
}

export function projectRoles(member: Member | undefined): Role[] {
  if (member === undefined) return [];
  if (member.role === "creator") return ["Project.Creator", "Project.Maintainer", "Project.Member"];
  if (member.role === "maintainer") return ["Project.Maintainer", "Project.Member"];
  return ["Project.Member"];
}
