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
 * State is shared by every replica on one store (throttle-sync.ts): each
 * failure is counted here at once and merged into the store, every replica
 * mirrors the store's counts into its map, so N replicas allow one budget, not
 * N. `check()` only reads the map, never the store: per subject one cached
 * key lookup (a salted hash the first time a subject is seen) and one Map
 * lookup. Without a mirror (or while the store is unreachable) the counts are
 * this process's own.
 *
 * Keys are `<kind>/<scope>/<digest>`: the subject (account name, token id,
 * client address) is hashed (SHA-256) with a secret salt the replicas share,
 * so the store never holds what a client typed as a user name (which may be a
 * mistyped password) or its address, and any typed string makes a valid key.
 *
 * Not @fastify/rate-limit: it counts every request per fixed window, so it
 * would throttle a busy client's good requests, has no per-account failure
 * count or backoff, and cannot see the outcome of checks made inside
 * oidc-provider.
 */
import { hash, randomBytes } from "node:crypto";
import { MergeError } from "@merge/xir/errors";

/** Subjects whose keys are remembered (a cache: bounded, cleared when full). */
const DERIVED_KEYS = 10_000;

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

/** One key's failures: how many in the window, the last one (ms), and until when it is locked (ms, 0 = not). */
export interface Entry {
  failures: number;
  last: number;
  lockedUntil: number;
}

/** Told of every change a Throttle makes itself, after its map changed (throttle-sync.ts writes them to the store). */
export interface ThrottleMirror {
  /** A failure was counted against `key` (whose budget is `limit`) at `now`. */
  failed(key: string, limit: number, now: number): void;
  /** `key` was cleared by a success. */
  cleared(key: string): void;
  /**
   * Counts one attempt against every key at once, in the shared store, unless one of them is locked there:
   * then nothing is written and that key is returned. Resolves to undefined when counted (or when the store
   * cannot be reached: the local count then decides).
   */
  reserve(keys: readonly Reserved[], now: number): Promise<Reserved | undefined>;
  /** One attempt reserved on `key` at `reservedAt` turned out not to be a failure: take it back. */
  released(key: string, reservedAt: number): void;
}

/** A key an attempt is counted against, with its budget; `until` is set when the store refused it as locked. */
export interface Reserved {
  key: string;
  limit: number;
  scope: "account" | "address";
  until?: number;
}

/** An attempt counted before its secret is checked; call `succeeded()` when the secret was right. */
export interface Attempt {
  succeeded(): void;
}

/** Thrown (and answered 429 with Retry-After) when a key is locked. */
export class Throttled extends MergeError<"api"> {
  readonly retryAfterSeconds: number;
  constructor(
    readonly scope: "account" | "address",
    readonly until: number,
    now: number,
  ) {
    const seconds = Math.max(1, Math.ceil((until - now) / 1000));
    const at = new Date(until).toISOString().replace(/\.\d+Z$/, "Z");
    super(
      "api",
      "too_many_requests",
      `too many failed attempts ${scope === "account" ? "for this account" : "from this address"}; ` +
        `try again in ${seconds} s (after ${at})`,
    );
    this.retryAfterSeconds = seconds;
  }
}

