/**
 * How a portal route is declared: its schemas and access rule first, then the handler.
 *
 *   const api = routes(app);
 *   api.get("/pools/:pool", { access: { object: "pool", action: "read" }, tags: "resources", params, answer: S.Pool },
 *     async (req) => …);
 *
 * What every route said again is said here once: the rule goes in the route's config (where
 * access.ts looks for it), the standard error answers join the OpenAPI document, and the answer's
 * status is set from the declaration: 200, or `status` (201 for creations, 202 for work accepted),
 * or 204 with an empty body when `answer` is null. Handlers return the answer (or the reply, when
 * they send something else themselves).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import type { Static, TSchema } from "typebox";
import Type from "typebox";
import type { AccessRule } from "../access.ts";
import * as S from "../schemas.ts";

type In<T> = T extends TSchema ? Static<T> : unknown;

export interface Declaration<P, Q, B, A extends TSchema | null> {
  access: AccessRule;
  /** The OpenAPI tag the route is listed under. */
  tags: string;
  summary?: string;
  params?: P;
  querystring?: Q;
  body?: B;
  /** Bytes of body accepted (Fastify's default, 1 MiB, without). */
  bodyLimit?: number;
  /** The answer's schema; null: an empty 204. */
  answer: A;
  /** The answer's status when it is not 200. */
  status?: 201 | 202;
  /** More error answers than the standard ones (S.errors), by status. */
  errors?: Record<number, TSchema>;
}

export type Handler<P, Q, B, A extends TSchema | null> = (
  req: FastifyRequest<{ Params: In<P>; Querystring: In<Q>; Body: In<B> }>,
  reply: FastifyReply,
) => A extends TSchema ? Promise<Static<A> | FastifyReply> : Promise<void>;

type Declare = <
  A extends TSchema | null,
  P extends TSchema | undefined = undefined,
  Q extends TSchema | undefined = undefined,
  B extends TSchema | undefined = undefined,
>(
  url: string,
  declaration: Declaration<P, Q, B, A>,
  handler: Handler<P, Q, B, A>,
) => void;

/** `app`'s routes as declarations: `get`, `post`, `put`, `patch`, `delete`. */
export function routes(app: FastifyInstance): Record<"get" | "post" | "put" | "patch" | "delete", Declare> {
  const declare =
    (method: HTTPMethods): Declare =>
    (url, d, handler) => {
      const status = d.answer === null ? 204 : (d.status ?? 200);
      app.route({
        method,
        url,
        config: { access: d.access },
        ...(d.bodyLimit === undefined ? {} : { bodyLimit: d.bodyLimit }),
        schema: {
          tags: [d.tags],
          ...(d.summary === undefined ? {} : { summary: d.summary }),
          ...(d.params === undefined ? {} : { params: d.params }),
          ...(d.querystring === undefined ? {} : { querystring: d.querystring }),
          ...(d.body === undefined ? {} : { body: d.body }),
          response: { [status]: d.answer ?? Type.Null(), ...S.errors, ...d.errors },
        },
        handler: async (req, reply) => {
          const answer = await handler(req as Parameters<typeof handler>[0], reply);
          if (answer === reply) return reply;
          reply.code(status);
          return status === 204 ? reply.send(null) : answer;
        },
      });
    };
  return {
    get: declare("GET"),
    post: declare("POST"),
    put: declare("PUT"),
    patch: declare("PATCH"),
    delete: declare("DELETE"),
  };
}
