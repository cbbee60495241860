/**
 * Choosing a backend: `openStore({ backend, ... })`, or from one configuration
 * string: `sqlite:///abs/dir` (or `sqlite:rel/dir`), `etcd://host:2379[,host:2379]`,
 * `memory:`.
 */

import { StoreError } from "./errors.ts";
import { type EtcdOptions, openEtcdStore } from "./etcd.ts";
import type { Store } from "./kv.ts";
import { type MemoryOptions, openMemoryStore } from "./memory.ts";
import { openSqliteStore, type SqliteOptions } from "./sqlite.ts";

export type StoreOptions =
  | ({ backend: "sqlite" } & SqliteOptions)
  | ({ backend: "etcd" } & EtcdOptions)
  | ({ backend: "memory" } & MemoryOptions);

const FORMS =
  "sqlite:///absolute/dir, sqlite:relative/dir, etcd://host:port[,host:port...][?write_timeout_ms=N] or memory:";

/** Parses a store URL into options; throws a StoreError saying what is valid. */
export function parseStoreUrl(url: string): StoreOptions {
  if (typeof url !== "string") throw new StoreError("invalid", `store URL must be a string (${FORMS})`);
  const bad = (why: string) => new StoreError("invalid", `store URL ${JSON.stringify(url)}: ${why}; expected ${FORMS}`);
  const colon = url.indexOf(":");
  if (colon < 0) throw bad("no scheme");
  const scheme = url.slice(0, colon);
  const [rest = "", query] = url.slice(colon + 1).split("?", 2) as [string, string | undefined];
  const params = new URLSearchParams(query ?? "");
  switch (scheme) {
    case "memory":
      if (rest !== "" && rest !== "//") throw bad("memory: takes no path");
      return { backend: "memory" };
    case "sqlite": {
      let dir = rest;
      if (dir.startsWith("//")) {
        dir = dir.slice(2);
        if (!dir.startsWith("/")) throw bad("sqlite:// needs an absolute path (three slashes: sqlite:///path)");
      }
      if (dir === "") throw bad("sqlite: needs a data directory");
      dir = decodeURIComponent(dir);
      const sync = params.get("sync");
      if (sync !== null && sync !== "normal" && sync !== "full") throw bad("sync must be normal or full");
      return sync ? { backend: "sqlite", dir, sync } : { backend: "sqlite", dir };
    }
    case "etcd": {
      if (!rest.startsWith("//")) throw bad("etcd: needs endpoints, as etcd://host:port");
      const hosts = rest.slice(2).replace(/\/$/, "").split(",");
      for (const h of hosts) {
        if (!/^[A-Za-z0-9.-]+:[0-9]{1,5}$/.test(h) && !/^\[[0-9a-fA-F:]+\]:[0-9]{1,5}$/.test(h)) {
          throw bad(`endpoint ${JSON.stringify(h)} is not host:port`);
        }
      }
      const endpoints = hosts.map((h) => `http://${h}`);
      const write = params.get("write_timeout_ms");
      if (write === null) return { backend: "etcd", endpoints };
      if (!/^[1-9][0-9]{0,6}$/.test(write)) throw bad("write_timeout_ms must be a positive whole number of ms");
      return { backend: "etcd", endpoints, writeTimeoutMs: Number(write) };
    }
    default:
      throw bad(`unknown scheme ${JSON.stringify(scheme)}`);
  }
}

/** Opens a store from options or a store URL. */
export function openStore(opts: StoreOptions | string): Store {
  const o = typeof opts === "string" ? parseStoreUrl(opts) : opts;
  switch (o?.backend) {
    case "memory":
      return openMemoryStore(o);
    case "sqlite":
      return openSqliteStore(o);
    case "etcd":
      return openEtcdStore(o);
    default:
      throw new StoreError(
        "invalid",
        `store backend must be sqlite, etcd or memory, got ${JSON.stringify((o as { backend?: unknown })?.backend)}`,
      );
  }
}
