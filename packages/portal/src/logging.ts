/**
 * What the portal's request log may contain. Secrets reach the portal in
 * headers (Authorization, Cookie), bodies (passwords, codes, tokens) and query
 * strings (the OIDC redirect's `code`, device `user_code`): the request
 * serializer keeps method, path and address and replaces every query value
 * not known to be harmless; bodies and headers are never serialized, and the
 * redact list covers them anyway in case a log call passes one.
 */
import type { FastifyRequest, FastifyServerOptions } from "fastify";

type LoggerOptions = Exclude<FastifyServerOptions["logger"], boolean | undefined>;

/** Query parameters whose values are safe to log (everything else is replaced). */
const HARMLESS_QUERY = new Set([
  "client_id",
  "response_type",
  "response_mode",
  "scope",
  "redirect_uri",
  "code_challenge_method",
  "prompt",
  "limit",
  "watch",
  "revision",
  "format",
  "facility",
  "allocated",
  "rows",
  "cols",
  "tty",
]);

export const REDACTED = "[redacted]";

/**
 * Provider interaction ids in paths (`/oidc/interaction/<uid>`, `/oidc/auth/<uid>`, `/oidc/device/<uid>`):
 * the same value is a cookie's, so it stays out of the log too.
 */
const INTERACTION_ID = /^(\/oidc\/(?:interaction|auth|device)\/)(?!auth(?:\/|$))[^/]+/;

/** `url` with the value of every query parameter not in HARMLESS_QUERY replaced by REDACTED. */
export function urlForLog(url: string): string {
  const q = url.indexOf("?");
  const path = (q < 0 ? url : url.slice(0, q)).replace(INTERACTION_ID, `$1${REDACTED}`);
  if (q < 0) return path;
  const params = new URLSearchParams(url.slice(q + 1));
  const out: string[] = [];
  for (const [k, v] of params) {
    out.push(`${encodeURIComponent(k)}=${HARMLESS_QUERY.has(k) ? encodeURIComponent(v) : REDACTED}`);
  }
  return `${path}?${out.join("&")}`;
}

/** Pino options for the portal's Fastify logger. */
export function loggerOptions(stream?: NodeJS.WritableStream): LoggerOptions {
  return {
    level: "info",
    ...(stream !== undefined ? { stream } : {}),
    redact: {
      paths: [
        "req.headers.authorization",
        "req.headers.cookie",
        'res.headers["set-cookie"]',
        "headers.authorization",
        "headers.cookie",
        "body",
        "req.body",
        "password",
        "*.password",
        "token",
        "*.token",
      ],
      censor: REDACTED,
    },
    serializers: {
      req: (req: FastifyRequest) => ({
        method: req.method,
        url: urlForLog(req.url),
        remoteAddress: req.ip,
      }),
    },
  };
}
