/** Realizations: realize a revision, accept, reject, relinquish. */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { listingRoles } from "../access.ts";
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
import { allows } from "../policy.ts";
import { listRealizations, readRealization } from "../realization-record.ts";
import * as S from "../schemas.ts";
import { routes } from "./declare.ts";
import { ExperimentParams } from "./experiments.ts";

export const RealizationParams = Type.Object(
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
  const api = routes(app);
  const tags = "realizations";

  api.get(
    "/realizations",
    {
      access: { object: "realization", action: "read", list: true },
      tags,
      summary: "Realizations in every project the caller belongs to (all of them for administrators)",
      answer: Type.Array(S.Realization),
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
        const roles = listingRoles(me, mine.get(r.project));
        if (e?.creator === me.name) roles.add("Experiment.Creator");
        if (allows(ctx.policy, "realization", e?.visibility ?? "private", "read", roles)) out.push(wireRealization(r));
      }
      return out;
    },
  );

  api.get(
    "/projects/:project/experiments/:experiment/realizations",
    {
      access: { object: "realization", action: "read" },
      tags,
      params: ExperimentParams,
      answer: Type.Array(S.Realization),
    },
    async (req) =>
      (await listRealizations(store, keys.realizations(req.params.project, req.params.experiment))).map(
        wireRealization,
      ),
  );

  api.post(
    "/projects/:project/experiments/:experiment/realizations",
    {
      access: { object: "realization", action: "create" },
      tags,
      summary:
        "Realize a revision (default: the latest). Success reserves resources until accepted or the accept timeout; failure keeps the diagnosis",
      params: ExperimentParams,
      body: S.NewRealization,
      answer: S.Realization,
      status: 201,
    },
    async (req) => {
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
      return closest ? { ...wireRealization(record), closest } : wireRealization(record);
    },
  );

  api.get(
    "/projects/:project/experiments/:experiment/realizations/:realization",
    { access: { object: "realization", action: "read" }, tags, params: RealizationParams, answer: S.Realization },
    async (req) => {
      const { project, experiment, realization } = req.params;
      const r = await readRealization(store, project, experiment, realization);
      if (r === undefined) throw await realizer.missing(project, experiment, realization);
      return wireRealization(r.record);
    },
  );

  api.post(
    "/projects/:project/experiments/:experiment/realizations/:realization/accept",
    {
      access: { object: "realization", action: "update" },
      tags,
      summary: "Accept a pending realization: its resources are held until relinquished",
      params: RealizationParams,
      answer: S.Realization,
    },
    async (req) => {
      const { project, experiment, realization } = req.params;
      return wireRealization(await realizer.accept(project, experiment, realization));
    },
  );

  api.post(
    "/projects/:project/experiments/:experiment/realizations/:realization/reject",
    {
      access: { object: "realization", action: "update" },
      tags,
      summary: "Reject a pending realization: releases its resources",
      params: RealizationParams,
      answer: null,
    },
    async (req) => {
      const { project, experiment, realization } = req.params;
      const r = await read<StoredRealization>(store, keys.realization(project, experiment, realization));
      if (r === undefined) throw await realizer.missing(project, experiment, realization);
      if (r.state === "accepted") throw conflict(`realization ${realizationId(r)} is accepted; relinquish it instead`);
      await realizer.release(project, experiment, realization);
    },
  );

  api.delete(
    "/projects/:project/experiments/:experiment/realizations/:realization",
    {
      access: { object: "realization", action: "delete" },
      tags,
      summary: "Relinquish a realization: releases its resources and forgets it",
      params: RealizationParams,
      answer: null,
    },
    async (req) => {
      const { project, experiment, realization } = req.params;
      if (!(await realizer.release(project, experiment, realization))) {
        throw await realizer.missing(project, experiment, realization);
      }
    },
  );
};
