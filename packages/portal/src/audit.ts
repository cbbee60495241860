/**
 * The audit log: security-relevant actions, who did them, from where, and
 * whether they succeeded. Sign-ins (and failed ones, with the reason, which
 * only administrators see), and every successful change that matters to
 * access or to who holds what: account registration, activation and freeze,
 * tokens and keys, projects and their members, experiment visibility, pools,
 * facilities, realizations, materializations, lease extensions.
 *
 * Writes come from one Fastify hook over a table of audited routes (so no
 * route forgets, and routes stay free of audit code) and from the identity's
 * sign-in hook. Entries are keys by time under `portal/audit/`, on a store
 * lease (AUDIT_KEPT_DAYS), queried by administrators: `GET /audit`,
 * `mergectl audit`.
 */
import { randomBytes } from "node:crypto";
import type { Store } from "@merge/store";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { AuditEntry } from "./client/index.ts";

export const AUDIT_KEPT_DAYS = 365;
const PREFIX = "portal/audit/";

export type { AuditEntry };

/** Audited routes: `METHOD route-pattern` → action, and which body field (if any) is its detail. */
const AUDITED: Record<string, { action: string; detail?: string }> = {
  "POST /users": { action: "user.register" },
  "PUT /users/:user/state": { action: "user.state", detail: "state" },
  "PATCH /users/:user": { action: "user.update" },
  "DELETE /users/:user": { action: "user.delete" },
  "POST /users/:user/tokens": { action: "token.create", detail: "name" },
  "DELETE /users/:user/tokens/:id": { action: "token.revoke" },
  "POST /users/:user/keys": { action: "key.add" },
  "DELETE /users/:user/keys/:fingerprint": { action: "key.remove" },
  "POST /projects": { action: "project.create", detail: "visibility" },
  "PATCH /projects/:project": { action: "project.update", detail: "visibility" },
  "DELETE /projects/:project": { action: "project.delete" },
  "POST /projects/:project/members": { action: "member.add", detail: "role" },
  "PATCH /projects/:project/members/:user": { action: "member.role", detail: "role" },
  "DELETE /projects/:project/members/:user": { action: "member.remove" },
  "PATCH /projects/:project/experiments/:experiment": { action: "experiment.update", detail: "visibility" },
  "DELETE /projects/:project/experiments/:experiment": { action: "experiment.delete" },
  "POST /pools": { action: "pool.create" },
  "PATCH /pools/:pool": { action: "pool.update" },
  "DELETE /pools/:pool": { action: "pool.delete" },
  "POST /facilities": { action: "facility.register" },
  "PATCH /facilities/:facility": { action: "facility.update", detail: "state" },
  "DELETE /facilities/:facility": { action: "facility.delete" },
  "POST /projects/:project/experiments/:experiment/realizations": { action: "realize", detail: "name" },
  "POST /projects/:project/experiments/:experiment/realizations/:realization/accept": { action: "accept" },
  "DELETE /projects/:project/experiments/:experiment/realizations/:realization": { action: "relinquish" },
  "POST /projects/:project/experiments/:experiment/realizations/:realization/lease": {
    action: "lease.extend",
    detail: "extendSeconds",
  },
  "POST /projects/:project/experiments/:experiment/realizations/:realization/materialization": {
    action: "materialize",
  },
  "DELETE /projects/:project/experiments/:experiment/realizations/:realization/materialization": {
    action: "dematerialize",
  },
  "POST /projects/:project/experiments/:experiment/realizations/:realization/materialization/nodes/:node/exec": {
    action: "exec",
  },
  "GET /projects/:project/experiments/:experiment/realizations/:realization/materialization/nodes/:node/shell": {
    action: "shell",
  },
};

/** The target named by a request's path parameters: `rlz.exp.proj` style for realizations, else joined. */
function targetOf(params: Record<string, string>): string {
  const { project, experiment, realization, user, node, facility, pool, id, fingerprint } = params;
  if (realization && experiment && project)
    return `${realization}.${experiment}.${project}${node ? ` node ${node}` : ""}`;
  if (experiment && project) return `${experiment}.${project}`;
  if (project) return user ? `${project}/${user}` : project;
  return [user, id ?? fingerprint, facility, pool].filter(Boolean).join("/") || "-";
}

