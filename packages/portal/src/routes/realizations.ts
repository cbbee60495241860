/** Realizations: realize a revision, accept, reject, relinquish. */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { projectRoles } from "../access.ts";
import type { PortalContext } from "../context.ts";
import { list, read } from "../documents.ts";
import { conflict, notFound, PortalError } from "../errors.ts";
import {
  type Experiment,
  keys,
  type Member,
  type RealizationRecord,
  type RealizationSummary,
  realizationId,
  type StoredRealization,
} from "../objects.ts";
import { allows, type Role } from "../policy.ts";
import { listRealizations, readRealization } from "../realization-record.ts";
import * as S from "../schemas.ts";
import { ExperimentParams } from "./experiments.ts";

const RealizationParams = Type.Object(
  { project: S.Name("project name"), experiment: S.Name("experiment name"), realization: S.Name("realization name") },
  { additionalProperties: false },
);

/** A realization as the API shows it: the embedding only in full views, and only when there is one (not for failed realizations). */
export function wireRealization(r: RealizationSummary | RealizationRecord) {
  const { realization, ...rest } = r as RealizationSummary & { realization?: RealizationRecord["realization"] };
  return realization === undefined || realization === null
    ? { ...rest, id: realizationId(r) }
    : { ...rest, id: realizationId(r), realization };
}

export const realizationRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const { store, realizer } = ctx;

  app.get(
    "/realizations",
    {
      config: { access: { object: "realization", action: "read", list: true } },
      schema: {
        tags: ["realizations"],
        summary: "Realizations in every project the caller belongs to (all of them for administrators)",
        response: { 200: Type.Array(S.Realization), ...S.errors },
      },
    },
    async (req) => {
      const me = req.principal!.user;
      const all = await listRealizations(store, keys.allRealizations());
      const mine = new Map((await list<Member>(store, keys.memberships(me.name))).map((m) => [m.project, m]));
      const exps = new Map<string, Experiment | undefined>();
      const out = [];
      for (const r of all) {
        const ek = `${r.project}/${r.experiment}`;
        if (!exps.has(ek)) exps.set(ek, await read<Experiment>(store, keys.experiment(r.project, r.experiment)));
        const e = exps.get(ek);
        const roles = new Set<Role>(["Any.Any", ...projectRoles(mine.get(r.project))]);
        if (me.admin) roles.add("Portal.Admin");
        if (e?.creator === me.name) roles.add("Experiment.Creator");
        if (allows(ctx.policy, "realization", e?.visibility ?? "private", "read", roles)) out.push(wireRealization(r));
      }
      return out;
    },
  );

  app.get(
    "/projects/:project/experiments/:experiment/realizations",
    {
      config: { access: { object: "realization", action: "read" } },
      schema: {
        tags: ["realizations"],
        params: ExperimentParams,
        response: { 200: Type.Array(S.Realization), ...S.errors },
      },
    },
    async (req) =>
      (await listRealizations(store, keys.realizations(req.params.project, req.params.experiment))).map(
        wireRealization,
      ),
  );

  app.post(
    "/projects/:project/experiments/:experiment/realizations",
    {
      config: { access: { object: "realization", action: "create" } },
      schema: {
        tags: ["realizations"],
        summary:
          "Realize a revision (default: the latest). Success reserves resources until accepted or the accept timeout; failure keeps the diagnosis",
        params: ExperimentParams,
        body: S.NewRealization,
        response: { 201: S.Realization, ...S.errors },
      },
    },
    async (req, reply) => {
      const exp = req.experiment!;
      const revision = req.body.revision ?? exp.revisions;
      if (revision === 0) {
        throw new PortalError(
          "unprocessable",
          `experiment ${exp.name}.${exp.project} has no revisions; push a model first`,
        );
      }
      if (revision > exp.revisions) throw notFound("revision", `${revision} of ${exp.name}.${exp.project}`);
      const r = await realizer.realize({
        project: exp.project,
        experiment: exp.name,
        name: req.body.name,
        revision,
        user: req.principal!.user.name,
        accept: req.body.accept,
        bestEffort: req.body.bestEffort,
        leaseSeconds: await ctx.leases.leaseFor(exp.project, req.principal!.user.name, req.body.durationSeconds),
      });
      const { closest, ...record } = r;
      return reply.code(201).send(closest ? { ...wireRealization(record), closest } : wireRealization(record));
    },
  );

  app.get(
    "/projects/:project/experiments/:experiment/realizations/:realization",
    {
      config: { access: { object: "realization", action: "read" } },
      schema: { tags: ["realizations"], params: RealizationParams, response: { 200: S.Realization, ...S.errors } },
    },
    async (req) => {
      const { project, experiment, realization } = req.params;
      const r = await readRealization(store, project, experiment, realization);
      if (r === undefined) throw await realizer.missing(project, experiment, realization);
      return wireRealization(r.record);
    },
  );

  app.post(
    "/projects/:project/experiments/:experiment/realizations/:realization/accept",
    {
      config: { access: { object: "realization", action: "update" } },
      schema: {
        tags: ["realizations"],
        summary: "Accept a pending realization: its resources are held until relinquished",
        params: RealizationParams,
        response: { 200: S.Realization, ...S.errors },
      },
    },
    async (req) => {
      const { project, experiment, realization } = req.params;
      return wireRealization(await realizer.accept(project, experiment, realization));
    },
  );

  app.post(
    "/projects/:project/experiments/:experiment/realizations/:realization/reject",
    {
      config: { access: { object: "realization", action: "update" } },
      schema: {
        tags: ["realizations"],
        summary: "Reject a pending realization: releases its resources",
        params: RealizationParams,
        response: { 204: Type.Null(), ...S.errors },
      },
    },
    async (req, reply) => {
      const { project, experiment, realization } = req.params;
      const r = await read<StoredRealization>(store, keys.realization(project, experiment, realization));
      if (r === undefined) throw await realizer.missing(project, experiment, realization);
      if (r.state === "accepted") throw conflict(`realization ${realizationId(r)} is accepted; relinquish it instead`);
      await realizer.release(project, experiment, realization);
      return reply.code(204).send(null);
    },
  );

  app.delete(
    "/projects/:project/experiments/:experiment/realizations/:realization",
    {
      config: { access: { object: "realization", action: "delete" } },
      schema: {
        tags: ["realizations"],
        summary: "Relinquish a realization: releases its resources and forgets it",
        params: RealizationParams,
        response: { 204: Type.Null(), ...S.errors },
      },
    },
    async (req, reply) => {
      const { project, experiment, realization } = req.params;
      if (!(await realizer.release(project, experiment, realization))) {
        throw await realizer.missing(project, experiment, realization);
      }
      return reply.code(204).send(null);
    },
  );
};
