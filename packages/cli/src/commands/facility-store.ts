// The facility store as cog commands open it: one --store option (default
// $COG_STORE, then the single-machine default), --json, and errors an
// operator can act on instead of stack traces.

import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { MzIdError, NoSuchAction } from "@merge/facility";
import { openStore, parseStoreUrl, type Store } from "@merge/store";
import type Table from "cli-table3";
import type { Command } from "commander";
import { defaultData } from "../config.ts";
import { storeUrlFile } from "../start-etcd.ts";

export const STORE_HELP =
  "facility store URL (default $COG_STORE, else the store of the last `npm start`: <data>/facility/store, or the etcd named in <data>/facility/store.url after `npm start -- --store etcd`, <data> being $MERGE_DATA_DIR or the data directory npm start recorded)";

/** The facility store `npm start` uses (its data directory: $MERGE_DATA_DIR, npm start's record, ./.data). */
export function defaultStoreUrl(): string {
  if (process.env.COG_STORE) return process.env.COG_STORE;
  const facility = resolve(defaultData().dir, "facility");
  // `npm start -- --store etcd` names its etcd here.
  const named = storeUrlFile(defaultData().dir);
  if (existsSync(named)) return readFileSync(named, "utf8").trim();
  return `sqlite://${join(facility, "store")}`;
}

/** The facility backend's data directory `npm start` uses. */
export function defaultDataDir(): string {
  return resolve(defaultData().dir, "facility", "backend");
}

export interface StoreOpts {
  store?: string;
  json?: boolean;
}

export const withStoreOpts = (c: Command): Command =>
  c.option("--store <url>", STORE_HELP).option("--json", "print JSON");

export async function withStore(opts: StoreOpts, f: (store: Store) => Promise<void>): Promise<void> {
  let store: Store;
  const url = opts.store ?? defaultStoreUrl();
  try {
    const o = parseStoreUrl(url);
    // Opening a sqlite store makes it: a mistyped path would show an empty facility.
    if (o.backend === "sqlite" && !existsSync(o.dir)) {
      const from = opts.store ? "--store" : process.env.COG_STORE ? "$COG_STORE" : defaultData().from;
      console.error(
        `cog: no facility store at ${o.dir} (from ${from}; is the facility started? give --store <url> or set COG_STORE)`,
      );
      process.exitCode = 1;
      return;
    }
    store = openStore(url);
  } catch (err) {
    console.error(`cog: ${(err as Error).message}`);
    process.exitCode = 2;
    return;
  }
  try {
    await f(store);
  } catch (err) {
    if (err instanceof MzIdError || err instanceof NoSuchAction) {
      console.error(`cog: ${err.message}`);
      process.exitCode = 1;
    } else throw err;
  } finally {
    await store.close();
  }
}

/** cli-table3 style without colour codes (they garble logs, pipes and terminals without colour). */
export const PLAIN = { head: [], border: [] };

/** JSON with --json, else the table (or a sentence when there is nothing to list). */
export function print(opts: StoreOpts, json: unknown, table: () => Table.Table | string): void {
  if (opts.json) console.log(JSON.stringify(json, null, 2));
  else console.log(table().toString());
}
