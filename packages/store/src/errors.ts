/** Why a store call failed, as a code callers can branch on. */
export type StoreErrorCode =
  /** The request is malformed (empty key, bad TTL, a key written twice in one txn, ...). */
  | "invalid"
  /** The watch's history was compacted away. */
  | "compacted"
  /** The lease expired, was revoked, or never existed. */
  | "lease-not-found"
  /** The store was closed. */
  | "closed"
  /** A stored document is not the JSON its reader expected. */
  | "corrupt"
  /** A compare-and-swap loop gave up after too many conflicting writers. */
  | "conflict"
  /** The backend could not be reached or failed. */
  | "unavailable";

export class StoreError extends Error {
  override readonly name = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
