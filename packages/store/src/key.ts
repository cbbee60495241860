/**
 * Keys are non-empty, well-formed Unicode strings, ordered as etcd orders them: by
 * their UTF-8 bytes (which is code-point order, not JavaScript's UTF-16 order).
 */
import { StoreError } from "./errors.ts";

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function checkKey(key: unknown, what = "key"): string {
  if (typeof key !== "string") throw new StoreError("invalid", `${what} must be a string, got ${typeof key}`);
  if (key === "") throw new StoreError("invalid", `${what} must not be empty`);
  if (loneSurrogate.test(key))
    throw new StoreError("invalid", `${what} ${JSON.stringify(key)} is not well-formed Unicode`);
  return key;
}

export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== "string") throw new StoreError("invalid", `prefix must be a string, got ${typeof prefix}`);
  if (loneSurrogate.test(prefix))
    throw new StoreError("invalid", `prefix ${JSON.stringify(prefix)} is not well-formed Unicode`);
  return prefix;
}

export function checkValue(value: unknown, key: string): string {
  if (typeof value !== "string")
    throw new StoreError("invalid", `value of ${JSON.stringify(key)} must be a string, got ${typeof value}`);
  return value;
}

/** Compares two keys by code point, which is the UTF-8 byte order etcd and SQLite use. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (a code point above U+FFFF) sorts after every BMP character.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** The first byte string after every key that starts with `prefix`; undefined = no end. */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}
