/**
 * Who is calling. A request carries `Authorization: Bearer <token>` where the
 * token is either a portal API token (`mrg_<id>.<secret>`, stored hashed) or
 * an OAuth2 access token (a JWT from the embedded provider or a configured
 * external issuer, verified with jose). Either way it resolves to a stored
 * user whose state decides whether they may do anything.
 *
 * Tokens name the user's immutable id and token generation, not only the
 * name: the generation is bumped on a password change, a freeze and (with
 * the record) a deletion, so every token issued before stops working, and a
 * name registered again is a new id no old token names. External issuers'
 * tokens carry neither; they must have been issued (`iat`) since the last bump.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Store } from "@merge/store";
import { Batch, read } from "./documents.ts";
import { PortalError } from "./errors.ts";
import { type ApiToken, keys, type User } from "./objects.ts";
import { DUMMY_HASH, verifyPassword } from "./password.ts";
import { Throttle } from "./throttle.ts";

export interface Principal {
  user: User;
  via: "token" | "oauth";
}

/**
 * What a verified OAuth2 access token says of its user: the embedded provider's subject (`subjectOf`), or an
 * external issuer's user name and issue time (seconds).
 */
export type TokenUser = { subject: string } | { name: string; issuedAt: number };

/** Verifies an OAuth2 access token (signature, issuer, audience, expiry) and says whom it was issued to. */
export type JwtVerifier = (jwt: string) => Promise<TokenUser>;

/**
 * The embedded provider's account id (the tokens' `sub`) for a user: name, immutable id and token generation,
 * so a token of an earlier generation, or of an earlier account of the same name, names no account.
 */
export function subjectOf(u: User): string {
  return `${u.name}.${u.id}.${u.generation}`;
}

const TOKEN_RE = /^mrg_([a-z0-9]{12})\.([A-Za-z0-9_-]{43})$/;

