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
import { routes } from "./declare.ts";
import { ExperimentParams } from "./experiments.ts";
import { RealizationParams, wireRealization } from "./realizations.ts";

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
  const api = routes(app);
  api.post(
    "/projects/:project/experiments/:experiment/realizations/:realization/lease",
    {
      access: { object: "realization", action: "update" },
      tags: "realizations",
      summary: "Extend an accepted realization's lease, within the policy's maximum counted from its accept",
      params: RealizationParams,
      body: Type.Object(
        { extendSeconds: Type.Integer({ minimum: 60, maximum: 10 * 365 * 86_400, description: "seconds to add" }) },
        { additionalProperties: false },
      ),
      answer: S.Realization,
    },
    async (req) => {
      const { project, experiment, realization } = req.params;
      return wireRealization(
        await ctx.leases.extend(project, experiment, realization, req.principal!.user.name, req.body.extendSeconds),
      );
    },
  );

  api.get(
    "/projects/:project/experiments/:experiment/realizations/:realization/idle",
    {
      access: { object: "realization", action: "read" },
      tags: "realizations",
      summary: "How idle its materialization is, and why it counts as idle (or not)",
      params: RealizationParams,
      answer: Type.Object({
        idleSeconds: Type.Integer(),
        flagged: Type.Boolean(),
        why: Type.String(),
        since: Type.String(),
      }),
    },
    async (req) => {
      const { project, experiment, realization } = req.params;
      const i = await ctx.idle?.({ project, experiment, realization });
      if (i === undefined) throw notFound("materialization", `${realization}.${experiment}.${project}`);
      return i;
    },
  );

  api.get(
    "/projects/:project/experiments/:experiment/lease",
    {
      access: { object: "realization", action: "read" },
      tags: "realizations",
      summary: "The lease default and maximum (seconds) the caller's realizations here get, and which rule sets them",
      params: ExperimentParams,
      answer: Type.Object({
        defaultSeconds: Type.Integer(),
        maxSeconds: Type.Integer(),
        why: Type.String(),
        warnSeconds: Type.Array(Type.Integer()),
      }),
    },
    async (req) => ({
      ...(await ctx.leases.limits(req.params.project, req.principal!.user.name)),
      warnSeconds: ctx.leases.terms.warnSeconds,
    }),
  );

  api.get(
    "/projects/:project/experiments/:experiment/history",
    {
      access: { object: "experiment", action: "read" },
      tags: "experiments",
      summary: "The experiment's history: lease extensions, warnings, expiry and reclaim, idleness",
      params: ExperimentParams,
      answer: Type.Array(HistoryEntry),
    },
    async (req) => readHistory(ctx.store, req.params.project, req.params.experiment),
  );

  api.get(
    "/notifications",
    {
      access: { object: "user", action: "read", list: true },
      tags: "users",
      summary: "The caller's notices, oldest first (after: only those after that id, to follow)",
      querystring: Type.Object(
        { after: Type.Optional(Type.String({ maxLength: 40, pattern: "^[0-9]{15}-[0-9a-f]{8}$" })) },
        { additionalProperties: false },
      ),
      answer: Type.Array(Notice),
    },
    async (req) => listNotices(ctx.store, req.principal!.user.name, req.query.after),
  );
};
