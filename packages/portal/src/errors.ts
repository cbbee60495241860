/**
 * The one error shape every 4xx/5xx answer carries: `{error, message, field?}`.
 * `error` is a stable machine code, `message` says what went wrong and what to do.
 */
export type ErrorCode =
  | "bad_request"
  | "unauthenticated"
  | "inactive"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "too_large"
  | "unsupported"
  | "unprocessable"
  | "too_many_requests"
  | "internal";

const statusOf: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthenticated: 401,
  inactive: 403,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported: 415,
  unprocessable: 422,
  too_many_requests: 429,
  internal: 500,
};

export class PortalError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly field?: string;
  constructor(code: ErrorCode, message: string, field?: string) {
    super(message);
    this.code = code;
    this.status = statusOf[code];
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
