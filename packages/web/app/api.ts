/**
 * The portal API from the browser: the portal's own typed client (fetch only)
 * on this origin with the session's token, plus the materialization calls the
 * client does not have yet (power and emulation changes come from the client itself). A 401 ends the session: the UI then says so.
 */
import { ApiError, type MaterializationStatus, PortalClient } from "@merge/portal/client";
import { currentSession, endSession } from "./session.ts";

export type {
  Experiment,
  MaterializationStatus,
  PowerVerb,
  Project,
  Realization,
  Revision,
  RevisionDetail,
  SshKey,
  StorageUsage,
  Usage,
  User,
  Xdc,
} from "@merge/portal/client";
export { ApiError };

export class SessionExpired extends Error {
  constructor() {
    super("session expired: sign in again");
    this.name = "SessionExpired";
  }
}

class WebClient extends PortalClient {
  private async raw<T>(method: string, path: string): Promise<T> {
    const res = await fetch(path, {
      method,
      headers: this.token === undefined ? {} : { authorization: `Bearer ${this.token}` },
    });
    const text = await res.text();
    let body: { error?: string; message?: string } | null = null;
    try {
      body = text === "" ? null : (JSON.parse(text) as typeof body);
    } catch {
      body = { error: "bad_response", message: text.slice(0, 300) };
    }
    if (!res.ok) throw new ApiError(res.status, body?.error ?? "http_error", body?.message ?? `HTTP ${res.status}`);
    return body as T;
  }
  private mzPath = (p: string, e: string, r: string) =>
    `/projects/${encodeURIComponent(p)}/experiments/${encodeURIComponent(e)}/realizations/${encodeURIComponent(r)}/materialization`;
  materialization = (p: string, e: string, r: string) => this.raw<MaterializationStatus>("GET", this.mzPath(p, e, r));
  materialize = (p: string, e: string, r: string) => this.raw<unknown>("POST", this.mzPath(p, e, r));
  dematerialize = (p: string, e: string, r: string) => this.raw<unknown>("DELETE", this.mzPath(p, e, r));
}

export type Api = WebClient;

/** A client for this origin with the current session's token; throws SessionExpired when there is none. */
export function api(): Api {
  const s = currentSession();
  if (s === undefined) throw new SessionExpired();
  return new WebClient("", s.token);
}

/** A client for this origin without a session: registration is public. */
export function publicApi(): Api {
  return new WebClient("");
}

/** Runs an API call; a 401 ends the session and becomes SessionExpired. */
export async function call<T>(f: (a: Api) => Promise<T>): Promise<T> {
  try {
    return await f(api());
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      endSession(true);
      throw new SessionExpired();
    }
    throw e;
  }
}

/** What to show for a failure: the portal's own message where there is one. */
export function describeError(e: unknown): string {
  if (e instanceof SessionExpired) return e.message;
  if (e instanceof ApiError) return `${e.message}${e.field ? ` (field ${e.field})` : ""} [${e.status} ${e.code}]`;
  return e instanceof Error ? e.message : String(e);
}
