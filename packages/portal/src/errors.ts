import { type CatalogCode, MergeError } from "@merge/xir/errors";

/**
 * The one error shape every 4xx/5xx answer carries: `{error, message, field?}`.
 * `error` is a stable machine code, `message` says what went wrong and what to do.
 */
export type ErrorCode = CatalogCode<"api">;

/** An answer of the portal's API: a code of the catalog's `api` domain, its status, and `field` where one is to blame. */
export class PortalError extends MergeError<"api"> {
  readonly field?: string;
  constructor(code: ErrorCode, message: string, field?: string) {
    super("api", code, message);
    this.field = field;
  }
  toJSON(): ErrorBody {
    return this.field === undefined
      ? { error: this.code, message: this.message }
      : { error: this.code, message: this.message, field: this.field };
  }
}

export interface ErrorBody {
  error: string;
  message: string;
  field?: string;
}

export const notFound = (what: string, name: string): PortalError =>
  new PortalError("not_found", `${what} '${name}' does not exist`);
export const forbidden = (message: string): PortalError => new PortalError("forbidden", message);
export const conflict = (message: string): PortalError => new PortalError("conflict", message);
export const badRequest = (message: string, field?: string): PortalError =>
  new PortalError("bad_request", message, field);

const CODE_OF_STATUS: Record<number, ErrorCode> = {
  400: "bad_request",
  401: "unauthenticated",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  413: "too_large",
  415: "unsupported",
  422: "unprocessable",
  429: "too_many_requests",
  503: "unavailable",
};

/** The API code an answer of this status carries when the error came from another domain of the catalog. */
export function apiCodeOf(status: number): ErrorCode {
  return CODE_OF_STATUS[status] ?? (status < 500 ? "bad_request" : "internal");
}
