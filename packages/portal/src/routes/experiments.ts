/** Experiments, their revision stack (push), and compile. */
import { createHash } from "node:crypto";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply } from "fastify";
import Type from "typebox";
import { CompileQueueFull } from "../compile-pool.ts";
import type { Compiled, CompileJob } from "../compiler.ts";
import type { PortalContext } from "../context.ts";
import { Batch, LOST_RACE, list, patchDoc, read, readDoc, retryBatch } from "../documents.ts";
import { conflict, notFound, PortalError } from "../errors.ts";
import { type Experiment, keys, type Revision } from "../objects.ts";
import { allows, type Role } from "../policy.ts";
import { chargeRevision, refundExperiment } from "../quota.ts";
import { deleteRevisionBodies, encodedBytes, readRevisionBody, revisionBodyOps } from "../revision-body.ts";
import * as S from "../schemas.ts";
import { routes } from "./declare.ts";

const ProjectParams = Type.Object({ project: S.Name("project name") }, { additionalProperties: false });
export const ExperimentParams = Type.Object(
  { project: S.Name("project name"), experiment: S.Name("experiment name") },
  { additionalProperties: false },
);
const RevisionParams = Type.Object(
  {
    project: S.Name("project name"),
    experiment: S.Name("experiment name"),
    revision: Type.String({ pattern: "^[1-9][0-9]{0,7}$", description: "revision number" }),
  },
  { additionalProperties: false },
);

