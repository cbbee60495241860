/**
 * Credential-guessing throttle. Every place the portal checks a secret
 * (passwords, API tokens, access tokens, device user codes, token-endpoint
 * grants) counts failures per account and per client address; a key with too
 * many failures inside the window is locked for a while, the lock doubling with
 * each further failure up to a ceiling (exponential backoff). While a key is
 * locked the secret is not even looked at: the right password is refused like
 * a wrong one, so a lock is no oracle. A success clears the account's count,
 * never the address's (one good account must not reset a guesser's budget).
 *
 * State is in memory, per portal process: replicas each keep their own, so N
 * replicas behind a balancer allow up to N times the budget. The normal path
 * costs one Map lookup.
 *
 * Not @fastify/rate-limit: it counts every request per fixed window, so it
 * would throttle a busy client's good requests, has no per-account failure
 * count or backoff, and cannot see the outcome of checks made inside
 * oidc-provider.
 */

/** Which secret is being checked: each has its own budget, so a stale token loop does not block sign-ins. */
export type SecretKind = "password" | "token" | "usercode";

export interface ThrottleConfig {
  /** Failures an account may have within `windowMs` before it is locked (default 5). */
  accountFailures?: number;
  /** Failures one client address may have within `windowMs` for passwords and user codes (default 20). */
  addressFailures?: number;
  /** Failures one client address may have with bearer tokens and token grants (default 100). */
  tokenAddressFailures?: number;
  /** A key's failures are forgotten this long after its last one (default 15 min). */
  windowMs?: number;
  /** The first lock's length; each further failure doubles it (default 2 s). */
  lockMs?: number;
  /** The longest lock (default 15 min). */
  maxLockMs?: number;
  /** Keys kept at most; beyond this the oldest idle ones are forgotten first (default 100 000). */
  maxKeys?: number;
}

interface Entry {
  failures: number;
  last: number;
  lockedUntil: number;
}

/** Thrown (and answered 429 with Retry-After) when a key is locked. */
export class Throttled extends Error {
  readonly retryAfterSeconds: number;
  constructor(
    readonly scope: "account" | "address",
    readonly until: number,
    now: number,
  ) {
    const seconds = Math.max(1, Math.ceil((until - now) / 1000));
    const at = new Date(until).toISOString().replace(/\.\d+Z$/, "Z");
    super(
      `too many failed attempts ${scope === "account" ? "for this account" : "from this address"}; ` +
        `try again in ${seconds} s (after ${at})`,
    );
    this.retryAfterSeconds = seconds;
  }
}

export class Throttle {
  private readonly entries = new Map<string, Entry>();
  private readonly accountFailures: number;
  private readonly addressFailures: number;
  private readonly tokenAddressFailures: number;
  private readonly windowMs: number;
  private readonly lockMs: number;
  private readonly maxLockMs: number;
  private readonly maxKeys: number;

  constructor(
    c: ThrottleConfig = {},
    private readonly clock: () => number = Date.now,
  ) {
    this.accountFailures = c.accountFailures ?? 5;
    this.addressFailures = c.addressFailures ?? 20;
    this.tokenAddressFailures = c.tokenAddressFailures ?? 100;
    this.windowMs = c.windowMs ?? 15 * 60_000;
    this.lockMs = c.lockMs ?? 2_000;
    this.maxLockMs = c.maxLockMs ?? 15 * 60_000;
    this.maxKeys = c.maxKeys ?? 100_000;
    for (const [k, v] of Object.entries(c)) {
      if (v === undefined) continue;
      if (typeof v !== "number" || !Number.isFinite(v) || v < 1)
        throw new RangeError(`throttle.${k}: ${String(v)} is not valid; use a positive number`);
    }
  }

  /** Throws Throttled if the address (and the account, when given) is locked for this kind of secret. */
  check(kind: SecretKind, address: string, account?: string): void {
    if (this.entries.size === 0) return;
    const now = this.clock();
    const a = this.entries.get(addressKey(kind, address));
    if (a !== undefined && a.lockedUntil > now) throw new Throttled("address", a.lockedUntil, now);
    if (account === undefined) return;
    const u = this.entries.get(accountKey(kind, account));
    if (u !== undefined && u.lockedUntil > now) throw new Throttled("account", u.lockedUntil, now);
  }

  /** Counts a failed check against the address and (when given) the account. */
  fail(kind: SecretKind, address: string, account?: string): void {
    const now = this.clock();
    const limit = kind === "token" ? this.tokenAddressFailures : this.addressFailures;
    this.count(addressKey(kind, address), limit, now);
    if (account !== undefined) this.count(accountKey(kind, account), this.accountFailures, now);
  }

  /** A successful check: the account starts afresh (the address does not). */
  succeed(kind: SecretKind, account: string): void {
    this.entries.delete(accountKey(kind, account));
  }

  private count(key: string, limit: number, now: number): void {
    let e = this.entries.get(key);
    if (e === undefined || now - e.last > this.windowMs) {
      if (e !== undefined) this.entries.delete(key);
      if (this.entries.size >= this.maxKeys) this.prune(now);
      e = { failures: 0, last: now, lockedUntil: 0 };
      this.entries.set(key, e);
    }
    e.failures++;
    e.last = now;
    if (e.failures >= limit) {
      const lock = Math.min(this.maxLockMs, this.lockMs * 2 ** Math.min(30, e.failures - limit));
      e.lockedUntil = now + lock;
    }
  }

  /** Keys held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Makes room: forgets idle keys, then the oldest unlocked ones, and only then the oldest locks, so a
   * flood of fresh names (from many addresses) cannot easily push a lock out.
   */
  private prune(now: number): void {
    for (const [k, e] of this.entries) {
      if (now - e.last > this.windowMs && e.lockedUntil <= now) this.entries.delete(k);
    }
    for (const [k, e] of this.entries) {
      if (this.entries.size < this.maxKeys) return;
      if (e.lockedUntil <= now) this.entries.delete(k);
    }
    for (const k of this.entries.keys()) {
      if (this.entries.size < this.maxKeys) return;
      this.entries.delete(k);
    }
  }
}

const accountKey = (kind: SecretKind, account: string) => `${kind}\0account\0${account}`;
const addressKey = (kind: SecretKind, address: string) => `${kind}\0address\0${clientAddress(address)}`;

/**
 * The address a budget is kept for: IPv4 as is (IPv4-mapped IPv6 unwrapped),
 * IPv6 by its /64, since one host usually holds a whole /64.
 */
export function clientAddress(ip: string): string {
  if (ip.startsWith("::ffff:") && ip.includes(".")) return ip.slice(7);
  if (!ip.includes(":")) return ip;
  const [head = "", tail = ""] = ip.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === "" ? [] : tail.split(":");
  const groups = ip.includes("::") ? [...left, ...Array(8 - left.length - right.length).fill("0"), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || "0", 16).toString(16))
    .join(":")}::/64`;
}
