/** Users: registration, sign-in with a password, account state, and the caller's own identity. */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { deleteUser, nextGeneration, registerUser, revokeTokens } from "../accounts.ts";
import type { PortalContext } from "../context.ts";
import { list, patchDoc, readFound } from "../documents.ts";
import { PortalError } from "../errors.ts";
import { keys, type User } from "../objects.ts";
import { hashPassword, verifyPassword } from "../password.ts";
import * as S from "../schemas.ts";
import { routes } from "./declare.ts";

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
  const api = routes(app);
  const tags = "users";
  /** The account the path names (a 404 when there is none), changed under one compare-and-swap. */
  const patchUser = (name: string, change: (u: User) => User | Promise<User>) =>
    patchDoc<User>(store, keys.user(name), { kind: "user", name, noun: "account" }, change);
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

  api.post(
    "/users",
    {
      access: "public",
      tags,
      summary: "Register: creates an inactive account (an administrator activates it) with a personal project",
      body: S.Registration,
      answer: S.User,
      status: 201,
    },
    async (req) => publicUser(await registerUser(store, ctx.workspace, req.body)),
  );

  api.post(
    "/login",
    {
      access: "public",
      tags,
      summary: "Sign in with a password; returns an API token (the CLI's device flow is under /oidc)",
      body: S.Login,
      answer: S.IssuedToken,
    },
    async (req) => {
      const user = await ctx.identity.signIn(req.body.username, req.body.password, req.ip);
      return ctx.identity.issueToken(user, req.body.tokenName ?? "login", LOGIN_TTL_SECONDS);
    },
  );

  api.get(
    "/whoami",
    { access: { object: "user", action: "read" }, tags, summary: "The signed-in user", answer: S.User },
    async (req) => publicUser(req.principal!.user),
  );

  api.get(
    "/users",
    { access: { object: "user", action: "read" }, tags, summary: "List users", answer: Type.Array(S.User) },
    async (req) => (await list<User>(store, keys.users())).map((u) => seenBy(req.principal?.user, u)),
  );

  api.get(
    "/users/:user",
    { access: { object: "user", action: "read" }, tags, params: UserParams, answer: S.User },
    async (req) =>
      seenBy(req.principal?.user, await readFound<User>(store, keys.user(req.params.user), "user", req.params.user)),
  );

  api.patch(
    "/users/:user",
    { access: { object: "user", action: "update" }, tags, params: UserParams, body: S.UserUpdate, answer: S.User },
    async (req) => {
      const { password, currentPassword } = req.body;
      const { after } = await patchUser(req.params.user, async (u) => {
        let next: User = { ...u };
        if (req.body.email !== undefined) next.email = req.body.email;
        if (req.body.fullName !== undefined) next.fullName = req.body.fullName;
        if (password !== undefined) {
          // One's own password needs the current one (a stolen token alone cannot take the account over);
          // an administrator resets another user's without it. The check is throttled like a sign-in.
          if (req.principal!.user.name === u.name) await checkCurrentPassword(u, currentPassword, req.ip);
          // A new password revokes every token issued before it (API tokens, access and refresh tokens).
          next = { ...nextGeneration(next), passwordHash: await hashPassword(password) };
        }
        return next;
      });
      if (password !== undefined) await revokeTokens(store, after.name);
      return publicUser(after);
    },
  );

  api.put(
    "/users/:user/state",
    {
      access: { object: "user", action: "delete" },
      tags,
      summary: "Activate or freeze an account (administrators)",
      params: UserParams,
      body: S.UserState,
      answer: S.User,
    },
    async (req) => {
      if (!req.principal!.user.admin)
        throw new PortalError("forbidden", "only portal administrators activate or freeze accounts");
      const freezes = (u: User) => req.body.state === "frozen" && u.state !== "frozen";
      // Freezing revokes every token: activating the account again does not bring them back.
      const { before, after } = await patchUser(req.params.user, (u) => ({
        ...(freezes(u) ? nextGeneration(u) : u),
        state: req.body.state,
        admin: req.body.admin ?? u.admin,
      }));
      if (freezes(before)) await revokeTokens(store, after.name);
      return publicUser(after);
    },
  );

  api.delete(
    "/users/:user",
    { access: { object: "user", action: "delete" }, tags, params: UserParams, answer: null },
    async (req) => {
      await deleteUser(store, ctx.workspace, req.params.user);
    },
  );
};
