/** A user's SSH public keys and API tokens. */
import { createHash } from "node:crypto";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { Batch, list, read, readFound } from "../documents.ts";
import { badRequest, notFound } from "../errors.ts";
import { type ApiToken, keys, type SshKey, type User } from "../objects.ts";
import * as S from "../schemas.ts";
import { routes } from "./declare.ts";

const UserParams = Type.Object({ user: S.Name("user name") }, { additionalProperties: false });

function publicToken(t: ApiToken) {
  const { hash: _, ...rest } = t;
  return rest;
}

export const credentialRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const { store } = ctx;
  const api = routes(app);
  const mustExist = (user: string) => readFound<User>(store, keys.user(user), "user", user);

  api.get(
    "/users/:user/keys",
    { access: { object: "key", action: "read" }, tags: "keys", params: UserParams, answer: Type.Array(S.SshKey) },
    async (req) => list<SshKey>(store, keys.sshKeys(req.params.user)),
  );

  api.post(
    "/users/:user/keys",
    {
      access: { object: "key", action: "create" },
      tags: "keys",
      params: UserParams,
      body: S.NewSshKey,
      answer: S.SshKey,
      status: 201,
    },
    async (req) => {
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
      return rec;
    },
  );

  api.delete(
    "/users/:user/keys/:fingerprint",
    {
      access: { object: "key", action: "delete" },
      tags: "keys",
      params: Type.Object(
        { user: S.Name("user name"), fingerprint: Type.String({ pattern: "^[A-Za-z0-9_-]{43}$" }) },
        { additionalProperties: false },
      ),
      answer: null,
    },
    async (req) => {
      if (!(await store.delete(keys.sshKey(req.params.user, req.params.fingerprint)))) {
        throw notFound("key", req.params.fingerprint);
      }
    },
  );

  api.get(
    "/users/:user/tokens",
    { access: { object: "token", action: "read" }, tags: "tokens", params: UserParams, answer: Type.Array(S.Token) },
    async (req) =>
      (await list<ApiToken>(store, keys.tokens())).filter((t) => t.user === req.params.user).map(publicToken),
  );

  api.post(
    "/users/:user/tokens",
    {
      access: { object: "token", action: "create" },
      tags: "tokens",
      summary: "Create an API token; the secret is in the answer only",
      params: UserParams,
      body: S.NewToken,
      answer: S.IssuedToken,
      status: 201,
    },
    async (req) => {
      const user = await mustExist(req.params.user);
      const issued = await ctx.identity.issueToken(user, req.body.name, req.body.ttlSeconds ?? null);
      return { token: issued.token, record: publicToken(issued.record) };
    },
  );

  api.delete(
    "/users/:user/tokens/:id",
    {
      access: { object: "token", action: "delete" },
      tags: "tokens",
      params: Type.Object(
        { user: S.Name("user name"), id: Type.String({ pattern: "^[a-z0-9]{12}$" }) },
        { additionalProperties: false },
      ),
      answer: null,
    },
    async (req) => {
      const t = await read<ApiToken>(store, keys.token(req.params.id));
      if (t === undefined || t.user !== req.params.user) throw notFound("token", req.params.id);
      await new Batch().delete(keys.token(t.id)).commit(store, "conflict");
    },
  );
};
