/**
 * Jupyter in an XDC, through the portal: `/xdc/<name.project>/jupyter/…` is a
 * reverse proxy (HTTP and WebSockets) to the Jupyter an XDC runs on its own
 * address. Jupyter asks for a token; the portal made it, keeps it in the store
 * (never in an answer) and adds it to every request it passes on, so nobody
 * types or sees it.
 *
 *   POST /projects/:project/xdcs/:xdc/jupyter    (xdc update: members) sets the
 *        browser's cookie for the proxy path and answers {url}
 *   ANY  /xdc/:xdc/jupyter/*                     the proxy
 *
 * A browser opening a page sends no Authorization header, so the proxy takes
 * the portal session from either the header (`mrg`, scripts) or that cookie
 * (HttpOnly, SameSite=Strict, Path the XDC's proxy path only), and decides
 * itself on every request and upgrade: signed in, active, and a member of the
 * XDC's project by the policy (`xdc update`); anything else is a 401, 403 or,
 * for a project or XDC the caller may not see, 404. Its routes are therefore
 * declared public to the access hooks, which only read the header.
 *
 * WebSocket upgrades (Jupyter's kernels) do not go through Fastify: the
 * server's `upgrade` listeners (`@fastify/websocket`'s, when a plugin
 * registered it, routes every upgrade through Fastify) are wrapped so an
 * upgrade under `/xdc/` comes here, is admitted the same way and is then a
 * byte pipe to Jupyter; every other upgrade goes to the listeners as before.
 */
import { randomBytes } from "node:crypto";
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { Store } from "@merge/store";
import type { FastifyReply, FastifyRequest } from "fastify";
import Type from "typebox";
import { projectRoles } from "../access.ts";
import type { PortalContext } from "../context.ts";
import { read } from "../documents.ts";
import { notFound, PortalError } from "../errors.ts";
import { keys, type Member, type Project } from "../objects.ts";
import { allows, type Role } from "../policy.ts";
import * as S from "../schemas.ts";

/** Jupyter's port on an XDC's address (the XDC host's JUPYTER_PORT). */
export const JUPYTER_PORT = 8888;
const COOKIE = "mrg_jupyter";
const PATH = /^\/xdc\/([a-z][a-z0-9]{0,31})\.([a-z][a-z0-9]{0,31})\/jupyter(\/|$|\?)/;

export const jupyterKeys = {
  token: (p: string, x: string) => `portal/xdc-jupyter/${p}/${x}`,
};

/** A new Jupyter token for an XDC, kept in the store. */
export async function newJupyterToken(store: Store, project: string, name: string): Promise<string> {
  const token = randomBytes(32).toString("base64url");
  await store.put(jupyterKeys.token(project, name), JSON.stringify({ token }));
  return token;
}

export async function jupyterToken(store: Store, project: string, name: string): Promise<string | undefined> {
  return (await read<{ token: string }>(store, jupyterKeys.token(project, name)))?.token;
}

interface Target {
  address: string;
  token: string;
}

/** The XDC record fields the proxy needs (plugin.ts's XdcRecord has them). */
interface Proxied {
  jupyter: boolean;
  address: string;
  state: string;
}

function cookieOf(header: string | undefined): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === COOKIE) return v.join("=");
  }
  return undefined;
}

/** The cookie header without the portal's session (Jupyter keeps its own cookies). */
function withoutSession(header: string | undefined): string | undefined {
  const rest = (header ?? "")
    .split(";")
    .map((p) => p.trim())
    .filter((p) => p !== "" && !p.startsWith(`${COOKIE}=`));
  return rest.length === 0 ? undefined : rest.join("; ");
}

/** Who may pass: signed in (header or cookie), active, `xdc update` in the XDC's project; the XDC runs Jupyter. */
async function admit(ctx: PortalContext, url: string, headers: IncomingHttpHeaders, ip: string): Promise<Target> {
  const m = PATH.exec(url);
  if (m === null) throw new PortalError("not_found", `no Jupyter at ${url.split("?")[0]}`);
  const [, name, project] = m as unknown as [string, string, string];
  const id = `${name}.${project}`;
  const cookie = cookieOf(headers.cookie);
  const authorization = headers.authorization ?? (cookie ? `Bearer ${cookie}` : undefined);
  const principal = await ctx.identity.authenticate(authorization, ip);
  if (principal === undefined)
    throw new PortalError("unauthenticated", `Jupyter of ${id}: sign in to the portal first (open it from the web UI)`);
  if (principal.user.state !== "active")
    throw new PortalError("inactive", `account '${principal.user.name}' is not active`);
  const [p, member] = await Promise.all([
    read<Project>(ctx.store, keys.project(project)),
    read<Member>(ctx.store, keys.member(project, principal.user.name)),
  ]);
  const roles = new Set<Role>(["Any.Any", ...projectRoles(member)]);
  if (principal.user.admin) roles.add("Portal.Admin");
  // Not the project's visibility: a public project's Jupyter is still its members' only.
  if (p === undefined || !allows(ctx.policy, "xdc", "private", "update", roles)) throw notFound("XDC", id);
  const x = await read<Proxied>(ctx.store, `portal/xdcs/${project}/${name}`);
  const token = await jupyterToken(ctx.store, project, name);
  if (x === undefined || !x.jupyter || token === undefined) throw notFound("Jupyter of XDC", id);
  if (x.state !== "running") throw new PortalError("conflict", `XDC ${id} is still being created`);
  return { address: x.address, token };
}

const HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-length",
]);

/** What goes to Jupyter: the caller's headers without the portal's credentials, with Jupyter's token. */
function upstreamHeaders(h: IncomingHttpHeaders, token: string, keepHop = false): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k === "authorization" || k === "cookie" || (!keepHop && HOP.has(k))) continue;
    out[k] = v;
  }
  const cookie = withoutSession(h.cookie);
  if (cookie !== undefined) out.cookie = cookie;
  out.authorization = `token ${token}`;
  return out;
}

export interface JupyterProxyOptions {
  ctx: PortalContext;
}

export const jupyterProxy: FastifyPluginAsyncTypebox<JupyterProxyOptions> = async (app, { ctx }) => {
  const open = new Set<Duplex>();

  app.post(
    "/projects/:project/xdcs/:xdc/jupyter",
    {
      config: { access: { object: "xdc", action: "update" } },
      schema: {
        tags: ["xdcs"],
        summary:
          "Open the XDC's Jupyter in this browser: sets the proxy's cookie (HttpOnly, its path only), answers {url}",
        params: Type.Object(
          { project: S.Name("project name"), xdc: S.Name("XDC name") },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ url: Type.String() }), ...S.errors },
      },
    },
    async (req, reply) => {
      const { project, xdc } = req.params;
      const x = await read<Proxied>(ctx.store, `portal/xdcs/${project}/${xdc}`);
      if (x === undefined || !x.jupyter) throw notFound("Jupyter of XDC", `${xdc}.${project}`);
      const session = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1] ?? "";
      const url = `/xdc/${xdc}.${project}/jupyter/`;
      const secure = req.protocol === "https" ? "; Secure" : "";
      reply.header("set-cookie", `${COOKIE}=${session}; Path=${url}; HttpOnly; SameSite=Strict${secure}`);
      return { url };
    },
  );

  // Bodies pass through as they came (notebooks, uploads), not parsed as the portal's JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: 256 << 20 }, (_req, body, done) => done(null, body));

  const proxy = async (req: FastifyRequest, reply: FastifyReply) => {
    const t = await admit(ctx, req.url, req.headers, req.ip);
    const body = Buffer.isBuffer(req.body) ? req.body : undefined;
    const headers = upstreamHeaders(req.headers, t.token);
    if (body !== undefined) headers["content-length"] = String(body.length);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const up = httpRequest(
        { host: t.address, port: JUPYTER_PORT, method: req.method, path: req.url, headers },
        resolve,
      );
      up.on("error", (e) => reject(new PortalError("internal", `Jupyter did not answer: ${e.message}`)));
      up.end(body);
    });
    reply.code(res.statusCode ?? 502);
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !HOP.has(k)) reply.header(k, v);
    return reply.send(res);
  };
  for (const url of ["/xdc/:xdc/jupyter", "/xdc/:xdc/jupyter/*"])
    app.route({
      method: ["GET", "POST", "PUT", "PATCH", "DELETE"],
      url,
      // The proxy admits callers itself (see above): a browser's navigation carries the cookie, not a header.
      config: { access: "public" },
      schema: { hide: true },
      handler: proxy,
    });

  const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    socket.on("error", () => socket.destroy());
    let t: Target;
    try {
      t = await admit(ctx, req.url ?? "", req.headers, req.socket.remoteAddress ?? "");
    } catch (e) {
      const err = e instanceof PortalError ? e : new PortalError("internal", (e as Error).message);
      const text = JSON.stringify(err.toJSON());
      socket.end(
        `HTTP/1.1 ${err.status} ${err.code}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
      );
      return;
    }
    const up: Socket = connect(JUPYTER_PORT, t.address);
    open.add(up);
    up.once("close", () => {
      open.delete(up);
      socket.destroy();
    });
    socket.once("close", () => up.destroy());
    up.on("error", () => socket.destroy());
    up.once("connect", () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      const h = upstreamHeaders(req.headers, t.token, true);
      for (const [k, v] of Object.entries(h)) for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
      up.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length > 0) up.write(head);
      socket.pipe(up);
      up.pipe(socket);
    });
  };

  app.addHook("onReady", async () => {
    const server = app.server;
    const others = server.listeners("upgrade") as ((req: IncomingMessage, socket: Duplex, head: Buffer) => void)[];
    server.removeAllListeners("upgrade");
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if ((req.url ?? "").startsWith("/xdc/")) void upgrade(req, socket, head);
      else if (others.length === 0) socket.destroy();
      else for (const l of others) l.call(server, req, socket, head);
    });
  });
  app.addHook("onClose", async () => {
    for (const s of open) s.destroy();
  });
};