export const experimentRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const { store } = ctx;
  const api = routes(app);
  const tags = "experiments";
  /** A model to compile (push or compile): its source, language and file name. */
  const Model = Type.Object(
    { source: Type.String({ maxLength: ctx.config.maxModelBytes }), lang: S.Lang, filename: Type.Optional(S.Filename) },
    { additionalProperties: false },
  );
  const bodyLimit = ctx.config.maxModelBytes * 2 + 64 * 1024;

  /** Compiles on the pool; a full queue is a 429 with Retry-After, never a failed compile. */
  const compile = async (user: string, job: Omit<CompileJob, "timeoutMs">, reply: FastifyReply) => {
    try {
      return await ctx.compiles.compile(user, job);
    } catch (e) {
      if (!(e instanceof CompileQueueFull)) throw e;
      reply.header("retry-after", String(e.retryAfterSeconds));
      throw new PortalError("too_many_requests", e.message);
    }
  };

  api.get(
    "/projects/:project/experiments",
    {
      access: { object: "project", action: "read" },
      tags,
      summary: "Experiments of a project the caller may see",
      params: ProjectParams,
      answer: Type.Array(S.Experiment),
    },
    async (req) => {
      const me = req.principal!.user.name;
      const exps = await list<Experiment>(store, keys.experiments(req.params.project));
      return exps.filter((e) => {
        const roles = new Set<Role>(req.roles);
        if (e.creator === me) roles.add("Experiment.Creator");
        return allows(ctx.policy, "experiment", e.visibility, "read", roles);
      });
    },
  );

  api.post(
    "/projects/:project/experiments",
    {
      access: { object: "experiment", action: "create" },
      tags,
      params: ProjectParams,
      body: S.NewExperiment,
      answer: S.Experiment,
      status: 201,
    },
    async (req) => {
      const e: Experiment = {
        name: req.body.name,
        project: req.params.project,
        description: req.body.description ?? "",
        visibility: req.body.visibility ?? "private",
        creator: req.principal!.user.name,
        created: new Date().toISOString(),
        revisions: 0,
      };
      await new Batch()
        .absent(keys.experiment(e.project, e.name))
        .put(keys.experiment(e.project, e.name), e)
        .commit(store, `experiment ${e.name}.${e.project} exists; choose another name`);
      return e;
    },
  );

  api.get(
    "/projects/:project/experiments/:experiment",
    { access: { object: "experiment", action: "read" }, tags, params: ExperimentParams, answer: S.Experiment },
    async (req) => req.experiment!,
  );

  api.patch(
    "/projects/:project/experiments/:experiment",
    {
      access: { object: "experiment", action: "update", fields: { visibility: "visibility" } },
      tags,
      params: ExperimentParams,
      body: S.ExperimentUpdate,
      answer: S.Experiment,
    },
    async (req) => {
      const { project, experiment } = req.params;
      const patch = { kind: "experiment", name: `${experiment}.${project}` };
      const k = keys.experiment(project, experiment);
      return (await patchDoc<Experiment>(store, k, patch, (e) => ({ ...e, ...req.body }))).after;
    },
  );

  api.delete(
    "/projects/:project/experiments/:experiment",
    { access: { object: "experiment", action: "delete" }, tags, params: ExperimentParams, answer: null },
    async (req) => {
      const { project, experiment } = req.params;
      const rlz = await store.range(keys.realizations(project, experiment), { limit: 1 });
      if (rlz.length > 0) throw conflict(`experiment ${experiment}.${project} has realizations; relinquish them first`);
      // Pushes change the experiment: the compare on it keeps a push from slipping in unrefunded.
      await retryBatch("the experiment is being pushed to; try again", 8, async () => {
        const ekey = keys.experiment(project, experiment);
        const doc = await readDoc<Experiment>(store, ekey);
        if (doc === undefined) throw notFound("experiment", `${experiment}.${project}`);
        const batch = new Batch()
          .unchanged(ekey, doc.modRevision)
          .delete(ekey)
          .deletePrefix(keys.history(project, experiment))
          .deletePrefix(keys.revisions(project, experiment))
          .add(deleteRevisionBodies(project, experiment));
        await refundExperiment(store, batch, project, experiment);
        return (await batch.tryCommitSized(store, `experiment ${experiment}.${project}`)) || LOST_RACE;
      });
    },
  );

  api.get(
    "/projects/:project/experiments/:experiment/revisions",
    {
      access: { object: "revision", action: "read" },
      tags: "revisions",
      params: ExperimentParams,
      answer: Type.Array(S.Revision),
    },
    async (req) => list<Revision>(store, keys.revisions(req.params.project, req.params.experiment)),
  );

  api.post(
    "/projects/:project/experiments/:experiment/revisions",
    {
      access: { object: "revision", action: "create" },
      tags: "revisions",
      summary:
        "Push a model: compiles it and adds a revision. Every push takes the next number, also one that does not compile (kept with its errors, status error; it cannot be realized)",
      params: ExperimentParams,
      body: Model,
      bodyLimit,
      answer: S.Revision,
      status: 201,
    },
    async (req, reply) => {
      const { project, experiment } = req.params;
      const compiled: Compiled = await compile(req.principal!.user.name, req.body, reply);
      const sourceHash = createHash("sha256").update(req.body.source).digest("hex");
      const ekey = keys.experiment(project, experiment);
      const putBody = revisionBodyOps(compiled.body);
      const bodyBytes = encodedBytes(compiled.body);
      // The revision number is the experiment's counter + 1; the CAS on the experiment makes concurrent pushes take turns.
      const rev = await retryBatch("too many concurrent pushes; try again", 32, async () => {
        const doc = await readDoc<Experiment>(store, ekey);
        if (doc === undefined) throw notFound("experiment", `${experiment}.${project}`);
        const n = doc.value.revisions + 1;
        const rev: Revision = {
          project,
          experiment,
          number: n,
          lang: req.body.lang,
          sourceHash,
          sourceBytes: Buffer.byteLength(req.body.source),
          status: compiled.xirJson === null ? "error" : "compiled",
          errors: compiled.errors,
          xirHash: compiled.xirHash,
          nodes: compiled.nodes,
          links: compiled.links,
          pushedBy: req.principal!.user.name,
          created: new Date().toISOString(),
        };
        const batch = new Batch()
          .unchanged(ekey, doc.modRevision)
          .put(ekey, { ...doc.value, revisions: n })
          .put(keys.revision(project, experiment, n), rev)
          .add(putBody(project, experiment, n));
        const bytes = bodyBytes + Buffer.byteLength(JSON.stringify(rev));
        await chargeRevision(store, batch, ctx.quota, rev.pushedBy, { project, experiment, n }, bytes);
        const ok = await batch.tryCommitSized(store, `revision ${n} of ${experiment}.${project}`);
        return ok ? rev : LOST_RACE;
      });
      return rev;
    },
  );

  api.get(
    "/projects/:project/experiments/:experiment/revisions/:revision",
    {
      access: { object: "revision", action: "read" },
      tags: "revisions",
      summary: "One revision with its source and compiled XIR",
      params: RevisionParams,
      answer: S.RevisionDetail,
    },
    async (req) => {
      const { project, experiment } = req.params;
      const n = Number(req.params.revision);
      const [rev, body] = await Promise.all([
        read<Revision>(store, keys.revision(project, experiment, n)),
        readRevisionBody(store, project, experiment, n),
      ]);
      if (rev === undefined || body === undefined) throw notFound("revision", `${n} of ${experiment}.${project}`);
      return { revision: rev, source: body.source, xir: body.xir };
    },
  );

  api.post(
    "/compile",
    {
      access: { object: "compile", action: "create" },
      tags: "revisions",
      summary: "Compile a model to XIR without storing anything",
      body: Model,
      bodyLimit,
      answer: S.CompileResult,
    },
    async (req, reply) => {
      const c = await compile(req.principal!.user.name, req.body, reply);
      // The XIR is sent as the compile thread wrote it: no parse and re-serialization of megabytes here.
      const status = c.xirJson === null ? "error" : "compiled";
      return reply
        .type("application/json; charset=utf-8")
        .send(`{"status":"${status}","errors":${JSON.stringify(c.errors)},"xir":${c.xirJson ?? "null"}}` as never);
    },
  );
};
