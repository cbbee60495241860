import { type CatalogCode, MergeError } from "@merge/xir/errors";

/** Why a store call failed, as a code callers can branch on (meanings in the catalog, `@merge/xir/errors`). */
export type StoreErrorCode = CatalogCode<"store">;

export class StoreError extends MergeError<"store"> {
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super("store", code, message, options);
  }
}
