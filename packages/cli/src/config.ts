// Where the command lines keep what outlives one command: the config directory
// (`$MERGE_CONFIG_DIR`, else ~/.config/merge) holds the portal session (client.ts)
// and the record `npm start` leaves of where its data lives, so that cog finds
// that facility's store from any directory.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export function configDir(): string {
  return process.env.MERGE_CONFIG_DIR ?? join(homedir(), ".config", "merge");
}

/** What `npm start` records on start: its data directory (absolute). */
export interface StartRecord {
  data: string;
}

export const startRecordFile = (): string => join(configDir(), "start.json");

export function recordStart(r: StartRecord): void {
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  writeFileSync(startRecordFile(), `${JSON.stringify(r, null, 2)}\n`);
}

/** The data directory of the last `npm start`, if one recorded it (a broken record counts as none). */
export function startedData(): string | undefined {
  const f = startRecordFile();
  if (!existsSync(f)) return undefined;
  try {
    const r = JSON.parse(readFileSync(f, "utf8")) as Partial<StartRecord>;
    return typeof r.data === "string" && r.data.startsWith("/") ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The data directory cog works on by default: `$MERGE_DATA_DIR`, else the one
 * the last `npm start` recorded, else ./.data; and where that choice came from.
 */
export function defaultData(): { dir: string; from: string } {
  if (process.env.MERGE_DATA_DIR) return { dir: process.env.MERGE_DATA_DIR, from: "$MERGE_DATA_DIR" };
  const started = startedData();
  if (started) return { dir: started, from: `npm start's record in ${startRecordFile()}` };
  return { dir: ".data", from: "the default, ./.data" };
}
