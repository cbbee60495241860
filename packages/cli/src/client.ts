/**
 * The CLI's connection to a portal: where it is, who we are (the token kept
 * in the config directory, `~/.config/merge/` or `$MERGE_CONFIG_DIR`), output
 * as tables or `--json`, and errors that say what to do next.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ApiError, PortalClient } from "@merge/portal/client";
import { nearest } from "@merge/xir/browser";
import Table from "cli-table3";
import type { Command } from "commander";
import { configDir } from "./config.ts";

export interface Session {
  portal: string;
  token?: string;
  user?: string;
  /** "oauth": a device-flow access token; "api": a portal API token from a password sign-in. */
  kind?: "oauth" | "api";
  expires?: string;
  /** OAuth2 refresh token (device-flow sign-in), used when the access token expires. */
  refreshToken?: string;
}

export const DEFAULT_PORTAL = "http://127.0.0.1:8080";

const sessionFile = () => join(configDir(), "session.json");

export function loadSession(): Session {
  const f = sessionFile();
  const s: Session = existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as Session) : { portal: DEFAULT_PORTAL };
  if (process.env.MERGE_PORTAL) s.portal = process.env.MERGE_PORTAL;
  if (process.env.MERGE_TOKEN) s.token = process.env.MERGE_TOKEN;
  return s;
}

