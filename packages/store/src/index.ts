export {
  createJSON,
  type Doc,
  getDoc,
  getJSON,
  LOST_RACE,
  type Parse,
  putJSON,
  rangeJSON,
  retryConflicts,
  type UpdateOptions,
  type UpdateResult,
  updateJSON,
} from "./document.ts";
export { MAX_TXN_OPS } from "./engine.ts";
export { StoreError, type StoreErrorCode } from "./errors.ts";
export { type EtcdOptions, openEtcdStore } from "./etcd.ts";
export { compareKeys } from "./key.ts";
export type * from "./kv.ts";
export { type MemoryOptions, openMemoryStore } from "./memory.ts";
export { openStore, parseStoreUrl, type StoreOptions } from "./open.ts";
export { openSqliteStore, type SqliteOptions } from "./sqlite.ts";
