/** Resource pools (see pool.ts): administrators decide which projects may use which nodes. */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { Batch, list, readDoc } from "../documents.ts";
import { notFound } from "../errors.ts";
import { keys } from "../objects.ts";
import type { Pool } from "../pool.ts";
import * as S from "../schemas.ts";

const PoolParams = Type.Object({ pool: S.Name("pool name") }, { additionalProperties: false });

export const poolRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const { store } = ctx;

  app.get(
    "/pools",
    {
      config: { access: { object: "pool", action: "read" } },
      schema: { tags: ["resources"], summary: "Resource pools", response: { 200: Type.Array(S.Pool), ...S.errors } },
    },
    async () => list<Pool>(store, keys.pools()),
  );

  app.post(
    "/pools",
    {
      config: { access: { object: "pool", action: "create" } },
      schema: {
        tags: ["resources"],
        summary: "Create a pool; once any pool exists, projects may only use the nodes of their pools",
        body: S.NewPool,
        response: { 201: S.Pool, ...S.errors },
      },
    },
    async (req, reply) => {
      const now = new Date().toISOString();
      const pool: Pool = {
        name: req.body.name,
        description: req.body.description ?? "",
        projects: [...new Set(req.body.projects)].sort(),
        resources: [...new Set(req.body.resources)].sort(),
        created: now,
        updated: now,
      };
      await new Batch()
        .absent(keys.pool(pool.name))
        .put(keys.pool(pool.name), pool)
        .commit(store, `pool ${pool.name} exists; update it instead`);
      return reply.code(201).send(pool);
    },
  );

  app.get(
    "/pools/:pool",
    {
      config: { access: { object: "pool", action: "read" } },
      schema: { tags: ["resources"], params: PoolParams, response: { 200: S.Pool, ...S.errors } },
    },
    async (req) => {
      const doc = await readDoc<Pool>(store, keys.pool(req.params.pool));
      if (doc === undefined) throw notFound("pool", req.params.pool);
      return doc.value;
    },
  );

  app.patch(
    "/pools/:pool",
    {
      config: { access: { object: "pool", action: "update" } },
      schema: { tags: ["resources"], params: PoolParams, body: S.PoolUpdate, response: { 200: S.Pool, ...S.errors } },
    },
    async (req) => {
      const k = keys.pool(req.params.pool);
      const doc = await readDoc<Pool>(store, k);
      if (doc === undefined) throw notFound("pool", req.params.pool);
      const next: Pool = {
        ...doc.value,
        ...(req.body.description !== undefined ? { description: req.body.description } : {}),
        ...(req.body.projects ? { projects: [...new Set(req.body.projects)].sort() } : {}),
        ...(req.body.resources ? { resources: [...new Set(req.body.resources)].sort() } : {}),
        updated: new Date().toISOString(),
      };
      await new Batch()
        .unchanged(k, doc.modRevision)
        .put(k, next)
        .commit(store, "the pool changed meanwhile; try again");
      return next;
    },
  );

  app.delete(
    "/pools/:pool",
    {
      config: { access: { object: "pool", action: "delete" } },
      schema: { tags: ["resources"], params: PoolParams, response: { 204: Type.Null(), ...S.errors } },
    },
    async (req, reply) => {
      if (!(await store.delete(keys.pool(req.params.pool)))) throw notFound("pool", req.params.pool);
      return reply.code(204).send(null);
    },
  );
};
