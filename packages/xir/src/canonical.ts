/**
 * Canonical JSON: object keys sorted, no insignificant whitespace, `undefined`
 * members dropped. Two equal documents have byte-identical canonical forms, so
 * revisions can be hashed and compared.
 */
import { createHash } from "node:crypto";

export function canonicalJSON(value: unknown): string {
  const parts: string[] = [];
  write(value, parts);
  return parts.join("");
}

function write(value: unknown, out: string[]): void {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new TypeError(`canonicalJSON: ${value} is not representable in JSON`);
    }
    out.push(JSON.stringify(value) ?? "null");
    return;
  }
  if (Array.isArray(value)) {
    out.push("[");
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(",");
      write(value[i] === undefined ? null : value[i], out);
    }
    out.push("]");
    return;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  out.push("{");
  keys.forEach((k, i) => {
    if (i > 0) out.push(",");
    out.push(JSON.stringify(k), ":");
    write(obj[k], out);
  });
  out.push("}");
}

/** sha256 of the canonical form, hex. */
export function canonicalHash(value: unknown): string {
  return createHash("sha256").update(canonicalJSON(value)).digest("hex");
}
