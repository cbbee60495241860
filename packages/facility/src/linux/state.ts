/**
 * What the backend must remember about a materialization across a facility
 * restart: its plan (nodes, links, emulation as last set), rex's infranet
 * entries, and which resource carries which node (and, for the harbor, its
 * spec). Kernel objects and processes
 * outlive the facility process; this small JSON next to them (in the
 * materialization's directory, so a sweep removes it with everything else)
 * lets a restarted backend power, exec into, change and dematerialize them.
 * Written atomically (temporary file, then rename), so a crash mid-write
 * leaves the previous state, never half of one.
 */
import { appendFileSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HarborSpec, InfranetEntry } from "../backend.ts";
import { PREFIX_RE, prefixOf } from "./names.ts";
import type { MzPlan } from "./record.ts";

export interface MzState {
  version: 1;
  plan: MzPlan;
  /** Infranet (nex) entries as rex last set them. */
  entries?: InfranetEntry[];
  /** node → the resource carrying it (a hypervisor carries several). */
  placement: Record<string, string>;
  /** Present when this materialization is the facility's harbor. */
  harbor?: HarborSpec;
  /** This host carries some of its nodes but not its infrapod: an infranet switch joined by tunnel. */
  switchOnly?: boolean;
}

/** What earlier versions wrote: resource → node (one node per resource). */
interface StoredState extends Omit<MzState, "placement"> {
  placement?: Record<string, string>;
  carrying?: Record<string, string>;
}

export const STATE_FILE = "state.json";

/**
 * A host agent's journal of the prefixes it used (`qualifyNames`' record): a
 * line is written before the first object of its prefix exists, so what an
 * agent killed mid-setup made is found even where no state or directory of
 * it was written yet.
 */
const PREFIX_JOURNAL = "prefixes";

export function journalPrefix(dataDir: string, prefix: string): void {
  appendFileSync(join(dataDir, PREFIX_JOURNAL), `${prefix}\n`);
}

/** The prefixes a data directory's journal names (valid ones only). */
export function journaledPrefixes(dataDir: string): string[] {
  let text = "";
  try {
    text = readFileSync(join(dataDir, PREFIX_JOURNAL), "utf8");
  } catch {
    return [];
  }
  return [...new Set(text.split("\n").filter((l) => PREFIX_RE.test(l)))];
}

export const statePath = (dataDir: string, prefix: string): string => join(dataDir, "mz", prefix, STATE_FILE);

/** Write a materialization's state; its directory must exist (and be mounted) already. */
export function writeState(dataDir: string, state: MzState): void {
  const file = statePath(dataDir, prefixOf(state.plan.mzid));
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state)}\n`);
  renameSync(tmp, file);
}

/** Prefixes with a materialization directory in this data directory: what this backend made. */
export function prefixesOwned(dataDir: string): string[] {
  try {
    return readdirSync(join(dataDir, "mz")).filter((d) => PREFIX_RE.test(d));
  } catch {
    return [];
  }
}

/** Every readable state in the data directory; unreadable ones are reported and skipped. */
export function readStates(dataDir: string, log: (m: string) => void): MzState[] {
  const out: MzState[] = [];
  for (const prefix of prefixesOwned(dataDir)) {
    const file = statePath(dataDir, prefix);
    if (!existsSync(file)) continue;
    try {
      const s = JSON.parse(readFileSync(file, "utf8")) as StoredState;
      if (s.version !== 1 || typeof s.plan?.mzid !== "string" || !Array.isArray(s.plan.nodes))
        throw new Error(`expected {version: 1, plan: {mzid, nodes, links, ...}, placement}`);
      if (prefixOf(s.plan.mzid) !== prefix)
        throw new Error(`plan.mzid "${s.plan.mzid}" does not belong to prefix ${prefix}`);
      const { carrying, placement, ...rest } = s;
      const legacy = Object.fromEntries(Object.entries(carrying ?? {}).map(([resource, node]) => [node, resource]));
      out.push({ ...rest, placement: placement ?? legacy });
    } catch (e) {
      log(`linux backend: ${file}: ${(e as Error).message}; this materialization cannot be operated until re-created`);
    }
  }
  return out;
}
