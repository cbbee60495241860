/**
 * Materializations API, a self-contained Fastify plugin: register it with the
 * portal context and a Materializer.
 *
 *   POST   /projects/:project/experiments/:experiment/realizations/:realization/materialization   202
 *   GET    …/materialization   status with per-facility, per-node and per-link detail
 *   DELETE …/materialization   dematerialize (202; completes in the background)
 *
 * Access follows the realization's policy: materialize and dematerialize need
 * `realization update`, status needs `realization read`.
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyPluginAsync } from "fastify";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { PortalError } from "../errors.ts";
import * as S from "../schemas.ts";
import { MaterializationError, Materializer, type MaterializerOptions } from "./materializer.ts";

const Params = Type.Object(
  { project: S.Name("project name"), experiment: S.Name("experiment name"), realization: S.Name("realization name") },
  { additionalProperties: false },
);

const Part = Type.Object({
  facility: Type.String(),
  want: Type.String(),
  delivered: Type.Boolean(),
  attempts: Type.Number(),
  lastError: Type.Optional(Type.String()),
  nextAttempt: Type.Optional(Type.String()),
  resources: Type.Array(Type.String()),
  fragments: Type.Number(),
});

const Record_ = Type.Object({
  id: Type.String(),
  project: Type.String(),
  experiment: Type.String(),
  realization: Type.String(),
  state: Type.String(),
  creator: Type.String(),
  created: Type.String(),
  updated: Type.String(),
  dematerializeAt: Type.Optional(Type.String()),
  facilities: Type.Array(Part),
});

const Status = Type.Object({
  id: Type.String(),
  project: Type.String(),
  experiment: Type.String(),
  realization: Type.String(),
  status: Type.String(),
  actions: Type.Number(),
  complete: Type.Number(),
  facilities: Type.Array(Type.Unknown()),
  nodes: Type.Array(Type.Unknown()),
  links: Type.Array(Type.Unknown()),
});

function portalError(err: unknown): never {
  if (err instanceof MaterializationError) throw new PortalError(err.code, err.message);
  throw err;
}

export const materializationRoutes: FastifyPluginAsyncTypebox<{
  ctx: PortalContext;
  materializer: Materializer;
}> = async (app, { materializer }) => {
  const path = "/projects/:project/experiments/:experiment/realizations/:realization/materialization";

  app.post(
    path,
    {
      config: { access: { object: "realization", action: "update" } },
      schema: {
        tags: ["materializations"],
        summary: "Materialize an accepted realization (at most one materialization per realization)",
        params: Params,
        response: { 202: Record_, ...S.errors },
      },
    },
    async (req, reply) => {
      const { project, experiment, realization } = req.params;
      const m = await materializer
        .create(project, experiment, realization, req.principal!.user.name)
        .catch(portalError);
      return reply.code(202).send(m);
    },
  );

  app.get(
    path,
    {
      config: { access: { object: "realization", action: "read" } },
      schema: {
        tags: ["materializations"],
        summary: "Materialization status: per facility (errors, retries, reachability), per node and per link",
        params: Params,
        response: { 200: Status, ...S.errors },
      },
    },
    async (req) => {
      const { project, experiment, realization } = req.params;
      return materializer.status(project, experiment, realization).catch(portalError);
    },
  );

  app.delete(
    path,
    {
      config: { access: { object: "realization", action: "update" } },
      schema: {
        tags: ["materializations"],
        summary: "Dematerialize; always completes, in the background",
        params: Params,
        response: { 202: Record_, ...S.errors },
      },
    },
    async (req, reply) => {
      const { project, experiment, realization } = req.params;
      return reply
        .code(202)
        .send(await materializer.dematerialize(project, experiment, realization).catch(portalError));
    },
  );
};

/**
 * The plugin in the portal's `plugins` form: builds its Materializer on the
 * portal's store, resumes undelivered work, and stops its timers on close.
 *
 *   startPortal({ ..., plugins: [materializationPlugin({ connect: credentialsConnector(dir) })] })
 */
export function materializationPlugin(
  opts: Omit<MaterializerOptions, "store">,
): FastifyPluginAsync<{ ctx: PortalContext }> {
  return async (app, { ctx }) => {
    const materializer = new Materializer({ ...opts, store: ctx.store });
    app.addHook("onClose", async () => materializer.close());
    await app.register(materializationRoutes, { ctx, materializer });
    await materializer.resume();
  };
}
