/**
 * An experiment's history: what happened to its realizations and why, in time
 * order (a lease ran out and it was reclaimed, its lease was extended, it was
 * warned of idleness). Kept per experiment, deleted with it. Entries are keyed
 * by time and a key the writer chooses, so a sweep that two portal replicas
 * run at once writes an event once.
 */
import type { Op, Store } from "@merge/store";
import { keys } from "./objects.ts";

export type HistoryKind =
  | "lease-extended"
  | "lease-warning"
  | "lease-expired"
  | "idle"
  | "idle-reclaimed"
  | "reclaimed";

export interface HistoryEntry {
  at: string;
  kind: HistoryKind;
  /** `rlz.exp.proj`. */
  realization: string;
  /** Who did it (a user), or `portal` for the lease keeper. */
  by: string;
  message: string;
}

/** Where an entry lives: time first (key order is history order), then `tag` (unique per event). */
export function historyKey(project: string, experiment: string, atMs: number, tag: string): string {
  return `${keys.history(project, experiment)}${String(atMs).padStart(15, "0")}-${tag}`;
}

/** The put that records `entry` (for a transaction that does what it records). */
export function historyPut(project: string, experiment: string, entry: HistoryEntry, tag: string): Op {
  return {
    op: "put",
    key: historyKey(project, experiment, Date.parse(entry.at), tag),
    value: JSON.stringify(entry),
  };
}

export async function readHistory(store: Store, project: string, experiment: string): Promise<HistoryEntry[]> {
  return (await store.range(keys.history(project, experiment))).map((kv) => JSON.parse(kv.value) as HistoryEntry);
}