export interface AuditQuery {
  /** ISO time or ms: entries at or after. */
  since?: number;
  until?: number;
  actor?: string;
  action?: string;
  /** Only failures. */
  failed?: boolean;
  limit?: number;
}

export class AuditLog {
  private lease: { id: string; at: number } | undefined;
  /** Writes not yet in the store (a failed write is reported, never lost silently). */
  private pending: Promise<unknown> = Promise.resolve();

  constructor(private readonly store: Store) {}

  record(e: Omit<AuditEntry, "id" | "at">, at = Date.now()): Promise<void> {
    const entry: AuditEntry = {
      id: `${String(at).padStart(15, "0")}-${randomBytes(4).toString("hex")}`,
      at: new Date(at).toISOString(),
      ...e,
    };
    const write = (async () => {
      await this.store.txn({
        compare: [],
        success: [{ op: "put", key: `${PREFIX}${entry.id}`, value: JSON.stringify(entry), lease: await this.kept() }],
      });
    })().catch((err: Error) => {
      process.stderr.write(`portal: audit entry ${entry.action} not stored: ${err.message}\n`);
    });
    this.pending = Promise.all([this.pending, write]);
    return write;
  }

  /** Resolves when every entry recorded so far is stored (tests, shutdown). */
  flush(): Promise<unknown> {
    return this.pending;
  }

  /** One store lease per day of entries, so they age out together. */
  private async kept(): Promise<string> {
    if (this.lease === undefined || Date.now() - this.lease.at > 86_400_000) {
      this.lease = { id: await this.store.grant(AUDIT_KEPT_DAYS * 86_400), at: Date.now() };
    }
    return this.lease.id;
  }

  /** Entries matching `q`, newest last; at most `limit` (default 500), the newest ones. */
  async query(q: AuditQuery = {}): Promise<AuditEntry[]> {
    await this.flush();
    const all = (await this.store.range(PREFIX)).map((kv) => JSON.parse(kv.value) as AuditEntry);
    const out = all.filter((e) => {
      const t = Date.parse(e.at);
      return (
        (q.since === undefined || t >= q.since) &&
        (q.until === undefined || t <= q.until) &&
        (q.actor === undefined || e.actor === q.actor) &&
        (q.action === undefined || e.action === q.action || e.action.startsWith(`${q.action}.`)) &&
        (q.failed !== true || !e.ok)
      );
    });
    return out.slice(-(q.limit ?? 500));
  }

  /** Records every audited route's outcome (successes; refusals by the policy too, as failures). */
  install(app: FastifyInstance): void {
    app.addHook("onResponse", async (req: FastifyRequest, reply) => {
      const rule = AUDITED[`${req.method} ${req.routeOptions.url}`];
      if (rule === undefined) return;
      const status = reply.statusCode;
      // Only what was done, or refused for want of rights: not validation errors, not missing objects.
      if (status >= 300 && status !== 401 && status !== 403 && status !== 409) return;
      const body = (req.body ?? {}) as Record<string, unknown>;
      const detail = rule.detail === undefined ? undefined : body[rule.detail];
      void this.record({
        actor:
          req.principal?.user.name ??
          (rule.action === "user.register" ? String(body.name ?? "-") : status === 401 ? "(not signed in)" : "-"),
        action: rule.action,
        target:
          rule.action === "user.register" || rule.action === "project.create"
            ? String(body.name ?? "-")
            : rule.action === "member.add"
              ? `${(req.params as { project: string }).project}/${String(body.user ?? "-")}`
              : targetOf(req.params as Record<string, string>),
        ok: status < 300,
        address: req.ip,
        ...(detail !== undefined ? { detail: String(detail) } : status >= 300 ? { detail: `HTTP ${status}` } : {}),
      });
    });
  }
}