export function sha256(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

export class Identity {
  private jwtVerifier: JwtVerifier | undefined;
  constructor(
    private readonly store: Store,
    /** Failed secret checks, per account and client address (passwords, tokens, user codes). */
    readonly throttle: Throttle = new Throttle(),
  ) {}

  /** Told of every password sign-in, and why one failed (the audit log; never the password). */
  onSignIn: ((e: { user: string; address: string; ok: boolean; reason?: string }) => void) | undefined;

  setJwtVerifier(v: JwtVerifier): void {
    this.jwtVerifier = v;
  }

  /**
   * undefined when there is no Authorization header; throws 401 when there is one that is not valid,
   * 429 (Throttled) while the client address (or the API token) has too many recent failures.
   * Expired tokens are not counted: an old session retrying is no guess.
   */
  async authenticate(authorization: string | undefined, address: string): Promise<Principal | undefined> {
    if (authorization === undefined) return undefined;
    const m = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (m === null) throw unauthenticated("the Authorization header must be 'Bearer <token>'");
    const token = m[1] as string;
    const api = TOKEN_RE.exec(token);
    if (api !== null) {
      // Per token id as the "account": someone who learned an id (not the secret) may lock that one token only.
      const id = api[1] as string;
      this.throttle.check("token", address, id);
      const rec = await read<ApiToken>(this.store, keys.token(id));
      if (rec === undefined || !sameHash(rec.hash, sha256(api[2] as string))) {
        this.throttle.fail("token", address, id);
        throw unauthenticated("the token is not valid (revoked or mistyped)");
      }
      if (rec.expires !== null && Date.parse(rec.expires) <= Date.now()) throw unauthenticated("the token has expired");
      const u = await read<User>(this.store, keys.user(rec.user));
      if (u === undefined || u.id !== rec.userId || u.generation !== rec.generation) throw revoked();
      return { user: u, via: "token" };
    }
    this.throttle.check("token", address);
    if (token.split(".").length === 3 && this.jwtVerifier !== undefined) {
      let claims: TokenUser;
      try {
        claims = await this.jwtVerifier(token);
      } catch (e) {
        if ((e as { code?: string }).code !== "ERR_JWT_EXPIRED") this.throttle.fail("token", address);
        throw unauthenticated(`the access token is not valid: ${(e as Error).message}`);
      }
      const u = "subject" in claims ? await this.userOfSubject(claims.subject) : await this.issuedSince(claims);
      if (u === undefined) throw revoked();
      return { user: u, via: "oauth" };
    }
    this.throttle.fail("token", address);
    throw unauthenticated("the token is not a portal token or an access token");
  }

  /** A stored, active account (for in-process callers such as `npm start`), or undefined. */
  async activeUser(name: string): Promise<User | undefined> {
    const u = await read<User>(this.store, keys.user(name));
    return u?.state === "active" ? u : undefined;
  }

  /** The user a subject (`subjectOf`) names, if it is still that account at that token generation. */
  async userOfSubject(subject: string): Promise<User | undefined> {
    const [name = "", id, generation] = subject.split(".");
    const u = await read<User>(this.store, keys.user(name));
    return u !== undefined && u.id === id && String(u.generation) === generation ? u : undefined;
  }

  /** An external issuer's user, if the token was issued since the account's last token generation began. */
  private async issuedSince(claims: { name: string; issuedAt: number }): Promise<User | undefined> {
    const u = await read<User>(this.store, keys.user(claims.name));
    return u !== undefined && claims.issuedAt >= Math.floor(Date.parse(u.generationAt) / 1000) ? u : undefined;
  }

  /**
   * Checks a password. The attempt is counted before the slow hash (throttle `reserve`), so simultaneous
   * guesses all count. Unknown users cost the same scrypt; a pending or frozen account with the right
   * password fails exactly like a wrong password (answer, timing, count): nothing tells an account's state
   * before sign-in succeeds. Throws 401, or Throttled (429) while the account or address is locked.
   */
  async signIn(username: string, password: string, address: string): Promise<User> {
    const user = username.slice(0, 64);
    let attempt: Awaited<ReturnType<Throttle["reserve"]>>;
    try {
      attempt = await this.throttle.reserve("password", address, username);
    } catch (e) {
      this.onSignIn?.({ user, address, ok: false, reason: "locked: too many failed attempts" });
      throw e;
    }
    const u = await read<User>(this.store, keys.user(username));
    const ok = await verifyPassword(password, u?.passwordHash ?? DUMMY_HASH);
    if (!ok || u?.passwordHash === undefined || u.state !== "active") {
      const reason =
        u === undefined
          ? "no such user"
          : u.passwordHash === undefined
            ? "no password (external sign-in only)"
            : !ok
              ? "wrong password"
              : `account ${u.state}`;
      this.onSignIn?.({ user, address, ok: false, reason });
      throw new PortalError("unauthenticated", "wrong user name or password, or the account is not active");
    }
    attempt.succeeded();
    this.onSignIn?.({ user, address, ok: true });
    return u;
  }

  /** Creates an API token for the user's current token generation; the secret is returned once and only its hash is kept. */
  async issueToken(user: User, name: string, ttlSeconds: number | null): Promise<{ token: string; record: ApiToken }> {
    const id = randomId(12);
    const secret = randomBytes(32).toString("base64url");
    const now = Date.now();
    const record: ApiToken = {
      id,
      user: user.name,
      userId: user.id,
      generation: user.generation,
      name,
      hash: sha256(secret),
      created: new Date(now).toISOString(),
      expires: ttlSeconds === null ? null : new Date(now + ttlSeconds * 1000).toISOString(),
    };
    await new Batch()
      .absent(keys.token(id))
      .put(keys.token(id), record)
      .commit(this.store, "token id collision, retry");
    return { token: `mrg_${id}.${secret}`, record };
  }
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function randomId(n: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = randomBytes(n);
  let s = "";
  for (const b of bytes) s += alphabet[b % 36];
  return s;
}

function revoked(): PortalError {
  return unauthenticated("the token was revoked (password changed, account frozen or deleted)");
}

function unauthenticated(message: string): PortalError {
  return new PortalError("unauthenticated", `${message}; sign in again with 'mrg login'`);
}
