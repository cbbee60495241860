/** Resource pools (see pool.ts): administrators decide which projects may use which nodes. */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { Batch, list, patchDoc, readFound } from "../documents.ts";
import { notFound } from "../errors.ts";
import { keys } from "../objects.ts";
import type { Pool } from "../pool.ts";
import * as S from "../schemas.ts";
import { routes } from "./declare.ts";

const PoolParams = Type.Object({ pool: S.Name("pool name") }, { additionalProperties: false });
const tags = "resources";

export const poolRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const { store } = ctx;
  const api = routes(app);

  api.get(
    "/pools",
    { access: { object: "pool", action: "read" }, tags, summary: "Resource pools", answer: Type.Array(S.Pool) },
    async () => list<Pool>(store, keys.pools()),
  );

  api.post(
    "/pools",
    {
      access: { object: "pool", action: "create" },
      tags,
      summary: "Create a pool; once any pool exists, projects may only use the nodes of their pools",
      body: S.NewPool,
      answer: S.Pool,
      status: 201,
    },
    async (req) => {
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
      return pool;
    },
  );

  api.get(
    "/pools/:pool",
    { access: { object: "pool", action: "read" }, tags, params: PoolParams, answer: S.Pool },
    async (req) => readFound<Pool>(store, keys.pool(req.params.pool), "pool", req.params.pool),
  );

  api.patch(
    "/pools/:pool",
    { access: { object: "pool", action: "update" }, tags, params: PoolParams, body: S.PoolUpdate, answer: S.Pool },
    async (req) => {
      const { description, projects, resources } = req.body;
      const { after } = await patchDoc<Pool>(
        store,
        keys.pool(req.params.pool),
        { kind: "pool", name: req.params.pool },
        (p) => ({
          ...p,
          ...(description !== undefined ? { description } : {}),
          ...(projects ? { projects: [...new Set(projects)].sort() } : {}),
          ...(resources ? { resources: [...new Set(resources)].sort() } : {}),
          updated: new Date().toISOString(),
        }),
      );
      return after;
    },
  );

  api.delete(
    "/pools/:pool",
    { access: { object: "pool", action: "delete" }, tags, params: PoolParams, answer: null },
    async (req) => {
      if (!(await store.delete(keys.pool(req.params.pool)))) throw notFound("pool", req.params.pool);
    },
  );
};