export function saveSession(s: Session): void {
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  writeFileSync(sessionFile(), `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  chmodSync(sessionFile(), 0o600);
}

export function clearToken(): Session {
  const s = loadSession();
  const next: Session = { portal: s.portal };
  if (existsSync(sessionFile())) rmSync(sessionFile());
  saveSession(next);
  return next;
}

/** Where the portal URL came from, so "cannot reach" can say which setting to change. */
type PortalOrigin = "--portal" | "$MERGE_PORTAL" | "the saved session" | "the default";

/**
 * What the running command works on, for error hints: the portal it talks to
 * (and why that one), the client, and the project/experiment/realization it named.
 * One command runs per process, so module state is enough.
 */
const context: {
  portal?: { url: string; origin: PortalOrigin };
  client?: PortalClient;
  subject?: { project: string; experiment?: string; realization?: string };
} = {};

/** The portal to talk to: `--portal`, then $MERGE_PORTAL, then the saved session, then the local default. */
export function client(opts: { portal?: string } = {}): PortalClient {
  const s = loadSession();
  const origin: PortalOrigin =
    opts.portal !== undefined
      ? "--portal"
      : process.env.MERGE_PORTAL
        ? "$MERGE_PORTAL"
        : existsSync(sessionFile())
          ? "the saved session"
          : "the default";
  const c = new PortalClient(opts.portal ?? s.portal, s.token);
  context.portal = { url: c.baseUrl, origin };
  context.client = c;
  if (s.kind === "oauth" && s.refreshToken !== undefined && !process.env.MERGE_TOKEN) {
    c.refresher = async () => {
      const t = await c.refreshTokens(s.refreshToken as string);
      saveSession({
        ...s,
        token: t.access_token,
        expires: new Date(Date.now() + t.expires_in * 1000).toISOString(),
        ...(t.refresh_token ? { refreshToken: t.refresh_token } : {}),
      });
      return t.access_token;
    };
  }
  return c;
}

/** How to sign in (again), naming the user and portal when we know them. */
function loginHint(): string {
  const s = loadSession();
  const portal = context.portal && context.portal.origin === "--portal" ? ` --portal ${context.portal.url}` : "";
  return `mrg login ${s.user ?? "<username>"} --password <password>${portal} (or 'mrg login' to sign in with the browser)`;
}

/** A signed-in client, or a clear error saying how to sign in. */
export function signedIn(opts: { portal?: string } = {}): PortalClient {
  const c = client(opts);
  if (c.token === undefined)
    throw new CliError(
      `not signed in; run 'mrg login' to sign in to ${c.baseUrl} (with a password: ${loginHint().replace(/ \(or .*\)$/, "")})`,
    );
  return c;
}

import { CliError, UsageError } from "./errors.ts";

export { CliError, UsageError };

const NAME_RULE = "lower-case letters and digits, starting with a letter, at most 32";

/** `name.a.b` → parts, checking the count; errors show the expected form and what is wrong. */
export function parseName(
  id: string,
  parts: ["experiment", "project"] | ["realization", "experiment", "project"],
): string[] {
  const p = id.split(".");
  const form = parts.join(".");
  const example = parts.length === 2 ? "myexp.myproj" : "r1.myexp.myproj";
  const article = parts[0] === "experiment" ? "an" : "a";
  if (p.length !== parts.length) {
    throw new UsageError(
      `'${id}' is not ${article} ${parts[0]} name: expected ${form} (${parts.length} parts), e.g. ${example}`,
    );
  }
  const bad = p.findIndex((x) => !/^[a-z][a-z0-9]{0,31}$/.test(x));
  if (bad >= 0) {
    throw new UsageError(
      `'${id}' is not ${article} ${parts[0]} name: the ${parts[bad]} part '${p[bad]}' must be ${NAME_RULE} characters (${form}, e.g. ${example})`,
    );
  }
  context.subject =
    parts.length === 2
      ? { experiment: p[0] as string, project: p[1] as string }
      : { realization: p[0] as string, experiment: p[1] as string, project: p[2] as string };
  return p;
}

export interface OutputFlags {
  json?: boolean;
}

/** `1 link`, `2 links`, `3 facilities`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Prints rows as a table (default) or as JSON (`--json`). */
export function print<T extends object>(flags: OutputFlags, rows: T | T[], columns: (keyof T & string)[]): void {
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const list = Array.isArray(rows) ? rows : [rows];
  if (list.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  const table = new Table({ head: columns, style: { head: [], border: [] } });
  for (const r of list) table.push(columns.map((c) => cell(r[c])));
  process.stdout.write(`${table.toString()}\n`);
}

/** What a command did, for commands that return nothing to show: a line, or `{...}` with --json. */
export function done(flags: OutputFlags, text: string, json: Record<string, unknown>): void {
  process.stdout.write(flags.json ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) return v.join(", ");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/**
 * Runs a command action, turning failures into a message on stderr that says
 * what to do next, and exit status 1 (2 for usage errors).
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const more = e instanceof ApiError && e.status === 404 ? await whatExists(e).catch(() => "") : "";
      process.stderr.write(`${describe(e)}${more}\n`);
      process.exitCode = e instanceof UsageError ? 2 : 1;
    }
  };
}

export function describe(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.code === "unreachable") return `error: ${unreachable(e.message)}`;
    // Schema errors name the request body ("body.email must ..."): the user knows it as the field.
    const message = e.message.replace(/;? ?sign in again with 'mrg login'$/, "").replace(/^body\./, "");
    const hint =
      e.status === 401
        ? `${refusedBy()}${
            process.env.MERGE_TOKEN
              ? "; the token comes from $MERGE_TOKEN: set a valid one, or unset it and sign in with mrg login"
              : `; sign in again with: ${loginHint()}`
          }`
        : e.status === 403 && e.code === "inactive"
          ? " (an administrator activates accounts: mergectl user activate <name>)"
          : "";
    const field = e.field && !message.startsWith(e.field) ? ` [field: ${e.field}]` : "";
    return `error: ${message}${field}${hint}`;
  }
  if (e instanceof CliError) return `error: ${e.message}`;
  return `error: ${(e as Error).message ?? String(e)}`;
}

/**
 * Which portal refused the token (and why that one), and, when the saved
 * session was signed in to another portal (a login elsewhere rewrote it), which.
 */
function refusedBy(): string {
  const p = context.portal;
  if (!p) return "";
  const f = sessionFile();
  const saved = existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as Session).portal : undefined;
  const other =
    saved && saved.replace(/\/+$/, "") !== p.url.replace(/\/+$/, "") && !process.env.MERGE_TOKEN
      ? `; the saved session (${f}) is signed in to ${saved}, not this portal`
      : "";
  return ` (portal ${p.url}, from ${p.origin}${other})`;
}

/** "cannot reach": which URL, where it came from, why, and how to start a portal or point at another. */
function unreachable(message: string): string {
  const p = context.portal;
  const cause = message
    .replace(/^cannot reach the portal at \S+?: /, "")
    .replace(/^(Type)?Error: /, "")
    .replace(/^(connect )?ECONNREFUSED.*/, "connection refused")
    .replace(/^fetch failed$/, "no answer");
  const url = p?.url ?? /at (\S+?):/.exec(message)?.[1] ?? "the portal";
  return (
    `cannot reach the portal at ${url}${p ? ` (from ${p.origin})` : ""}: ${cause}\n` +
    "  start one with 'npm start' in the Merge checkout, or name the running one with --portal URL or MERGE_PORTAL=URL"
  );
}

/** After "X does not exist": the Xs that do, nearest first (best effort; "" when the lookup fails). */
async function whatExists(e: ApiError): Promise<string> {
  const c = context.client;
  const s = context.subject;
  const idle = /^(\S+) is not materialized$/.exec(e.message);
  if (idle) return `\n  materialize it first: mrg materialize ${idle[1]}`;
  // The portal says "realization 'r.e.p' does not exist", or (materializations) "no realization r.e.p".
  const what = /^(project|experiment|realization|revision) '[^']*' does not exist|^no (realization) /.exec(e.message);
  if (!c || !s || !what) return "";
  const kind = what[1] ?? what[2];
  if (kind === "revision" && s.experiment) {
    const revs = await c.revisions(s.project, s.experiment);
    const id = `${s.experiment}.${s.project}`;
    return revs.length
      ? `\n  revisions of ${id}: ${revs.map((r) => `${r.number} (${r.status})`).join(", ")}`
      : `\n  ${id} has no revisions yet; push a model first: mrg push model.ts ${id}`;
  }
  let names: string[];
  let wanted: string;
  let where: string;
  if (kind === "project") {
    names = (await c.projects()).map((p) => p.name);
    wanted = s.project;
    where = "projects you can see";
  } else if (kind === "experiment" && s.experiment) {
    names = (await c.experiments(s.project)).map((x) => `${x.name}.${s.project}`);
    wanted = `${s.experiment}.${s.project}`;
    where = `experiments in project ${s.project}`;
  } else if (kind === "realization" && s.realization && s.experiment) {
    names = (await c.realizations(s.project, s.experiment)).map((r) => r.id);
    wanted = `${s.realization}.${s.experiment}.${s.project}`;
    where = `realizations of ${s.experiment}.${s.project}`;
  } else return "";
  if (!names.length) return `\n  there are no ${where}`;
  const near = nearest(wanted, names);
  return `${near ? `\n  did you mean ${near}?` : ""}\n  ${where}: ${names.join(", ")}`;
}

/** Adds the options every portal command takes (`--json` unless the command prints nothing to parse). */
export function portalOptions(cmd: Command, opts: { json?: boolean } = {}): Command {
  cmd.option("--portal <url>", "portal URL (default: the one you signed in to, or $MERGE_PORTAL)");
  return opts.json === false ? cmd : cmd.option("--json", "print JSON");
}

export { helpAfterErrors, usageExits } from "./commands/usage.ts";
