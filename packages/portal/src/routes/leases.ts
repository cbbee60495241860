/**
 * Leases, history and notices:
 *
 *   POST /projects/:p/experiments/:e/realizations/:r/lease   {extendSeconds}  extend within the policy's maximum
 *   GET  /projects/:p/experiments/:e/realizations/:r/idle      how idle its materialization is, and why
 *   GET  /projects/:p/experiments/:e/lease                     the lease limits that apply to the caller there
 *   GET  /projects/:p/experiments/:e/history                   what happened to its realizations, and why
 *   GET  /notifications?after=<id>                             the caller's notices (lease warnings, reclaims, idleness)
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { notFound } from "../errors.ts";
import { readHistory } from "../history.ts";
import { listNotices } from "../notifications.ts";
import * as S from "../schemas.ts";
import { ExperimentParams } from "./experiments.ts";
import { wireRealization } from "./realizations.ts";

const RealizationParams = Type.Object(
  { project: S.Name("project name"), experiment: S.Name("experiment name"), realization: S.Name("realization name") },
  { additionalProperties: false },
);

const HistoryEntry = Type.Object({
  at: Type.String(),
  kind: Type.String(),
  realization: Type.String(),
  by: Type.String(),
  message: Type.String(),
});

const Notice = Type.Object({
  id: Type.String(),
  at: Type.String(),
  kind: Type.String(),
  realization: Type.String(),
  message: Type.String(),
});

export const leaseRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  app.post(
    "/projects/:project/experiments/:experiment/realizations/:realization/lease",
    {
      config: { access: { object: "realization", action: "update" } },
      schema: {
        tags: ["realizations"],
        summary: "Extend an accepted realization's lease, within the policy's maximum counted from its accept",
        params: RealizationParams,
        body: Type.Object(
          { extendSeconds: Type.Integer({ minimum: 60, maximum: 10 * 365 * 86_400, description: "seconds to add" }) },
          { additionalProperties: false },
        ),
        response: { 200: S.Realization, ...S.errors },
      },
    },
    async (req) => {
      const { project, experiment, realization } = req.params;
      return wireRealization(
        await ctx.leases.extend(project, experiment, realization, req.principal!.user.name, req.body.extendSeconds),
      );
    },
  );

  app.get(
    "/projects/:project/experiments/:experiment/realizations/:realization/idle",
    {
      config: { access: { object: "realization", action: "read" } },
      schema: {
        tags: ["realizations"],
        summary: "How idle its materialization is, and why it counts as idle (or not)",
        params: RealizationParams,
        response: {
          200: Type.Object({
            idleSeconds: Type.Integer(),
            flagged: Type.Boolean(),
            why: Type.String(),
            since: Type.String(),
          }),
          ...S.errors,
        },
      },
    },
    async (req) => {
      const { project, experiment, realization } = req.params;
      const i = await ctx.idle?.({ project, experiment, realization });
      if (i === undefined) throw notFound("materialization", `${realization}.${experiment}.${project}`);
      return i;
    },
  );

  app.get(
    "/projects/:project/experiments/:experiment/lease",
    {
      config: { access: { object: "realization", action: "read" } },
      schema: {
        tags: ["realizations"],
        summary: "The lease default and maximum (seconds) the caller's realizations here get, and which rule sets them",
        params: ExperimentParams,
        response: {
          200: Type.Object({
            defaultSeconds: Type.Integer(),
            maxSeconds: Type.Integer(),
            why: Type.String(),
            warnSeconds: Type.Array(Type.Integer()),
          }),
          ...S.errors,
        },
      },
    },
    async (req) => ({
      ...(await ctx.leases.limits(req.params.project, req.principal!.user.name)),
      warnSeconds: ctx.leases.terms.warnSeconds,
    }),
  );

  app.get(
    "/projects/:project/experiments/:experiment/history",
    {
      config: { access: { object: "experiment", action: "read" } },
      schema: {
        tags: ["experiments"],
        summary: "The experiment's history: lease extensions, warnings, expiry and reclaim, idleness",
        params: ExperimentParams,
        response: { 200: Type.Array(HistoryEntry), ...S.errors },
      },
    },
    async (req) => readHistory(ctx.store, req.params.project, req.params.experiment),
  );

  app.get(
    "/notifications",
    {
      config: { access: { object: "user", action: "read", list: true } },
      schema: {
        tags: ["users"],
        summary: "The caller's notices, oldest first (after: only those after that id, to follow)",
        querystring: Type.Object(
          { after: Type.Optional(Type.String({ maxLength: 40, pattern: "^[0-9]{15}-[0-9a-f]{8}$" })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(Notice), ...S.errors },
      },
    },
    async (req) => listNotices(ctx.store, req.principal!.user.name, req.query.after),
  );
};
