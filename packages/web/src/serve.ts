/**
 * Serves the built web UI from the portal: `/ui/*` (files from dist/, any
 * other path under it gets index.html so the app's own router decides),
 * `/callback` (the OIDC redirect URI the portal registers for the web client)
 * and `/` → `/ui/`. The files are read once at registration and served from
 * memory: only files that exist in dist/ can ever be sent, whatever the path.
 *
 * `POST /ui/token` relays the sign-in's code-for-token exchange to the
 * provider's token endpoint on the same server: oidc-provider refuses token
 * requests that carry a browser Origin unless `clientBasedCORS` admits the
 * client, and the relay makes the UI independent of that setting. It forwards
 * only authorization-code grants of the web client (PKCE still applies).
 *
 * Register it with the portal's `plugins` option (it ignores the context):
 *
 *   startPortal({ ..., plugins: [webUiPlugin()] })
 *
 * or on any Fastify app before `ready()`: `await webUi(app, { distDir })`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";
import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from "fastify";
import { DIST_DIR, UI_BASE } from "./build.ts";

export interface WebUiOptions {
  /** The Vite output directory (default: packages/web/dist). */
  distDir?: string;
}

interface Asset {
  body: Buffer;
  type: string;
  /** Content-hashed file names never change: cache them for good. */
  immutable: boolean;
}

/** The portal's OIDC client for the web UI (see the portal's oidc.ts). */
const WEB_CLIENT = "merge-web";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json",
};

/**
 * Same-origin everything; no inline scripts; WebGL and canvases need nothing
 * extra; the graph layout of big topologies runs in a Blob worker. The OIDC callback URL carries the authorization code, hence no-referrer.
 */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
    "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

/** Every file under `dir`, keyed by its URL path under the UI base; dotfiles (the build's record) are not served. */
export function loadAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      if (name.startsWith(".")) continue;
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const rel = relative(dir, full).split(sep).join("/");
        out.set(`${UI_BASE}${rel}`, {
          body: readFileSync(full),
          type: TYPES[extname(name)] ?? "application/octet-stream",
          immutable: rel.startsWith("assets/"),
        });
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** A small mark for the tab: the M of Merge. */
const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f4e79"/>' +
  '<path d="M3 13V3l5 6 5-6v10" fill="none" stroke="#fff" stroke-width="2"/></svg>';

const NOT_BUILT = (dir: string) =>
  `<!DOCTYPE html><meta charset="utf-8"><title>Merge</title><h1>The web UI is not built</h1>` +
  `<p>Run <code>npm run build -w packages/web</code> (looked in ${dir.replace(/[&<>"']/g, "")}) and restart the portal.</p>` +
  `<p>The API is here all the same: <a href="/docs">/docs</a>.</p>`;

export async function webUi(app: FastifyInstance, opts: WebUiOptions = {}): Promise<void> {
  const distDir = opts.distDir ?? DIST_DIR;
  const assets = loadAssets(distDir);
  const index = assets.get(`${UI_BASE}index.html`);

  const send = (reply: FastifyReply, a: Asset) =>
    reply
      .headers(SECURITY_HEADERS)
      .header("cache-control", a.immutable ? "public, max-age=31536000, immutable" : "no-cache")
      .type(a.type)
      .send(a.body);
  const sendIndex = (reply: FastifyReply) =>
    index === undefined
      ? reply.code(503).headers(SECURITY_HEADERS).type("text/html; charset=utf-8").send(NOT_BUILT(distDir))
      : send(reply, index);

  // The portal refuses routes without an access rule; the UI's files are public (the data behind them is not).
  const route = { config: { access: "public" }, schema: { hide: true } } as const;

  app.get("/", route, async (_req, reply) => reply.redirect(UI_BASE));
  // Browsers ask every page's origin for /favicon.ico (the sign-in pages, /docs): answer rather than 404.
  app.get("/favicon.ico", route, async (_req, reply) =>
    reply.header("cache-control", "public, max-age=86400").type("image/svg+xml").send(FAVICON),
  );
  app.get("/ui", route, async (_req, reply) => reply.redirect(UI_BASE));
  app.get("/callback", route, async (_req, reply) => sendIndex(reply.header("cache-control", "no-store")));
  await app.register(async (scope) => {
    // The host may parse forms already (to a string or an object); if not, this scope does.
    if (!scope.hasContentTypeParser("application/x-www-form-urlencoded")) {
      scope.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) =>
        done(null, body),
      );
    }
    scope.post("/ui/token", { ...route, bodyLimit: 8192 }, async (req, reply) => {
      const body = req.body;
      const form = new URLSearchParams(
        typeof body === "string"
          ? body
          : typeof body === "object" && body !== null
            ? (body as Record<string, string>)
            : "",
      );
      if (form.get("grant_type") !== "authorization_code" || form.get("client_id") !== WEB_CLIENT) {
        return reply.code(400).send({
          error: "invalid_request",
          error_description: `only authorization_code grants of ${WEB_CLIENT} go through here`,
        });
      }
      const res = await app.inject({
        method: "POST",
        url: "/oidc/token",
        // The caller's address, so the portal's guessing throttle counts this browser, not the relay.
        remoteAddress: req.ip,
        headers: { "content-type": "application/x-www-form-urlencoded" },
        payload: form.toString(),
      });
      return reply
        .code(res.statusCode)
        .header("cache-control", "no-store")
        .type(res.headers["content-type"]?.toString() ?? "application/json")
        .send(res.body);
    });
  });
  app.get("/ui/*", route, async (req, reply) => {
    let path: string;
    try {
      path = decodeURI(req.url.split("?")[0] ?? "");
    } catch {
      return reply.code(400).headers(SECURITY_HEADERS).type("text/plain; charset=utf-8").send("malformed URL encoding");
    }
    const a = assets.get(path);
    if (a !== undefined) return send(reply, a);
    // A missing file is a 404, not the app: a stale page asking for an old chunk must fail visibly.
    if (path.startsWith(`${UI_BASE}assets/`) || /\.[a-z0-9]+$/i.test(path)) {
      return reply.code(404).headers(SECURITY_HEADERS).type("text/plain; charset=utf-8").send(`no such file: ${path}`);
    }
    return sendIndex(reply);
  });
}

/** The same, as a plugin for the portal's `plugins` option (`{ ctx }` is not needed). */
export function webUiPlugin(opts: WebUiOptions = {}): FastifyPluginAsync<Record<string, unknown>> {
  return async (app) => webUi(app, opts);
}
