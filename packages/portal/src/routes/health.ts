/**
 * The operations view for administrators:
 *
 *   GET /health/detail   replicas, store, facilities and certificates, realizations, materializations
 *                        (age, delivery, idleness), leases running out, usage per project and user, warnings
 *
 * (`GET /health`, public, stays the load balancer's liveness answer.)
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { forbidden } from "../errors.ts";
import { portalHealth } from "../health.ts";
import * as S from "../schemas.ts";

export const healthRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  app.get(
    "/health/detail",
    {
      // Signed in and active (the hook); the handler asks for an administrator.
      config: { access: { object: "usage", action: "read", list: true } },
      schema: {
        tags: ["health"],
        summary: "Every component's health (administrators): replicas, store, facilities, materializations, usage",
        response: { 200: Type.Unknown({ description: "PortalHealth (health.ts)" }), ...S.errors },
      },
    },
    async (req) => {
      if (!req.principal?.user.admin) throw forbidden("the operations view is for portal administrators");
      return portalHealth(ctx.store, ctx.replica.record, ctx.idle, Date.now(), ctx.facilityHealth);
    },
  );
};