export class Throttle {
  private readonly entries = new Map<string, Entry>();
  private salt = randomBytes(32).toString("base64url");
  /** Subject → key, so a subject seen again costs a Map lookup, not a hash; dropped whole when it grows big. */
  private readonly derived = new Map<string, string>();
  private mirror: ThrottleMirror | undefined;
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
    const a = this.entries.get(this.key(kind, "address", clientAddress(address)));
    if (a !== undefined && a.lockedUntil > now) throw new Throttled("address", a.lockedUntil, now);
    if (account === undefined) return;
    const u = this.entries.get(this.key(kind, "account", account));
    if (u !== undefined && u.lockedUntil > now) throw new Throttled("account", u.lockedUntil, now);
  }

  /** Failures counted now against an account (or a client address): what this replica holds, for operators and tests. */
  failuresOf(kind: SecretKind, scope: "account" | "address", subject: string): number {
    const e = this.entries.get(this.key(kind, scope, scope === "address" ? clientAddress(subject) : subject));
    return e === undefined || this.clock() - e.last > this.windowMs ? 0 : e.failures;
  }

  /** Counts a failed check against the address and (when given) the account. */
  fail(kind: SecretKind, address: string, account?: string): void {
    const now = this.clock();
    const limit = kind === "token" ? this.tokenAddressFailures : this.addressFailures;
    this.count(this.key(kind, "address", clientAddress(address)), limit, now);
    if (account !== undefined) this.count(this.key(kind, "account", account), this.accountFailures, now);
  }

  /**
   * Reserves one attempt before a slow secret check (a password's scrypt): refuses when the address or the
   * account is locked, otherwise counts the attempt as a failure at once, here and (shared) in the store by one
   * compare-and-swap, so simultaneous guesses all count against the budget before any is checked. A wrong
   * secret needs nothing more; `succeeded()` takes the attempt back from the address and clears the account.
   */
  async reserve(kind: SecretKind, address: string, account: string): Promise<Attempt> {
    this.check(kind, address, account);
    const now = this.clock();
    const keys: Reserved[] = [
      {
        key: this.key(kind, "address", clientAddress(address)),
        limit: kind === "token" ? this.tokenAddressFailures : this.addressFailures,
        scope: "address",
      },
      { key: this.key(kind, "account", account), limit: this.accountFailures, scope: "account" },
    ];
    for (const k of keys) this.countLocally(k.key, k.limit, now);
    const refused = await this.mirror?.reserve(keys, now);
    if (refused?.until !== undefined) throw new Throttled(refused.scope, refused.until, now);
    const [addressKey, accountKey] = keys.map((k) => k.key) as [string, string];
    return {
      succeeded: () => {
        const e = this.entries.get(addressKey);
        if (e !== undefined) this.entries.set(addressKey, this.afterRelease(e, now));
        this.mirror?.released(addressKey, now);
        this.entries.delete(accountKey);
        this.mirror?.cleared(accountKey);
      },
    };
  }

  /**
   * A key's entry after one attempt reserved at `reservedAt` proved right: one failure fewer, and no lock
   * from then on (the attempt passed the check, so the key was not locked when it was reserved).
   */
  afterRelease(e: Entry, reservedAt: number): Entry {
    return { failures: Math.max(0, e.failures - 1), last: e.last, lockedUntil: Math.min(e.lockedUntil, reservedAt) };
  }

  /** A successful check: the account starts afresh (the address does not). */
  succeed(kind: SecretKind, account: string): void {
    const key = this.key(kind, "account", account);
    // Only a key that exists costs a store write: a normal sign-in has none.
    if (this.entries.delete(key)) this.mirror?.cleared(key);
  }

  /**
   * A key's entry after one more failure at `now`: pure, so the store merge (throttle-sync.ts) applies the
   * same rule to the stored entry. A stale entry starts over; a lock never gets shorter.
   */
  afterFailure(e: Entry | undefined, limit: number, now: number): Entry {
    const fresh = e === undefined || now - e.last > this.windowMs;
    const failures = fresh ? 1 : e.failures + 1;
    let lockedUntil = fresh ? 0 : e.lockedUntil;
    if (failures >= limit) {
      const lock = Math.min(this.maxLockMs, this.lockMs * 2 ** Math.min(30, failures - limit));
      lockedUntil = Math.max(lockedUntil, now + lock);
    }
    return { failures, last: fresh ? now : Math.max(e.last, now), lockedUntil };
  }

  /**
   * Shares this throttle: keys are derived with `salt` (the same on every replica) from now on, and every
   * failure and clearing is told to `mirror`. Call before the first check; counts made before are dropped.
   */
  share(mirror: ThrottleMirror, salt: string): void {
    this.mirror = mirror;
    this.salt = salt;
    this.entries.clear();
    this.derived.clear();
  }

  /** Sets a key to what the store holds (undefined: the store has none), for the mirror. */
  adopt(key: string, e: Entry | undefined): void {
    if (e === undefined) {
      this.entries.delete(key);
      return;
    }
    if (!this.entries.has(key) && this.entries.size >= this.maxKeys) this.prune(this.clock());
    this.entries.set(key, e);
  }

  /** How long a key matters after its last failure: its window, or its longest lock if that is longer. */
  get keyLifetimeMs(): number {
    return Math.max(this.windowMs, this.maxLockMs);
  }

  private key(kind: SecretKind, scope: "account" | "address", subject: string): string {
    const plain = `${kind}/${scope}/${subject}`;
    let key = this.derived.get(plain);
    if (key === undefined) {
      // Salted SHA-256 (a secret prefix): the digest alone does not give the subject back, even for addresses.
      key = `${kind}/${scope}/${hash("sha256", `${this.salt}\0${subject}`, "base64url").slice(0, 22)}`;
      if (this.derived.size >= DERIVED_KEYS) this.derived.clear();
      this.derived.set(plain, key);
    }
    return key;
  }

  private count(key: string, limit: number, now: number): void {
    this.countLocally(key, limit, now);
    this.mirror?.failed(key, limit, now);
  }

  private countLocally(key: string, limit: number, now: number): void {
    const e = this.entries.get(key);
    const next = this.afterFailure(e, limit, now);
    if (e === undefined || next.failures === 1) {
      // A new key (or a stale one starting over) goes to the end, so prune() finds the oldest first.
      this.entries.delete(key);
      if (this.entries.size >= this.maxKeys) this.prune(now);
    }
    this.entries.set(key, next);
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
