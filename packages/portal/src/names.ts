/**
 * Object names. One strict pattern for users, projects, experiments,
 * realizations, facilities and tokens: lowercase letters and digits, starting
 * with a letter, at most 32 characters. Names become store keys, directory
 * names under the data directory and parts of `rlz.exp.proj`, so nothing that
 * could be a separator (`.`, `/`) or a traversal (`..`) can ever pass.
 */
import { badRequest } from "./errors.ts";

export const NAME_PATTERN = "^[a-z][a-z0-9]{0,31}$";
const nameRe = new RegExp(NAME_PATTERN);

export function isName(s: string): boolean {
  return nameRe.test(s);
}

/** Throws a 400 naming the field when `s` is not a valid name. */
export function checkName(s: string, field: string): string {
  if (!isName(s)) {
    throw badRequest(
      `${field} '${s.slice(0, 64)}' is not a valid name: use 1-32 lowercase letters and digits, starting with a letter`,
      field,
    );
  }
  return s;
}

/** `rlz.exp.proj` → parts; `exp.proj` → parts. Every part must be a name. */
export function splitHierarchical(id: string, parts: number): string[] | undefined {
  const p = id.split(".");
  if (p.length !== parts || !p.every(isName)) return undefined;
  return p;
}
