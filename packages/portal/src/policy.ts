/**
 * The declarative access policy: per object type and visibility, which roles
 * may create, read, update and delete. Loaded once at start from YAML (see
 * policy.default.yml for the format and the default), evaluated by one hook
 * on every route (see access.ts).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MergeError } from "@merge/xir/errors";
import { parse } from "yaml";

export const ACTIONS = ["create", "read", "update", "delete"] as const;
export type Action = (typeof ACTIONS)[number];
export const OBJECTS = [
  "user",
  "key",
  "token",
  "project",
  "member",
  "experiment",
  "visibility",
  "revision",
  "realization",
  "compile",
  "resource",
  "usage",
  "pool",
  "facility",
  "xdc",
] as const;
export type ObjectType = (typeof OBJECTS)[number];
export const ROLES = [
  "Any.Any",
  "User.Self",
  "Project.Creator",
  "Project.Maintainer",
  "Project.Member",
  "Experiment.Creator",
  "Portal.Admin",
] as const;
export type Role = (typeof ROLES)[number];
export type PolicyVisibility = "public" | "protected" | "private" | "any";
const VISIBILITIES: PolicyVisibility[] = ["public", "protected", "private", "any"];

export type Policy = Record<ObjectType, Partial<Record<PolicyVisibility, Record<Action, Role[]>>>>;

export const DEFAULT_POLICY_FILE = fileURLToPath(new URL("../policy.default.yml", import.meta.url));

export class PolicyError extends MergeError<"policy"> {
  constructor(message: string, options?: ErrorOptions) {
    super("policy", "invalid", message, options);
  }
}

/** Parses and checks a policy document; errors name the file and the path of the bad entry. */
export function parsePolicy(text: string, file = "<policy>"): Policy {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new PolicyError(`${file}: not valid YAML: ${(e as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new PolicyError(`${file}: expected a mapping of object types (${OBJECTS.join(", ")})`);
  }
  const out: Partial<Policy> = {};
  for (const [obj, byVis] of Object.entries(doc)) {
    if (obj === "quota" || obj === "lease") continue; // limits, not access rules: quota.ts and lease-policy.ts read them
    if (!(OBJECTS as readonly string[]).includes(obj)) {
      throw new PolicyError(`${file}: unknown object type '${obj}'; known: ${OBJECTS.join(", ")}`);
    }
    if (typeof byVis !== "object" || byVis === null || Array.isArray(byVis)) {
      throw new PolicyError(`${file}: ${obj}: expected a mapping of visibilities (${VISIBILITIES.join(", ")})`);
    }
    const entry: Partial<Record<PolicyVisibility, Record<Action, Role[]>>> = {};
    for (const [vis, rules] of Object.entries(byVis as Record<string, unknown>)) {
      if (!(VISIBILITIES as string[]).includes(vis)) {
        throw new PolicyError(`${file}: ${obj}.${vis}: unknown visibility; known: ${VISIBILITIES.join(", ")}`);
      }
      if (typeof rules !== "object" || rules === null || Array.isArray(rules)) {
        throw new PolicyError(`${file}: ${obj}.${vis}: expected create/read/update/delete lists`);
      }
      const r = {} as Record<Action, Role[]>;
      for (const [action, roles] of Object.entries(rules as Record<string, unknown>)) {
        if (!(ACTIONS as readonly string[]).includes(action)) {
          throw new PolicyError(`${file}: ${obj}.${vis}.${action}: unknown action; known: ${ACTIONS.join(", ")}`);
        }
        if (!Array.isArray(roles)) throw new PolicyError(`${file}: ${obj}.${vis}.${action}: expected a list of roles`);
        for (const role of roles) {
          if (!(ROLES as readonly string[]).includes(role)) {
            throw new PolicyError(
              `${file}: ${obj}.${vis}.${action}: unknown role '${role}'; known: ${ROLES.join(", ")}`,
            );
          }
        }
        r[action as Action] = roles as Role[];
      }
      for (const a of ACTIONS) r[a] ??= [];
      entry[vis as PolicyVisibility] = r;
    }
    out[obj as ObjectType] = entry;
  }
  for (const o of OBJECTS) {
    if (out[o] === undefined) throw new PolicyError(`${file}: no rules for object type '${o}'`);
  }
  return out as Policy;
}

export function loadPolicy(file = DEFAULT_POLICY_FILE): Policy {
  return parsePolicy(readFileSync(file, "utf8"), file);
}

/**
 * Whether a caller holding `roles` may do `action` on an `object` of
 * `visibility`. A missing visibility entry falls back to `any`; nothing listed
 * means nobody (except admins) may.
 */
export function allows(
  policy: Policy,
  object: ObjectType,
  visibility: PolicyVisibility,
  action: Action,
  roles: ReadonlySet<Role>,
): boolean {
  if (roles.has("Portal.Admin")) return true;
  const rules = policy[object][visibility] ?? policy[object].any;
  if (rules === undefined) return false;
  return rules[action].some((r) => roles.has(r));
}
