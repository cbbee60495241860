/** A user's SSH public keys and API tokens. */
import { createHash } from "node:crypto";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { Batch, list, read } from "../documents.ts";
import { badRequest, notFound } from "../errors.ts";
import { type ApiToken, keys, type SshKey, type User } from "../objects.ts";
import * as S from "../schemas.ts";

const UserParams = Type.Object({ user: S.Name("user name") }, { additionalProperties: false });

function publicToken(t: ApiToken) {
  const { hash: _, ...rest } = t;
  return rest;
}

export const credentialRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const { store } = ctx;
  const mustExist = async (user: string): Promise<User> => {
    const u = await read<User>(store, keys.user(user));
    if (u === undefined) throw notFound("user", user);
    return u;
  };

  app.get(
    "/users/:user/keys",
    {
      config: { access: { object: "key", action: "read" } },
      schema: { tags: ["keys"], params: UserParams, response: { 200: Type.Array(S.SshKey), ...S.errors } },
    },
    async (req) => list<SshKey>(store, keys.sshKeys(req.params.user)),
  );

  app.post(
    "/users/:user/keys",
    {
      config: { access: { object: "key", action: "create" } },
      schema: { tags: ["keys"], params: UserParams, body: S.NewSshKey, response: { 201: S.SshKey, ...S.errors } },
    },
    async (req, reply) => {
      await mustExist(req.params.user);
      const blob = req.body.key.split(" ")[1] as string;
      const raw = Buffer.from(blob, "base64");
      if (raw.length < 32) throw badRequest("key: the key data is too short to be an SSH public key", "key");
      const fingerprint = createHash("sha256").update(raw).digest("base64url");
      const rec: SshKey = {
        user: req.params.user,
        fingerprint,
        key: req.body.key.trim(),
        created: new Date().toISOString(),
      };
      await new Batch()
        .absent(keys.sshKey(req.params.user, fingerprint))
        .put(keys.sshKey(req.params.user, fingerprint), rec)
        .commit(store, "this key is already registered");
      return reply.code(201).send(rec);
    },
  );

  app.delete(
    "/users/:user/keys/:fingerprint",
    {
      config: { access: { object: "key", action: "delete" } },
      schema: {
        tags: ["keys"],
        params: Type.Object(
          { user: S.Name("user name"), fingerprint: Type.String({ pattern: "^[A-Za-z0-9_-]{43}$" }) },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null(), ...S.errors },
      },
    },
    async (req, reply) => {
      if (!(await store.delete(keys.sshKey(req.params.user, req.params.fingerprint)))) {
        throw notFound("key", req.params.fingerprint);
      }
      return reply.code(204).send(null);
    },
  );

  app.get(
    "/users/:user/tokens",
    {
      config: { access: { object: "token", action: "read" } },
      schema: { tags: ["tokens"], params: UserParams, response: { 200: Type.Array(S.Token), ...S.errors } },
    },
    async (req) =>
      (await list<ApiToken>(store, keys.tokens())).filter((t) => t.user === req.params.user).map(publicToken),
  );

  app.post(
    "/users/:user/tokens",
    {
      config: { access: { object: "token", action: "create" } },
      schema: {
        tags: ["tokens"],
        summary: "Create an API token; the secret is in the answer only",
        params: UserParams,
        body: S.NewToken,
        response: { 201: S.IssuedToken, ...S.errors },
      },
    },
    async (req, reply) => {
      const user = await mustExist(req.params.user);
      const issued = await ctx.identity.issueToken(user, req.body.name, req.body.ttlSeconds ?? null);
      return reply.code(201).send({ token: issued.token, record: publicToken(issued.record) });
    },
  );

  app.delete(
    "/users/:user/tokens/:id",
    {
      config: { access: { object: "token", action: "delete" } },
      schema: {
        tags: ["tokens"],
        params: Type.Object(
          { user: S.Name("user name"), id: Type.String({ pattern: "^[a-z0-9]{12}$" }) },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null(), ...S.errors },
      },
    },
    async (req, reply) => {
      const t = await read<ApiToken>(store, keys.token(req.params.id));
      if (t === undefined || t.user !== req.params.user) throw notFound("token", req.params.id);
      await new Batch().delete(keys.token(t.id)).commit(store, "conflict");
      return reply.code(204).send(null);
    },
  );
};
