/** Users: registration, sign-in with a password, account state, and the caller's own identity. */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { deleteUser, nextGeneration, registerUser, revokeTokens } from "../accounts.ts";
import type { PortalContext } from "../context.ts";
import { Batch, list, readDoc } from "../documents.ts";
import { notFound, PortalError } from "../errors.ts";
import { keys, type User } from "../objects.ts";
import { hashPassword, verifyPassword } from "../password.ts";
import * as S from "../schemas.ts";

export function publicUser(u: User) {
  const { passwordHash: _, ...rest } = u;
  return rest;
}

/** What another user may see of an account: no email unless it is their own or they are an administrator. */
function seenBy(viewer: User | undefined, u: User) {
  const p = publicUser(u);
  return viewer !== undefined && (viewer.admin || viewer.name === u.name) ? p : { ...p, email: "" };
}

/** Sign-in tokens from `POST /login` last this long. */
const LOGIN_TTL_SECONDS = 30 * 24 * 3600;

export const usersRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const { store } = ctx;
  const UserParams = Type.Object({ user: S.Name("user name") }, { additionalProperties: false });

  /** 403 naming the field unless `given` is the user's password; counted against the account like a sign-in. */
  const checkCurrentPassword = async (u: User, given: string | undefined, address: string) => {
    if (given === undefined)
      throw new PortalError(
        "bad_request",
        "currentPassword: changing your password needs the current one",
        "currentPassword",
      );
    const attempt = await ctx.identity.throttle.reserve("password", address, u.name);
    if (u.passwordHash === undefined || !(await verifyPassword(given, u.passwordHash))) {
      throw new PortalError("forbidden", "currentPassword: that is not your current password", "currentPassword");
    }
    attempt.succeeded();
  };

  app.post(
    "/users",
    {
      config: { access: "public" },
      schema: {
        tags: ["users"],
        summary: "Register: creates an inactive account (an administrator activates it) with a personal project",
        body: S.Registration,
        response: { 201: S.User, ...S.errors },
      },
    },
    async (req, reply) => {
      const u = await registerUser(store, ctx.workspace, req.body);
      return reply.code(201).send(publicUser(u));
    },
  );

  app.post(
    "/login",
    {
      config: { access: "public" },
      schema: {
        tags: ["users"],
        summary: "Sign in with a password; returns an API token (the CLI's device flow is under /oidc)",
        body: S.Login,
        response: { 200: S.IssuedToken, ...S.errors },
      },
    },
    async (req) => {
      const user = await ctx.identity.signIn(req.body.username, req.body.password, req.ip);
      return ctx.identity.issueToken(user, req.body.tokenName ?? "login", LOGIN_TTL_SECONDS);
    },
  );

  app.get(
    "/whoami",
    {
      config: { access: { object: "user", action: "read" } },
      schema: { tags: ["users"], summary: "The signed-in user", response: { 200: S.User, ...S.errors } },
    },
    async (req) => publicUser(req.principal!.user),
  );

  app.get(
    "/users",
    {
      config: { access: { object: "user", action: "read" } },
      schema: { tags: ["users"], summary: "List users", response: { 200: Type.Array(S.User), ...S.errors } },
    },
    async (req) => (await list<User>(store, keys.users())).map((u) => seenBy(req.principal?.user, u)),
  );

  app.get(
    "/users/:user",
    {
      config: { access: { object: "user", action: "read" } },
      schema: { tags: ["users"], params: UserParams, response: { 200: S.User, ...S.errors } },
    },
    async (req) => {
      const doc = await readDoc<User>(store, keys.user(req.params.user));
      if (doc === undefined) throw notFound("user", req.params.user);
      return seenBy(req.principal?.user, doc.value);
    },
  );

  app.patch(
    "/users/:user",
    {
      config: { access: { object: "user", action: "update" } },
      schema: { tags: ["users"], params: UserParams, body: S.UserUpdate, response: { 200: S.User, ...S.errors } },
    },
    async (req) => {
      const doc = await readDoc<User>(store, keys.user(req.params.user));
      if (doc === undefined) throw notFound("user", req.params.user);
      let next: User = { ...doc.value };
      if (req.body.email !== undefined) next.email = req.body.email;
      if (req.body.fullName !== undefined) next.fullName = req.body.fullName;
      const { password, currentPassword } = req.body;
      if (password !== undefined) {
        // One's own password needs the current one (a stolen token alone cannot take the account over);
        // an administrator resets another user's without it. The check is throttled like a sign-in.
        if (req.principal!.user.name === doc.value.name) await checkCurrentPassword(doc.value, currentPassword, req.ip);
        // A new password revokes every token issued before it (API tokens, access and refresh tokens).
        next = { ...nextGeneration(next), passwordHash: await hashPassword(password) };
      }
      await new Batch()
        .unchanged(keys.user(next.name), doc.modRevision)
        .put(keys.user(next.name), next)
        .commit(store, "the account changed meanwhile; try again");
      if (password !== undefined) await revokeTokens(store, next.name);
      return publicUser(next);
    },
  );

  app.put(
    "/users/:user/state",
    {
      config: { access: { object: "user", action: "delete" } },
      schema: {
        tags: ["users"],
        summary: "Activate or freeze an account (administrators)",
        params: UserParams,
        body: S.UserState,
        response: { 200: S.User, ...S.errors },
      },
    },
    async (req) => {
      if (!req.principal!.user.admin)
        throw new PortalError("forbidden", "only portal administrators activate or freeze accounts");
      const doc = await readDoc<User>(store, keys.user(req.params.user));
      if (doc === undefined) throw notFound("user", req.params.user);
      const freeze = req.body.state === "frozen" && doc.value.state !== "frozen";
      // Freezing revokes every token: activating the account again does not bring them back.
      const next: User = {
        ...(freeze ? nextGeneration(doc.value) : doc.value),
        state: req.body.state,
        admin: req.body.admin ?? doc.value.admin,
      };
      await new Batch()
        .unchanged(keys.user(next.name), doc.modRevision)
        .put(keys.user(next.name), next)
        .commit(store, "the account changed meanwhile; try again");
      if (freeze) await revokeTokens(store, next.name);
      return publicUser(next);
    },
  );

  app.delete(
    "/users/:user",
    {
      config: { access: { object: "user", action: "delete" } },
      schema: { tags: ["users"], params: UserParams, response: { 204: Type.Null(), ...S.errors } },
    },
    async (req, reply) => {
      await deleteUser(store, ctx.workspace, req.params.user);
      return reply.code(204).send(null);
    },
  );
};
