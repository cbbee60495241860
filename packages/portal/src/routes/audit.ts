/**
 * The audit log for administrators:
 *
 *   GET /audit?since=&until=&actor=&action=&failed=true&limit=   entries, oldest first (the newest `limit`)
 *
 * `since`/`until` are RFC 3339 times; `action` matches itself and its
 * sub-actions (`user` matches `user.state`, `user.register`, …).
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { badRequest, forbidden } from "../errors.ts";
import { routes } from "./declare.ts";

const Entry = Type.Object({
  id: Type.String(),
  at: Type.String(),
  actor: Type.String(),
  action: Type.String(),
  target: Type.String(),
  ok: Type.Boolean(),
  address: Type.String(),
  detail: Type.Optional(Type.String()),
});

function time(v: string | undefined, field: string): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t))
    throw badRequest(`querystring.${field}: '${v}' is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)`, field);
  return t;
}

export const auditRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  routes(app).get(
    "/audit",
    {
      // Signed in and active (the hook); the handler asks for an administrator.
      access: { object: "usage", action: "read", list: true },
      tags: "users",
      summary:
        "The audit log (administrators): sign-ins, account and access changes, who realized and materialized what",
      querystring: Type.Object(
        {
          since: Type.Optional(Type.String({ maxLength: 40 })),
          until: Type.Optional(Type.String({ maxLength: 40 })),
          actor: Type.Optional(Type.String({ maxLength: 64 })),
          action: Type.Optional(Type.String({ maxLength: 64 })),
          failed: Type.Optional(Type.Union([Type.Literal("true"), Type.Literal("false")])),
          limit: Type.Optional(Type.String({ pattern: "^[1-9][0-9]{0,4}$" })),
        },
        { additionalProperties: false },
      ),
      answer: Type.Array(Entry),
    },
    async (req) => {
      if (!req.principal?.user.admin) throw forbidden("the audit log is for portal administrators");
      const q = req.query;
      return ctx.audit.query({
        since: time(q.since, "since"),
        until: time(q.until, "until"),
        actor: q.actor,
        action: q.action,
        failed: q.failed === "true",
        limit: q.limit === undefined ? undefined : Number(q.limit),
      });
    },
  );
};
