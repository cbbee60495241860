/**
 * Who is calling. A request carries `Authorization: Bearer <token>` where the
 * token is either a portal API token (`mrg_<id>.<secret>`, stored hashed) or
 * an OAuth2 access token (a JWT from the embedded provider or a configured
 * external issuer, verified with jose). Either way it resolves to a stored
 * user whose state decides whether they may do anything.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Store } from "@merge/store";
import { Batch, read } from "./documents.ts";
import { PortalError } from "./errors.ts";
import { type ApiToken, keys, type User } from "./objects.ts";
import { Throttle } from "./throttle.ts";

export interface Principal {
  user: User;
  via: "token" | "oauth";
}

/** Verifies an OAuth2 access token and returns the user name it was issued to. */
export type JwtVerifier = (jwt: string) => Promise<string>;

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
      return { user: await this.user(rec.user), via: "token" };
    }
    this.throttle.check("token", address);
    if (token.split(".").length === 3 && this.jwtVerifier !== undefined) {
      let name: string;
      try {
        name = await this.jwtVerifier(token);
      } catch (e) {
        if ((e as { code?: string }).code !== "ERR_JWT_EXPIRED") this.throttle.fail("token", address);
        throw unauthenticated(`the access token is not valid: ${(e as Error).message}`);
      }
      return { user: await this.user(name), via: "oauth" };
    }
    this.throttle.fail("token", address);
    throw unauthenticated("the token is not a portal token or an access token");
  }

  private async user(name: string): Promise<User> {
    const u = await read<User>(this.store, keys.user(name));
    if (u === undefined) throw unauthenticated(`the account '${name}' no longer exists`);
    return u;
  }

  /** Creates an API token; the secret is returned once and only its hash is kept. */
  async issueToken(
    user: string,
    name: string,
    ttlSeconds: number | null,
  ): Promise<{ token: string; record: ApiToken }> {
    const id = randomId(12);
    const secret = randomBytes(32).toString("base64url");
    const now = Date.now();
    const record: ApiToken = {
      id,
      user,
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

function unauthenticated(message: string): PortalError {
  return new PortalError("unauthenticated", `${message}; sign in again with 'mrg login'`);
}
