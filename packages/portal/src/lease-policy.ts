/**
 * Lease terms: how long an accepted realization holds its resources. The
 * `lease` section of the policy file gives a default and a maximum (for
 * everyone, per project, per role), when to warn before expiry, and the idle
 * limit of a materialization. Durations are written `90m`, `48h`, `7d`, `2w`
 * (or whole seconds). Errors name the file and the field.
 *
 *   lease:
 *     default: 7d          # what `mrg realize` holds without --duration
 *     max: 30d             # the longest a realization may be held, counted from its accept
 *     warn: [24h, 1h]      # notices before expiry
 *     projects:
 *       big: {default: 14d, max: 90d}
 *     roles:
 *       Portal.Admin: {max: 365d}
 *     idle:
 *       after: 12h         # a materialization without activity this long counts as idle
 *       reclaim: false     # true: reclaimed (dematerialized, relinquished) `grace` after the idle notice
 *       grace: 1h
 */
import { parse } from "yaml";
import { formatDuration, parseDuration } from "./duration.ts";
import { PolicyError, ROLES, type Role } from "./policy.ts";

export { formatDuration, parseDuration };

export interface LeaseLimits {
  /** Seconds held when the realize asks for no duration. */
  defaultSeconds: number;
  /** Longest hold, seconds from accept (extensions included). */
  maxSeconds: number;
}

export interface IdleTerms {
  /** Seconds without activity after which a materialization counts as idle (0: never). */
  afterSeconds: number;
  /** Reclaim idle materializations (after a notice and `graceSeconds`). */
  reclaim: boolean;
  graceSeconds: number;
}

export interface LeaseTerms extends LeaseLimits {
  /** Notices this many seconds before expiry, longest first. */
  warnSeconds: number[];
  projects: Record<string, Partial<LeaseLimits>>;
  roles: Partial<Record<Role, Partial<LeaseLimits>>>;
  idle: IdleTerms;
}

const DAY = 86_400;
export const DEFAULT_LEASE: LeaseTerms = {
  defaultSeconds: 7 * DAY,
  maxSeconds: 30 * DAY,
  warnSeconds: [DAY, 3600],
  projects: {},
  roles: {},
  idle: { afterSeconds: 0, reclaim: false, graceSeconds: 3600 },
};

function duration(v: unknown, where: string): number {
  const s = typeof v === "number" ? v : typeof v === "string" ? parseDuration(v) : undefined;
  if (s === undefined || !Number.isSafeInteger(s) || s < 0) {
    throw new PolicyError(
      `${where}: expected a duration like 90m, 48h, 7d or 2w (or whole seconds), got ${JSON.stringify(v)}`,
    );
  }
  return s;
}

function mapping(v: unknown, where: string, expect: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new PolicyError(`${where}: expected ${expect}`);
  return v as Record<string, unknown>;
}

function limits(v: unknown, where: string): Partial<LeaseLimits> {
  const out: Partial<LeaseLimits> = {};
  for (const [k, x] of Object.entries(mapping(v, where, "{default: DURATION, max: DURATION}"))) {
    if (k === "default") out.defaultSeconds = duration(x, `${where}.default`);
    else if (k === "max") out.maxSeconds = duration(x, `${where}.max`);
    else throw new PolicyError(`${where}.${k}: unknown field; known: default, max`);
  }
  return out;
}

/** The `lease` section of a policy document; defaults where it says nothing. */
export function parseLease(text: string, file = "<policy>"): LeaseTerms {
  const doc = parse(text) as { lease?: unknown } | null;
  if (doc?.lease === undefined || doc.lease === null) return DEFAULT_LEASE;
  const w = `${file}: lease`;
  const out: LeaseTerms = { ...DEFAULT_LEASE, projects: {}, roles: {}, idle: { ...DEFAULT_LEASE.idle } };
  for (const [k, v] of Object.entries(mapping(doc.lease, w, "a mapping (default, max, warn, projects, roles, idle)"))) {
    if (k === "default") out.defaultSeconds = duration(v, `${w}.default`);
    else if (k === "max") out.maxSeconds = duration(v, `${w}.max`);
    else if (k === "warn") {
      if (!Array.isArray(v)) throw new PolicyError(`${w}.warn: expected a list of durations, e.g. [24h, 1h]`);
      out.warnSeconds = v.map((x, i) => duration(x, `${w}.warn[${i}]`)).sort((a, b) => b - a);
    } else if (k === "projects") {
      for (const [p, x] of Object.entries(mapping(v, `${w}.projects`, "a mapping of project names"))) {
        out.projects[p] = limits(x, `${w}.projects.${p}`);
      }
    } else if (k === "roles") {
      for (const [r, x] of Object.entries(mapping(v, `${w}.roles`, "a mapping of roles"))) {
        if (!(ROLES as readonly string[]).includes(r))
          throw new PolicyError(`${w}.roles.${r}: unknown role; known: ${ROLES.join(", ")}`);
        out.roles[r as Role] = limits(x, `${w}.roles.${r}`);
      }
    } else if (k === "idle") {
      for (const [f, x] of Object.entries(
        mapping(v, `${w}.idle`, "{after: DURATION, reclaim: BOOL, grace: DURATION}"),
      )) {
        if (f === "after") out.idle.afterSeconds = duration(x, `${w}.idle.after`);
        else if (f === "grace") out.idle.graceSeconds = duration(x, `${w}.idle.grace`);
        else if (f === "reclaim") {
          if (typeof x !== "boolean") throw new PolicyError(`${w}.idle.reclaim: expected true or false`);
          out.idle.reclaim = x;
        } else throw new PolicyError(`${w}.idle.${f}: unknown field; known: after, reclaim, grace`);
      }
    } else throw new PolicyError(`${w}.${k}: unknown field; known: default, max, warn, projects, roles, idle`);
  }
  for (const [where, l] of [
    ["", out] as const,
    ...Object.entries(out.projects).map(([p, l]) => [`.projects.${p}`, l] as const),
  ]) {
    if (l.defaultSeconds !== undefined && l.maxSeconds !== undefined && l.defaultSeconds > l.maxSeconds)
      throw new PolicyError(
        `${w}${where}: default (${formatDuration(l.defaultSeconds)}) is longer than max (${formatDuration(l.maxSeconds)})`,
      );
  }
  return out;
}

/**
 * The limits for a realization in `project` by a caller holding `roles`: the project's entry over the
 * base, then the most generous role entry (a role lifts the maximum, never lowers it).
 */
export function leaseLimits(terms: LeaseTerms, project: string, roles: Iterable<Role>): LeaseLimits & { why: string } {
  const p = terms.projects[project];
  let out = {
    defaultSeconds: p?.defaultSeconds ?? terms.defaultSeconds,
    maxSeconds: p?.maxSeconds ?? terms.maxSeconds,
    why: p?.maxSeconds !== undefined ? `project ${project}` : "the portal's policy",
  };
  for (const r of roles) {
    const l = terms.roles[r];
    if (l === undefined) continue;
    if (l.maxSeconds !== undefined && l.maxSeconds > out.maxSeconds)
      out = { ...out, maxSeconds: l.maxSeconds, why: `role ${r}` };
    if (l.defaultSeconds !== undefined && l.defaultSeconds > out.defaultSeconds)
      out = { ...out, defaultSeconds: Math.min(l.defaultSeconds, out.maxSeconds) };
  }
  out.defaultSeconds = Math.min(out.defaultSeconds, out.maxSeconds);
  return out;
}
