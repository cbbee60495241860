/**
 * The embedded OAuth2/OIDC provider (oidc-provider 8), mounted at /oidc:
 * device authorization for the CLI (`mrg login`), authorization code + PKCE
 * for the web UI. Access tokens are JWTs for the portal API (resource
 * indicator `urn:merge:api`), signed with a key generated on first start and
 * kept in the store; the API verifies them with jose. Sign-in and consent are
 * the portal's own interaction pages (password checked with scrypt; consent
 * is implicit for the portal's own clients). Provider state (device codes,
 * sessions, grants) lives in the store, so it survives restarts and is shared
 * by replicas.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Store } from "@merge/store";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { createRemoteJWKSet, exportJWK, generateKeyPair, importJWK, type JWK, jwtVerify } from "jose";
import Provider, { type Adapter, type AdapterPayload, type Configuration } from "oidc-provider";
import type { PortalContext } from "./context.ts";
import { read } from "./documents.ts";
import { PortalError } from "./errors.ts";
import { subjectOf, type TokenUser } from "./identity.ts";
import { urlForLog } from "./logging.ts";
import { keys } from "./objects.ts";
import { Throttled } from "./throttle.ts";

export const API_RESOURCE = "urn:merge:api";
export const CLI_CLIENT = "mrg";
export const WEB_CLIENT = "merge-web";

export interface Oidc {
  provider: Provider;
  issuer: string;
}

interface Secrets {
  signing: JWK;
  cookieKeys: string[];
}

async function secrets(store: Store): Promise<Secrets> {
  const k = keys.secret("oidc");
  const existing = await read<Secrets>(store, k);
  if (existing !== undefined) return existing;
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const signing = { ...(await exportJWK(privateKey)), alg: "ES256", use: "sig", kid: randomBytes(8).toString("hex") };
  const fresh: Secrets = { signing, cookieKeys: [randomBytes(32).toString("base64url")] };
  // First start wins; a concurrent first start reads the winner's keys.
  const r = await store.txn({
    compare: [{ key: k, target: "absent" }],
    success: [{ op: "put", key: k, value: JSON.stringify(fresh) }],
  });
  return r.succeeded ? fresh : ((await read<Secrets>(store, k)) as Secrets);
}

/** oidc-provider's storage, over the portal store. */
function storeAdapter(store: Store) {
  const base = "portal/oidc/";
  return class StoreAdapter implements Adapter {
    constructor(private readonly name: string) {}
    private key(id: string) {
      return `${base}${this.name}/${id}`;
    }
    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const doc = { payload, expires: expiresIn ? Date.now() + expiresIn * 1000 : null };
      const ops: { op: "put"; key: string; value: string }[] = [
        { op: "put", key: this.key(id), value: JSON.stringify(doc) },
      ];
      if (payload.userCode) ops.push({ op: "put", key: `${base}${this.name}:userCode/${payload.userCode}`, value: id });
      if (payload.uid) ops.push({ op: "put", key: `${base}${this.name}:uid/${payload.uid}`, value: id });
      if (payload.grantId)
        ops.push({ op: "put", key: `${base}grant:${payload.grantId}/${this.name}/${id}`, value: id });
      await store.txn({ compare: [], success: ops });
    }
    async find(id: string): Promise<AdapterPayload | undefined> {
      const doc = await read<{ payload: AdapterPayload; expires: number | null }>(store, this.key(id));
      if (doc === undefined || (doc.expires !== null && doc.expires < Date.now())) return undefined;
      return doc.payload;
    }
    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const id = await store.get(`${base}${this.name}:userCode/${userCode}`);
      return id === undefined ? undefined : this.find(id.value);
    }
    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const id = await store.get(`${base}${this.name}:uid/${uid}`);
      return id === undefined ? undefined : this.find(id.value);
    }
    async consume(id: string): Promise<void> {
      const k = this.key(id);
      const kv = await store.get(k);
      if (kv === undefined) return;
      const doc = JSON.parse(kv.value) as { payload: AdapterPayload };
      doc.payload.consumed = Math.floor(Date.now() / 1000);
      await store.put(k, JSON.stringify(doc));
    }
    async destroy(id: string): Promise<void> {
      await store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      const refs = await store.range(`${base}grant:${grantId}/`);
      for (const r of refs) {
        const [, model, id] = r.key.slice(base.length).split("/") as [string, string, string];
        await store.delete(`${base}${model}/${id}`);
        await store.delete(r.key);
      }
    }
  };
}

