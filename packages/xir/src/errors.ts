/**
 * The error catalog: every error code the system gives, in one table, with the
 * HTTP status it stands for and what it means. Each package's error class is a
 * `MergeError` of its domain, so a code is found here by name (Fastify's
 * `createError` idea: one place names every code), and the portal answers any
 * of them with the status the catalog gives, never a blanket 500.
 *
 * The `api` codes are what the portal's answers carry in `error` (stable: clients
 * branch on them); the others are `<domain>.<code>` (`store.conflict`).
 */
export interface ErrorKind {
  /** HTTP status this error stands for where it reaches an API. */
  readonly status: number;
  readonly meaning: string;
}

export const ERROR_CATALOG = {
  api: {
    bad_request: { status: 400, meaning: "the request is malformed; `field` names what and the message what is valid" },
    unauthenticated: { status: 401, meaning: "no valid credentials were sent" },
    inactive: { status: 403, meaning: "the account is not active (pending approval or frozen)" },
    forbidden: { status: 403, meaning: "the policy does not allow this to this user" },
    not_found: { status: 404, meaning: "no such object, or one the user may not see" },
    conflict: {
      status: 409,
      meaning: "the object's state does not allow this now (exists, in use, changed meanwhile)",
    },
    too_large: { status: 413, meaning: "the request body is larger than the call accepts" },
    unsupported: { status: 415, meaning: "the request body is not JSON" },
    unprocessable: {
      status: 422,
      meaning: "well-formed, but cannot be done (a model that does not compile or realize)",
    },
    too_many_requests: { status: 429, meaning: "too many attempts; retry after the time given" },
    internal: { status: 500, meaning: "a fault of the portal; its log has details" },
    unavailable: { status: 503, meaning: "a service the portal needs (store, facility, XDC host) did not answer" },
    // Device sign-in (RFC 8628), answered by /oidc/token while `mrg login` polls.
    authorization_pending: { status: 400, meaning: "device sign-in: the user has not approved the code yet" },
    slow_down: { status: 400, meaning: "device sign-in: poll less often" },
    expired_token: { status: 400, meaning: "device sign-in: the code expired; start again" },
    access_denied: { status: 400, meaning: "device sign-in: the user refused" },
    // Said by the API client itself, never by the portal.
    unreachable: { status: 503, meaning: "the client could not reach the portal at all" },
  },
  store: {
    invalid: { status: 400, meaning: "malformed store request (empty key, bad TTL, a key written twice in one txn)" },
    compacted: { status: 500, meaning: "the watch's history was compacted away" },
    "lease-not-found": { status: 500, meaning: "the lease expired, was revoked, or never existed" },
    closed: { status: 503, meaning: "the store was closed" },
    corrupt: { status: 500, meaning: "a stored document is not the JSON its reader expected" },
    conflict: { status: 409, meaning: "a compare-and-swap loop gave up after too many conflicting writers" },
    unavailable: { status: 503, meaning: "the store could not be reached or failed" },
  },
  model: {
    invalid: { status: 422, meaning: "the experiment model does not compile; each diagnostic names file:line:column" },
    confinement: { status: 500, meaning: "a model program could not be run confined" },
  },
  "facility-model": {
    invalid: { status: 422, meaning: "the facility model has problems; each names its resource or cable" },
    source: { status: 400, meaning: "the facility model could not be loaded from the file or sample named" },
  },
  realize: {
    internet: { status: 422, meaning: "the resource internet cannot be built from the facility models given" },
  },
  plan: {
    invalid: { status: 422, meaning: "the realization cannot be turned into a materialization plan" },
    wire: { status: 400, meaning: "a plan on the wire is not what the facility can read" },
  },
  policy: {
    invalid: { status: 400, meaning: "the policy file is not valid; the message names the rule" },
  },
  facility: {
    fragment: { status: 400, meaning: "a fragment of the plan is malformed" },
    "materialization-id": { status: 400, meaning: "not a materialization id the facility accepts" },
    certificate: { status: 500, meaning: "certificates could not be made or read" },
    usage: { status: 400, meaning: "the facility daemon was started with bad options" },
    "host-down": { status: 503, meaning: "the host agent that carries the resource does not answer" },
    "agent-deadline": {
      status: 504,
      meaning: "a host agent did not finish an operation within the facility's deadline for agent calls",
    },
    "no-such-action": { status: 404, meaning: "no action of the materialization matches the selector given" },
    "spec-chunk": {
      status: 500,
      meaning: "a stored chunk of action specs does not decode (the message names its key)",
    },
  },
  "node-ops": {
    not_found: { status: 404, meaning: "no such node in the materialization" },
    failed_precondition: { status: 409, meaning: "the node's state does not allow the operation now" },
    invalid_argument: { status: 400, meaning: "the operation's arguments are not valid" },
    unimplemented: { status: 501, meaning: "the backend cannot do this to nodes (e.g. the sim backend)" },
  },
  tls: {
    files: { status: 500, meaning: "certificate or key files are missing or unreadable" },
  },
  cli: {
    failed: { status: 400, meaning: "a command could not be done (mrg, cog, mergectl exit with status 1)" },
    usage: { status: 400, meaning: "the command line is wrong: a malformed name or flag (exit status 2)" },
  },
  xdc: {
    input: { status: 400, meaning: "an XDC request the XDC host refuses (bad name, user or key)" },
    host: { status: 502, meaning: "the XDC host answered with an error" },
  },
} as const satisfies Record<string, Record<string, ErrorKind>>;

export type ErrorDomain = keyof typeof ERROR_CATALOG;
export type CatalogCode<D extends ErrorDomain> = Extract<keyof (typeof ERROR_CATALOG)[D], string>;

/** The catalog's entry for a code, or undefined for one it does not have. */
export function errorKind(domain: string, code: string): ErrorKind | undefined {
  const d = (ERROR_CATALOG as Record<string, Record<string, ErrorKind>>)[domain];
  return d && Object.hasOwn(d, code) ? d[code] : undefined;
}

export class MergeError<D extends ErrorDomain = ErrorDomain> extends Error {
  readonly domain: D;
  readonly code: CatalogCode<D>;
  readonly status: number;
  constructor(domain: D, code: CatalogCode<D>, message: string, options?: ErrorOptions & { status?: number }) {
    super(message, options);
    this.name = new.target.name;
    this.domain = domain;
    this.code = code;
    // `status` overrides the catalog only for an error relayed from another service, which gave its own.
    this.status = options?.status ?? (errorKind(domain, code) as ErrorKind).status;
  }

  /** The code unique across the system: `store.conflict`, or the bare code for `api`. */
  get id(): string {
    return this.domain === "api" ? this.code : `${this.domain}.${this.code}`;
  }
}
