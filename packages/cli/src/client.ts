/**
 * The CLI's connection to a portal: where it is, who we are (the token kept
 * in the config directory, `~/.config/merge/` or `$MERGE_CONFIG_DIR`), output
 * as tables or `--json`, and errors that say what to do next.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { ApiError, PortalClient } from "@merge/portal/client";
import Table from "cli-table3";
import type { Command } from "commander";

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

export function configDir(): string {
  return process.env.MERGE_CONFIG_DIR ?? join(homedir(), ".config", "merge");
}

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

/** The portal to talk to: `--portal`, then $MERGE_PORTAL, then the saved session, then the local default. */
export function client(opts: { portal?: string } = {}): PortalClient {
  const s = loadSession();
  const c = new PortalClient(opts.portal ?? s.portal, s.token);
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

/** A signed-in client, or a clear error. */
export function signedIn(opts: { portal?: string } = {}): PortalClient {
  const c = client(opts);
  if (c.token === undefined) throw new CliError("not signed in; run 'mrg login' first");
  return c;
}

export class CliError extends Error {}

/** `name.a.b` → parts, checking the count; errors show the expected form. */
export function parseName(
  id: string,
  parts: ["experiment", "project"] | ["realization", "experiment", "project"],
): string[] {
  const p = id.split(".");
  const form = parts.join(".");
  if (p.length !== parts.length || p.some((x) => !/^[a-z][a-z0-9]{0,31}$/.test(x))) {
    throw new CliError(
      `'${id}' is not a ${parts[0]} name; expected ${form}, e.g. ${parts.length === 2 ? "myexp.myproj" : "rlz.myexp.myproj"}`,
    );
  }
  return p;
}

export interface OutputFlags {
  json?: boolean;
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

function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) return v.join(", ");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** Runs a command action, turning failures into one line on stderr, a hint, and exit status 1. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      process.stderr.write(`${describe(e)}\n`);
      process.exitCode = 1;
    }
  };
}

export function describe(e: unknown): string {
  if (e instanceof ApiError) {
    const hint =
      e.status === 401
        ? " (run 'mrg login')"
        : e.code === "unreachable"
          ? " (is the portal running? use --portal URL or set MERGE_PORTAL)"
          : e.status === 403 && e.code === "inactive"
            ? " (an administrator activates accounts: mergectl user activate <name>)"
            : "";
    return `error: ${e.message}${e.field ? ` [field: ${e.field}]` : ""}${hint}`;
  }
  if (e instanceof CliError) return `error: ${e.message}`;
  return `error: ${(e as Error).message ?? String(e)}`;
}

/** Adds the options every portal command takes. */
export function portalOptions(cmd: Command): Command {
  return cmd
    .option("--portal <url>", "portal URL (default: the one you signed in to, or $MERGE_PORTAL)")
    .option("--json", "print JSON");
}