const page = (title: string, body: string) =>
  `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title>` +
  `<style>body{font-family:sans-serif;max-width:26em;margin:3em auto}input,button{display:block;width:100%;margin:.4em 0;padding:.5em}</style>` +
  `</head><body><h1>${title}</h1>${body}</body></html>`;

/** No page under /oidc may be framed by another site (clickjacking a sign-in or a device confirmation). */
const ANTI_FRAMING = { "content-security-policy": "frame-ancestors 'none'", "x-frame-options": "DENY" };

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export async function mountOidc(app: FastifyInstance, ctx: PortalContext): Promise<Oidc> {
  const issuer = `${ctx.config.publicUrl}/oidc`;
  const throttle = ctx.identity.throttle;
  // The client address as Fastify saw it (the socket's), for the provider's callbacks: the provider trusts
  // X-Forwarded-For (proxy = true), which a guesser could set to anything.
  const addressOf = new WeakMap<IncomingMessage, string>();
  const { signing, cookieKeys } = await secrets(ctx.store);
  const configuration: Configuration = {
    adapter: storeAdapter(ctx.store),
    clients: [
      {
        client_id: CLI_CLIENT,
        client_name: "mrg command line",
        application_type: "native",
        token_endpoint_auth_method: "none",
        grant_types: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: WEB_CLIENT,
        client_name: "Merge web",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: [`${ctx.config.publicUrl}/callback`],
      },
    ],
    jwks: { keys: [signing] },
    clientDefaults: {
      id_token_signed_response_alg: "ES256",
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
    // Lax, not the default None: browsers drop SameSite=None cookies that are not Secure (plain http on loopback),
    // and the UI is same-origin with the provider anyway.
    cookies: {
      keys: cookieKeys,
      long: { httpOnly: true, sameSite: "lax", signed: true },
      short: { httpOnly: true, sameSite: "lax", signed: true },
    },
    scopes: ["openid", "offline_access", "api"],
    claims: { openid: ["sub"], profile: ["preferred_username", "name"], email: ["email"] },
    pkce: { required: () => true },
    // The account id is `subjectOf(user)`: after a password change, a freeze or a deletion it names no account,
    // so the provider refuses that user's sessions, grants and refresh tokens from before.
    findAccount: async (_c, sub) => {
      const u = await ctx.identity.userOfSubject(sub);
      if (u === undefined || u.state !== "active") return undefined;
      return {
        accountId: sub,
        claims: async () => ({ sub: u.name, preferred_username: u.name, name: u.fullName, email: u.email }),
      };
    },
    // The user name in access tokens too: the subject also carries the user's id and token generation.
    extraTokenClaims: async (_c, token) =>
      "accountId" in token && typeof token.accountId === "string"
        ? { preferred_username: token.accountId.split(".")[0] }
        : undefined,
    interactions: { url: (_c, interaction) => `/oidc/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: async (koa, form, _out, err) => {
          // A user code is short (8 letters): a code that matches nothing counts as a guess.
          if (err?.name === "NotFoundError") throttle.fail("usercode", addressOf.get(koa.req) ?? koa.ip);
          koa.body = page(
            "Sign in to Merge",
            `${err ? "<p>That code is not valid; try again.</p>" : "<p>Enter the code your terminal shows.</p>"}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`,
          );
        },
        userCodeConfirmSource: async (koa, form, client, _info, userCode) => {
          koa.body = page(
            "Confirm sign-in",
            `<p>${esc(String(client.clientName ?? client.clientId))} asks to sign in as you with code <code>${esc(userCode)}</code>.</p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button>`,
          );
        },
        successSource: async (koa) => {
          koa.body = page("Signed in", "<p>You are signed in; return to your terminal.</p>");
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => API_RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_c, indicator) => {
          if (indicator !== API_RESOURCE) throw new Error(`unknown resource ${indicator}`);
          return {
            scope: "api",
            audience: API_RESOURCE,
            accessTokenFormat: "jwt",
            accessTokenTTL: 12 * 3600,
            jwt: { sign: { alg: "ES256" } },
          };
        },
      },
      revocation: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (koa, form) => {
          koa.body = page(
            "Sign out",
            `<p>Sign out of Merge?</p>${form}<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>`,
          );
        },
        postLogoutSuccessSource: async (koa) => {
          koa.body = page("Signed out", "<p>You are signed out of Merge.</p>");
        },
      },
    },
    renderError: async (koa, out) => {
      koa.type = "html";
      koa.body = page("Sign-in error", `<p>${esc(String(out.error))}: ${esc(String(out.error_description ?? ""))}</p>`);
    },
    ttl: {
      AccessToken: 12 * 3600,
      DeviceCode: 600,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: 24 * 3600,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
    },
  };
  const provider = new Provider(issuer, configuration);
  // X-Forwarded-Host/-Proto make the provider's URLs (discovery, the device flow's verification URI): trusted
  // only behind a configured proxy, whose address the server checks (forwarded headers from anyone else are
  // dropped before they get here, server.ts).
  provider.proxy = ctx.config.trustProxy.length > 0;
  // Wrong, used or expired codes and refresh tokens at the token endpoint (not "authorization_pending").
  provider.on("grant.error", (koa, err) => {
    const code = (err as { error?: string }).error;
    if (code === "invalid_grant" || code === "invalid_client") throttle.fail("token", addressOf.get(koa.req) ?? koa.ip);
  });
  // Without a listener these vanish; logged without the request (its body and headers may carry secrets).
  provider.on("server_error", (koa, err) => {
    const path = urlForLog(`/oidc${koa.path}`);
    app.log.error({ path, method: koa.method, err: { message: err.message, name: err.name } }, "oidc provider error");
    if (!ctx.config.logger)
      process.stderr.write(`portal: oidc provider error on ${koa.method} ${path}: ${err.message}\n`);
  });

  // Access tokens for the API: verify signature, issuer, audience, type and expiry (a token without one is
  // refused); the subject names the user's id and token generation (identity.ts checks both).
  const { d: _d, ...publicJwk } = signing;
  const key = await importJWK(publicJwk, "ES256");
  ctx.identity.setJwtVerifier(async (jwt) => {
    const { payload } = await jwtVerify(jwt, key, {
      issuer,
      audience: API_RESOURCE,
      typ: "at+jwt",
      requiredClaims: ["exp", "sub"],
    });
    return { subject: payload.sub as string };
  });

  const callback = provider.callback();

  // Sign-in and consent pages (the provider sends the browser here during a flow).
  await app.register(async (scope) => {
    scope.addHook("onRequest", async (_req, reply) => {
      for (const [k, v] of Object.entries(ANTI_FRAMING)) reply.header(k, v);
    });
    scope.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    scope.get(
      "/oidc/interaction/:uid",
      { config: { access: "public" }, schema: { hide: true } },
      async (req, reply) => {
        const details = await provider.interactionDetails(req.raw, reply.raw);
        if (details.prompt.name === "login") {
          return reply.type("text/html").send(loginPage(details.uid));
        }
        // Consent: the portal's own clients get what they asked for.
        const accountId = details.session?.accountId as string;
        const grant = details.grantId
          ? ((await provider.Grant.find(details.grantId)) as InstanceType<typeof provider.Grant>)
          : new provider.Grant({ accountId, clientId: details.params.client_id as string });
        const d = details.prompt.details as {
          missingOIDCScope?: string[];
          missingOIDCClaims?: string[];
          missingResourceScopes?: Record<string, string[]>;
        };
        if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(" "));
        if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
        for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
          grant.addResourceScope(indicator, scopes.join(" "));
        }
        const grantId = await grant.save();
        reply.hijack();
        await provider.interactionFinished(
          req.raw,
          reply.raw,
          { consent: { grantId } },
          { mergeWithLastSubmission: true },
        );
      },
    );
    scope.post(
      "/oidc/interaction/:uid/login",
      { config: { access: "public" }, schema: { hide: true } },
      async (req, reply) => {
        const form = (req.body ?? {}) as Record<string, string>;
        const details = await provider.interactionDetails(req.raw, reply.raw);
        const username = typeof form.username === "string" ? form.username.slice(0, 64) : "";
        const password = typeof form.password === "string" ? form.password : "";
        let user: Awaited<ReturnType<typeof ctx.identity.signIn>>;
        try {
          user = await ctx.identity.signIn(username, password, req.ip);
        } catch (e) {
          if (e instanceof Throttled) {
            return reply
              .type("text/html")
              .code(429)
              .header("retry-after", String(e.retryAfterSeconds))
              .send(loginPage(details.uid, `Sign-in refused: ${esc(e.message)}.`));
          }
          if (!(e instanceof PortalError)) throw e;
          // Pending and frozen accounts get this page too: nothing tells an account's state before sign-in.
          return reply.type("text/html").code(401).send(loginPage(details.uid, "Wrong user name or password."));
        }
        reply.hijack();
        await provider.interactionFinished(
          req.raw,
          reply.raw,
          { login: { accountId: subjectOf(user) } },
          { mergeWithLastSubmission: false },
        );
      },
    );
  });

  // Everything else under /oidc is the provider's: hand it the raw request, unparsed.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, _payload, done) => done(null));
    const handler = async (req: FastifyRequest, reply: FastifyReply) => {
      const path = (req.url.split("?")[0] ?? "").slice("/oidc".length);
      if (req.method === "POST" && (path === "/device" || path === "/token")) {
        // Locked addresses are refused before the provider looks at the code.
        try {
          throttle.check(path === "/device" ? "usercode" : "token", req.ip);
        } catch (e) {
          if (!(e instanceof Throttled)) throw e;
          reply.code(429).header("retry-after", String(e.retryAfterSeconds)).header("cache-control", "no-store");
          return path === "/device"
            ? reply.type("text/html").send(page("Too many attempts", `<p>${esc(e.message)}.</p>`))
            : reply.send({ error: "too_many_requests", error_description: e.message });
        }
      }
      reply.hijack();
      addressOf.set(req.raw, req.ip);
      // The provider's pages (device code entry, confirmation, errors) must not be framed either.
      for (const [k, v] of Object.entries(ANTI_FRAMING)) reply.raw.setHeader(k, v);
      const raw = req.raw as typeof req.raw & { originalUrl?: string };
      raw.originalUrl = raw.url;
      raw.url = (raw.url ?? "/").slice("/oidc".length) || "/";
      callback(raw, reply.raw);
    };
    scope.all("/oidc", { config: { access: "public" }, schema: { hide: true } }, handler);
    scope.all("/oidc/*", { config: { access: "public" }, schema: { hide: true } }, handler);
  });

  return { provider, issuer };
}

function loginPage(uid: string, error?: string): string {
  return page(
    "Sign in to Merge",
    `${error ? `<p>${error}</p>` : ""}<form method="post" action="/oidc/interaction/${esc(uid)}/login">` +
      `<input name="username" placeholder="user name" autocomplete="username" autofocus>` +
      `<input name="password" type="password" placeholder="password" autocomplete="current-password">` +
      `<button type="submit">Sign in</button></form>`,
  );
}

/**
 * Bearer verification against an external OIDC issuer instead of the embedded provider. Tokens must expire
 * and say when they were issued (`iat`): the user's token generation must have begun by then (identity.ts).
 */
export function externalVerifier(ext: { issuer: string; jwksUri: string; audience: string; usernameClaim?: string }) {
  const jwks = createRemoteJWKSet(new URL(ext.jwksUri));
  return async (jwt: string): Promise<TokenUser> => {
    const { payload } = await jwtVerify(jwt, jwks, {
      issuer: ext.issuer,
      audience: ext.audience,
      requiredClaims: ["exp", "iat"],
    });
    const name = payload[ext.usernameClaim ?? "preferred_username"] ?? payload.sub;
    if (typeof name !== "string") throw new Error("no user name claim");
    return { name, issuedAt: payload.iat as number };
  };
}
