/**
 * The typed portal API client, for the CLI and the web UI (fetch only, no Node
 * APIs). Every method maps to one route; failures throw an ApiError carrying
 * the portal's `{error, message, field?}`.
 */

import { type CatalogCode, errorKind, MergeError } from "@merge/xir/errors";
import type Type from "typebox";
import type { PortalHealth } from "../health.ts";
import type { StorageUsage } from "../routes/storage.ts";
import type * as S from "../schemas.ts";
import type { ApiEmulationValues, ApiLinkEmulation } from "./materialization.ts";

export { formatDuration, parseDuration } from "../duration.ts";
export type { FacilityHealthReport, MaterializationHealth, PortalHealth } from "../health.ts";
export type {
  ApiEmulationValues,
  ApiLinkEmulation,
  FacilityStatus,
  MaterializationStatus,
  NodeControl,
  NodeProfile,
} from "./materialization.ts";
export {
  apiEmulation,
  apiEmulationValues,
  describeControl,
  describeProfile,
  xirEmulation,
  xirEmulationValues,
} from "./materialization.ts";
export { registerSites, type SiteInterconnect, type SiteRecord } from "./sites.ts";

export type User = Type.Static<typeof S.User>;
export type { StorageUsage };
export type Token = Type.Static<typeof S.Token>;
export type IssuedToken = Type.Static<typeof S.IssuedToken>;
export type SshKey = Type.Static<typeof S.SshKey>;
export type Project = Type.Static<typeof S.Project>;
export type Member = Type.Static<typeof S.Member>;
export type Experiment = Type.Static<typeof S.Experiment>;
export type Revision = Type.Static<typeof S.Revision>;
export type RevisionDetail = Type.Static<typeof S.RevisionDetail>;
export type CompileResult = Type.Static<typeof S.CompileResult>;
export type Realization = Type.Static<typeof S.Realization>;
export type Facility = Type.Static<typeof S.Facility>;
/** A wide-area link between two facilities' gateway ports (GET/PUT /interconnects). */
export interface ApiInterconnect {
  id: string;
  a: { facility: string; resource: string; port: string };
  b: { facility: string; resource: string; port: string };
  capacityBps: number;
  latencyNs: number;
  shared: boolean;
}
export type Resource = Type.Static<typeof S.Resource>;
export type Usage = Type.Static<typeof S.Usage>;
export type Health = Type.Static<typeof S.Health>;
export type Pool = Type.Static<typeof S.Pool>;
export type Visibility = "public" | "protected" | "private";
export interface LeaseLimits {
  defaultSeconds: number;
  maxSeconds: number;
  why: string;
  warnSeconds: number[];
}
export interface HistoryEntry {
  at: string;
  kind: string;
  realization: string;
  by: string;
  message: string;
}
/** An audit log entry (src/audit.ts keeps them). */
export interface AuditEntry {
  /** Sorts by time. */
  id: string;
  at: string;
  /** Who (a user name; for sign-ins, the name given). */
  actor: string;
  /** What: `login`, `user.state`, `member.add`, `materialize`, … */
  action: string;
  /** On what: the path's names joined (`r1.demo.proj`, `proj/ivy`), or the user signing in. */
  target: string;
  ok: boolean;
  /** Client address. */
  address: string;
  /** More: the new state, role or visibility; why a sign-in failed. */
  detail?: string;
}
export interface Notice {
  id: string;
  at: string;
  kind: string;
  realization: string;
  message: string;
}
export type MemberRole = "creator" | "maintainer" | "member";
export type ModelLang = "ts" | "py" | "xir";

/** An open shell: send input; `done` resolves with the shell's exit code. */
export interface ShellSession {
  /** Send input; resolves once it is on its way (wait on it to keep a large upload out of memory). */
  stdin(b: Uint8Array): Promise<void>;
  resize(size: { rows: number; cols: number }): void;
  eof(): void;
  close(): void;
  done: Promise<number>;
}

/** A portal answer that is an error, as received: its status, its catalog code and the field to blame. */
export class ApiError extends MergeError<"api"> {
  constructor(
    status: number,
    code: string,
    message: string,
    readonly field?: string,
  ) {
    super("api", errorKind("api", code) ? (code as CatalogCode<"api">) : "internal", message, { status });
  }
}

export interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval?: number;
}

export interface TokenSet {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token?: string;
  id_token?: string;
  scope?: string;
}

const seg = encodeURIComponent;
const mzPath = (p: string, e: string, r: string) =>
  `/projects/${seg(p)}/experiments/${seg(e)}/realizations/${seg(r)}/materialization`;

export type PowerVerb = "start" | "stop" | "reboot" | "cycle" | "reimage";
export interface NodePowerResult {
  node: string;
  resource: string;
  /** on | off (after the change) */
  power: string;
  state: string;
}
/** An experiment development container (`name.project`): routes in src/xdc/plugin.ts. */
export interface Xdc {
  name: string;
  project: string;
  /** `name.project` */
  id: string;
  creator: string;
  created: string;
  jupyter: boolean;
  /** `x0-myproj`: the host name `ssh` uses. */
  hostname: string;
  /** Where the jump host and the portal's proxy reach it. */
  address: string;
  /** `creating`, `running`. */
  state: string;
  /** The materialization it is attached to (`r1.exp.myproj`), if any. */
  attached?: string;
  /** Its address on that materialization's infranet. */
  attachedAddress?: string;
}
export type ExecLine = { stdout: string } | { stderr: string } | { exit: number } | { error: string };

export class PortalClient {
  readonly baseUrl: string;
  token: string | undefined;
  constructor(baseUrl: string, token?: string) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.token = token;
  }

  /**
   * Called once when a call is refused with 401 (e.g. an expired access token):
   * returns a fresh token to retry with, or undefined to give up.
   */
  refresher: (() => Promise<string | undefined>) | undefined;

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await this.callOnce<T>(method, path, body);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401 || this.refresher === undefined) throw e;
      const fresh = await this.refresher().catch(() => undefined);
      if (fresh === undefined) throw e;
      this.token = fresh;
      return this.callOnce<T>(method, path, body);
    }
  }

  private async callOnce<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(
        0,
        "unreachable",
        `cannot reach the portal at ${this.baseUrl}: ${(e as Error).cause ?? (e as Error).message}`,
      );
    }
    const text = await res.text();
    const parsed: unknown = text === "" ? null : safeJson(text);
    if (!res.ok) {
      const e = (parsed ?? {}) as { error?: string; message?: string; field?: string };
      throw new ApiError(res.status, e.error ?? "http_error", e.message ?? `${res.status} ${res.statusText}`, e.field);
    }
    return parsed as T;
  }

  // health and identity
  health = () => this.call<Health>("GET", "/health");
  /** The operations view (administrators). */
  healthDetail = () => this.call<PortalHealth>("GET", "/health/detail");
  register = (r: { name: string; email: string; password: string; fullName?: string }) =>
    this.call<User>("POST", "/users", r);
  login = (username: string, password: string, tokenName?: string) =>
    this.call<IssuedToken>("POST", "/login", { username, password, ...(tokenName ? { tokenName } : {}) });
  whoami = () => this.call<User>("GET", "/whoami");

  // users, keys, tokens
  users = () => this.call<User[]>("GET", "/users");
  user = (u: string) => this.call<User>("GET", `/users/${seg(u)}`);
  /** The user's home and their projects' directories: quota and use. */
  storage = (u: string) => this.call<StorageUsage>("GET", `/users/${seg(u)}/storage`);
  /** A new password for oneself needs `currentPassword`; an administrator resets others' without it. */
  updateUser = (u: string, patch: { email?: string; fullName?: string; password?: string; currentPassword?: string }) =>
    this.call<User>("PATCH", `/users/${seg(u)}`, patch);
  setUserState = (u: string, state: "active" | "frozen", admin?: boolean) =>
    this.call<User>("PUT", `/users/${seg(u)}/state`, { state, ...(admin === undefined ? {} : { admin }) });
  deleteUser = (u: string) => this.call<null>("DELETE", `/users/${seg(u)}`);
  keys = (u: string) => this.call<SshKey[]>("GET", `/users/${seg(u)}/keys`);
  addKey = (u: string, key: string) => this.call<SshKey>("POST", `/users/${seg(u)}/keys`, { key });
  deleteKey = (u: string, fp: string) => this.call<null>("DELETE", `/users/${seg(u)}/keys/${seg(fp)}`);
  tokens = (u: string) => this.call<Token[]>("GET", `/users/${seg(u)}/tokens`);
  createToken = (u: string, name: string, ttlSeconds?: number) =>
    this.call<IssuedToken>("POST", `/users/${seg(u)}/tokens`, { name, ...(ttlSeconds ? { ttlSeconds } : {}) });
  deleteToken = (u: string, id: string) => this.call<null>("DELETE", `/users/${seg(u)}/tokens/${seg(id)}`);

  // XDCs and the SSH jump host
  allXdcs = () => this.call<Xdc[]>("GET", "/xdcs");
  xdcs = (p: string) => this.call<Xdc[]>("GET", `/projects/${seg(p)}/xdcs`);
  xdc = (p: string, x: string) => this.call<Xdc>("GET", `/projects/${seg(p)}/xdcs/${seg(x)}`);
  createXdc = (p: string, x: { name: string; jupyter?: boolean }) =>
    this.call<Xdc>("POST", `/projects/${seg(p)}/xdcs`, x);
  /** Sets this browser's cookie for the XDC's Jupyter proxy; answers the path to open. */
  openJupyter = (p: string, x: string) =>
    this.call<{ url: string }>("POST", `/projects/${seg(p)}/xdcs/${seg(x)}/jupyter`);
  attachXdc = (p: string, x: string, materialization: string) =>
    this.call<Xdc>("PUT", `/projects/${seg(p)}/xdcs/${seg(x)}/attachment`, { materialization });
  detachXdc = (p: string, x: string) => this.call<Xdc>("DELETE", `/projects/${seg(p)}/xdcs/${seg(x)}/attachment`);
  deleteXdc = (p: string, x: string) => this.call<null>("DELETE", `/projects/${seg(p)}/xdcs/${seg(x)}`);
  jumpHost = () => this.call<{ host: string; port: number }>("GET", "/xdcs/jump");

  // projects and members
  projects = () => this.call<Project[]>("GET", "/projects");
  project = (p: string) => this.call<Project>("GET", `/projects/${seg(p)}`);
  createProject = (p: { name: string; description?: string; visibility?: Visibility }) =>
    this.call<Project>("POST", "/projects", p);
  updateProject = (p: string, patch: { description?: string; visibility?: Visibility }) =>
    this.call<Project>("PATCH", `/projects/${seg(p)}`, patch);
  deleteProject = (p: string) => this.call<null>("DELETE", `/projects/${seg(p)}`);
  members = (p: string) => this.call<Member[]>("GET", `/projects/${seg(p)}/members`);
  addMember = (p: string, user: string, role?: MemberRole) =>
    this.call<Member>("POST", `/projects/${seg(p)}/members`, { user, ...(role ? { role } : {}) });
  setMemberRole = (p: string, user: string, role: MemberRole) =>
    this.call<Member>("PATCH", `/projects/${seg(p)}/members/${seg(user)}`, { role });
  removeMember = (p: string, user: string) => this.call<null>("DELETE", `/projects/${seg(p)}/members/${seg(user)}`);

  // experiments and revisions
  experiments = (p: string) => this.call<Experiment[]>("GET", `/projects/${seg(p)}/experiments`);
  experiment = (p: string, e: string) => this.call<Experiment>("GET", `/projects/${seg(p)}/experiments/${seg(e)}`);
  createExperiment = (p: string, e: { name: string; description?: string; visibility?: Visibility }) =>
    this.call<Experiment>("POST", `/projects/${seg(p)}/experiments`, e);
  updateExperiment = (p: string, e: string, patch: { description?: string; visibility?: Visibility }) =>
    this.call<Experiment>("PATCH", `/projects/${seg(p)}/experiments/${seg(e)}`, patch);
  deleteExperiment = (p: string, e: string) => this.call<null>("DELETE", `/projects/${seg(p)}/experiments/${seg(e)}`);
  revisions = (p: string, e: string) =>
    this.call<Revision[]>("GET", `/projects/${seg(p)}/experiments/${seg(e)}/revisions`);
  revision = (p: string, e: string, n: number) =>
    this.call<RevisionDetail>("GET", `/projects/${seg(p)}/experiments/${seg(e)}/revisions/${n}`);
  push = (p: string, e: string, source: string, lang: ModelLang, filename?: string) =>
    this.call<Revision>("POST", `/projects/${seg(p)}/experiments/${seg(e)}/revisions`, {
      source,
      lang,
      ...(filename ? { filename } : {}),
    });
  compile = (source: string, lang: ModelLang, filename?: string) =>
    this.call<CompileResult>("POST", "/compile", { source, lang, ...(filename ? { filename } : {}) });

  // leases, history, notices (routes/leases.ts)
  extendLease = (p: string, e: string, r: string, extendSeconds: number) =>
    this.call<Realization>("POST", `/projects/${seg(p)}/experiments/${seg(e)}/realizations/${seg(r)}/lease`, {
      extendSeconds,
    });
  idleness = (p: string, e: string, r: string) =>
    this.call<{ idleSeconds: number; flagged: boolean; why: string; since: string }>(
      "GET",
      `/projects/${seg(p)}/experiments/${seg(e)}/realizations/${seg(r)}/idle`,
    );
  leaseLimits = (p: string, e: string) =>
    this.call<LeaseLimits>("GET", `/projects/${seg(p)}/experiments/${seg(e)}/lease`);
  history = (p: string, e: string) =>
    this.call<HistoryEntry[]>("GET", `/projects/${seg(p)}/experiments/${seg(e)}/history`);
  notifications = (after?: string) =>
    this.call<Notice[]>("GET", `/notifications${after ? `?after=${encodeURIComponent(after)}` : ""}`);

  /** The audit log (administrators); times are RFC 3339. */
  audit = (
    q: { since?: string; until?: string; actor?: string; action?: string; failed?: boolean; limit?: number } = {},
  ) => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== false) qs.set(k, String(v));
    return this.call<AuditEntry[]>("GET", `/audit${qs.size ? `?${qs}` : ""}`);
  };

  // realizations
  allRealizations = () => this.call<Realization[]>("GET", "/realizations");
  realizations = (p: string, e: string) =>
    this.call<Realization[]>("GET", `/projects/${seg(p)}/experiments/${seg(e)}/realizations`);
  realization = (p: string, e: string, r: string) =>
    this.call<Realization>("GET", `/projects/${seg(p)}/experiments/${seg(e)}/realizations/${seg(r)}`);
  realize = (
    p: string,
    e: string,
    r: { name: string; revision?: number; accept?: boolean; bestEffort?: boolean; durationSeconds?: number },
  ) => this.call<Realization>("POST", `/projects/${seg(p)}/experiments/${seg(e)}/realizations`, r);
  accept = (p: string, e: string, r: string) =>
    this.call<Realization>("POST", `/projects/${seg(p)}/experiments/${seg(e)}/realizations/${seg(r)}/accept`);
  reject = (p: string, e: string, r: string) =>
    this.call<null>("POST", `/projects/${seg(p)}/experiments/${seg(e)}/realizations/${seg(r)}/reject`);
  relinquish = (p: string, e: string, r: string) =>
    this.call<null>("DELETE", `/projects/${seg(p)}/experiments/${seg(e)}/realizations/${seg(r)}`);

  // materialized nodes and links (emulation in base units named in each field: latencyNs, capacityBps, lossFraction)
  nodePower = (p: string, e: string, r: string, node: string, action: PowerVerb, hard?: boolean) =>
    this.call<NodePowerResult>("POST", `${mzPath(p, e, r)}/nodes/${seg(node)}/power`, {
      action,
      ...(hard === undefined ? {} : { hard }),
    });
  /** Change an emulated link in every direction, or only `toward` one endpoint's node. */
  setEmulation = (p: string, e: string, r: string, link: string, change: ApiEmulationValues, toward?: string) =>
    this.call<{ link: string; emulator: string; emulation: ApiLinkEmulation }>(
      "POST",
      `${mzPath(p, e, r)}/links/${seg(link)}/emulation`,
      { ...change, ...(toward !== undefined ? { toward } : {}) },
    );

  /** Run a command in a node: its output as it comes, ending with `{exit}`. Refusals throw ApiError before any output. */
  async *exec(
    p: string,
    e: string,
    r: string,
    node: string,
    argv: string[],
    opts: { timeoutSec?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<ExecLine> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${mzPath(p, e, r)}/nodes/${seg(node)}/exec`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }),
        },
        body: JSON.stringify({ argv, ...(opts.timeoutSec ? { timeoutSec: opts.timeoutSec } : {}) }),
        signal: opts.signal,
      });
    } catch (err) {
      throw new ApiError(0, "unreachable", `cannot reach the portal at ${this.baseUrl}: ${(err as Error).message}`);
    }
    if (!res.ok || !res.body) {
      const b = (safeJson(await res.text()) ?? {}) as { error?: string; message?: string; field?: string };
      throw new ApiError(res.status, b.error ?? "http_error", b.message ?? `${res.status} ${res.statusText}`, b.field);
    }
    const text = new TextDecoder();
    let buf = "";
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += text.decode(value, { stream: true });
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line) yield JSON.parse(line) as ExecLine;
        nl = buf.indexOf("\n");
      }
    }
  }

  /**
   * Open an interactive shell in a node (WebSocket), or with `argv` run a
   * command there whose stdin is what `stdin` sends until `eof`. Resolves once
   * the portal accepted it; refusals (not signed in, not allowed, unknown node)
   * throw ApiError. Output arrives through `on`; `done` resolves with the exit code.
   */
  async shell(
    p: string,
    e: string,
    r: string,
    node: string,
    opts: { tty: boolean; size?: { rows: number; cols: number }; argv?: string[]; timeoutSec?: number },
    on: { stdout(b: Uint8Array): void; stderr(t: string): void },
  ): Promise<ShellSession> {
    const q = new URLSearchParams({ tty: opts.tty ? "1" : "0" });
    if (opts.size) {
      q.set("rows", String(opts.size.rows));
      q.set("cols", String(opts.size.cols));
    }
    for (const a of opts.argv ?? []) q.append("argv", a);
    if (opts.timeoutSec) q.set("timeoutSec", String(opts.timeoutSec));
    const url = `${this.baseUrl.replace(/^http/, "ws")}${mzPath(p, e, r)}/nodes/${seg(node)}/shell?${q}`;
    // Loaded here: only a shell needs it, and every command line loads this client.
    const { default: WebSocket } = await import("ws");
    const ws = new WebSocket(url, {
      headers: this.token === undefined ? {} : { authorization: `Bearer ${this.token}` },
    });
    return new Promise((resolve, reject) => {
      // With this listener ws leaves the refused connection open: read the answer, then drop it.
      ws.once("unexpected-response", (req, res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => {
          const b = (safeJson(body) ?? {}) as { error?: string; message?: string; field?: string };
          const status = res.statusCode ?? 0;
          res.socket?.destroy();
          req.destroy();
          reject(new ApiError(status, b.error ?? "http_error", b.message ?? `${status} ${res.statusMessage}`, b.field));
        });
      });
      ws.once("error", (err) =>
        reject(new ApiError(0, "unreachable", `cannot reach the portal at ${this.baseUrl}: ${err.message}`)),
      );
      const done = new Promise<number>((res, rej) => {
        let exit: number | undefined;
        let error: string | undefined;
        ws.on("message", (data, binary) => {
          const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
          if (binary) return on.stdout(new Uint8Array(buf));
          const m = (safeJson(buf.toString("utf8")) ?? {}) as { stderr?: string; exit?: number; error?: string };
          if (typeof m.stderr === "string") on.stderr(m.stderr);
          if (typeof m.exit === "number") exit = m.exit;
          if (typeof m.error === "string") error = m.error;
        });
        ws.on("close", () => {
          if (exit !== undefined) res(exit);
          else rej(new ApiError(0, "shell_failed", error ?? "the shell's connection closed without an exit code"));
        });
      });
      done.catch(() => {});
      ws.once("open", () => {
        const ready = ws.readyState === WebSocket.OPEN;
        resolve({
          stdin: (b) =>
            new Promise<void>((sent) => {
              if (ready && ws.readyState === WebSocket.OPEN) ws.send(b, { binary: true }, () => sent());
              else sent();
            }),
          resize: (size) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ resize: size })),
          eof: () => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ eof: true })),
          close: () => ws.close(),
          done,
        });
      });
    });
  }

  // facilities and resources
  facilities = () => this.call<Facility[]>("GET", "/facilities");
  facility = (f: string) => this.call<Facility>("GET", `/facilities/${seg(f)}`);
  facilityModel = (f: string) => this.call<unknown>("GET", `/facilities/${seg(f)}/model`);
  registerFacility = (f: {
    name: string;
    endpoint: string;
    model: unknown;
    description?: string;
    certificate?: string;
    state?: "active" | "inactive";
  }) => this.call<Facility>("POST", "/facilities", f);
  updateFacility = (
    f: string,
    patch: {
      endpoint?: string;
      model?: unknown;
      description?: string;
      certificate?: string;
      state?: "active" | "inactive";
    },
  ) => this.call<Facility>("PATCH", `/facilities/${seg(f)}`, patch);
  deleteFacility = (f: string) => this.call<null>("DELETE", `/facilities/${seg(f)}`);
  interconnects = () => this.call<ApiInterconnect[]>("GET", "/interconnects");
  /** Create or replace the interconnect `id` (administrators). */
  putInterconnect = (id: string, ic: Omit<ApiInterconnect, "id" | "shared"> & { shared?: boolean }) =>
    this.call<ApiInterconnect>("PUT", `/interconnects/${seg(id)}`, ic);
  deleteInterconnect = (id: string) => this.call<null>("DELETE", `/interconnects/${seg(id)}`);
  resources = (q: { facility?: string; allocated?: boolean } = {}) => {
    const qs = new URLSearchParams();
    if (q.facility) qs.set("facility", q.facility);
    if (q.allocated !== undefined) qs.set("allocated", String(q.allocated));
    const s = qs.toString();
    return this.call<Resource[]>("GET", `/resources${s ? `?${s}` : ""}`);
  };
  usage = () => this.call<Usage>("GET", "/usage");
  pools = () => this.call<Pool[]>("GET", "/pools");
  pool = (p: string) => this.call<Pool>("GET", `/pools/${seg(p)}`);
  createPool = (p: { name: string; projects: string[]; resources: string[]; description?: string }) =>
    this.call<Pool>("POST", "/pools", p);
  updatePool = (p: string, patch: { projects?: string[]; resources?: string[]; description?: string }) =>
    this.call<Pool>("PATCH", `/pools/${seg(p)}`, patch);
  deletePool = (p: string) => this.call<null>("DELETE", `/pools/${seg(p)}`);

  // OAuth2 device authorization (RFC 8628) against the embedded provider
  async deviceAuthorization(clientId = "mrg", scope = "openid api offline_access"): Promise<DeviceAuthorization> {
    return this.form<DeviceAuthorization>("/oidc/device/auth", { client_id: clientId, scope });
  }
  /** Polls the token endpoint until the user approves, denies, or the code expires. */
  async pollDeviceToken(
    d: DeviceAuthorization,
    clientId = "mrg",
    sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)),
  ): Promise<TokenSet> {
    let interval = Math.max(1, d.interval ?? 5) * 1000;
    const deadline = Date.now() + d.expires_in * 1000;
    while (Date.now() < deadline) {
      await sleep(interval);
      try {
        return await this.form<TokenSet>("/oidc/token", {
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          device_code: d.device_code,
          client_id: clientId,
        });
      } catch (e) {
        if (e instanceof ApiError && e.code === "authorization_pending") continue;
        if (e instanceof ApiError && e.code === "slow_down") {
          interval += 5000;
          continue;
        }
        throw e;
      }
    }
    throw new ApiError(400, "expired_token", "the sign-in code expired; run 'mrg login' again");
  }

  /** A new access token from a refresh token (the refresh token may rotate). */
  async refreshTokens(refreshToken: string, clientId = "mrg"): Promise<TokenSet> {
    return this.form<TokenSet>("/oidc/token", {
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      client_id: clientId,
    });
  }

  private async form<T>(path: string, fields: Record<string, string>): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(fields).toString(),
      });
    } catch (e) {
      throw new ApiError(
        0,
        "unreachable",
        `cannot reach the portal at ${this.baseUrl}: ${(e as Error).cause ?? (e as Error).message}`,
      );
    }
    const body = safeJson(await res.text()) as Record<string, string> | null;
    if (!res.ok) {
      throw new ApiError(
        res.status,
        body?.error ?? "http_error",
        body?.error_description ?? body?.error ?? `${res.status}`,
      );
    }
    return body as T;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { error: "bad_response", message: text.slice(0, 500) };
  }
}
