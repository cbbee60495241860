/**
 * The allocation table: what every realization holds. Each record sits on one
 * allocation unit (a resource, a cable, an interconnect, one VLAN id in one
 * domain, one VNI in one facility). A unit is the grain of concurrency: in a
 * store each unit is one key whose value lists the unit's records, so reserving
 * is one transaction that compares every touched unit's modRevision with the
 * revision the realization was computed against and writes the new lists. Two
 * realizations racing for one unit: exactly one transaction succeeds, the other
 * re-reads and realizes again. Tags are units of their own, so a tag can never
 * be handed out twice.
 */
import type { AllocMode } from "@merge/xir";
import { edgeIndex, type InternetIndex, resourceIndex } from "./internet.ts";
import { vmRoom } from "./usage.ts";

export type AllocationRecord =
  | {
      kind: "node";
      realization: string;
      facility: string;
      resource: string;
      node: string;
      mode: AllocMode;
      cores: number;
      memory: number;
      disk: number;
    }
  | { kind: "cable"; realization: string; facility: string; cable: string; link: string; capacity: number }
  | { kind: "interconnect"; realization: string; interconnect: string; link: string; capacity: number }
  /** `use` is the link name, or `@infranet`. */
  | { kind: "vlan"; realization: string; facility: string; domain: string; tag: number; use: string }
  | { kind: "vni"; realization: string; facility: string; tag: number; use: string }
  | { kind: "infrapod"; realization: string; facility: string; resource: string };

export const INFRANET_USE = "@infranet";

export interface AllocationUnit {
  /** The store modRevision of the unit's key (0: absent); in memory, a counter. */
  version: number;
  records: AllocationRecord[];
}

const enc = encodeURIComponent;

/** The unit a record sits on, as a store key suffix. */
export function unitKey(r: AllocationRecord): string {
  switch (r.kind) {
    case "node":
    case "infrapod":
      return `resource/${enc(r.facility)}/${enc(r.resource)}`;
    case "cable":
      return `cable/${enc(r.facility)}/${enc(r.cable)}`;
    case "interconnect":
      return `interconnect/${enc(r.interconnect)}`;
    case "vlan":
      return `vlan/${enc(r.facility)}/${enc(r.domain)}/${r.tag}`;
    case "vni":
      return `vni/${enc(r.facility)}/${r.tag}`;
  }
}

export type ReserveResult = { ok: true } | { ok: false; conflicts: string[] };

/**
 * An in-memory allocation table. Reserve and free are atomic: either every
 * record is applied or none is. Over-commitment is checked against the
 * resource internet when an index is given (always, in the portal and tests).
 */
export class AllocationTable {
  private readonly units = new Map<string, AllocationUnit>();
  private counter = 0;

  /** A table loaded from stored units (e.g. from `tableFromStore`). */
  static of(units: Iterable<[string, AllocationUnit]>): AllocationTable {
    const t = new AllocationTable();
    for (const [k, u] of units) {
      t.units.set(k, { version: u.version, records: [...u.records] });
      t.counter = Math.max(t.counter, u.version);
    }
    return t;
  }

  unit(key: string): AllocationUnit | undefined {
    return this.units.get(key);
  }

  unitKeys(): IterableIterator<string> {
    return this.units.keys();
  }

  *records(): Generator<AllocationRecord> {
    for (const u of this.units.values()) yield* u.records;
  }

  recordsOf(realization: string): AllocationRecord[] {
    return [...this.records()].filter((r) => r.realization === realization);
  }

  realizations(): Set<string> {
    return new Set([...this.records()].map((r) => r.realization));
  }

  /** Apply every record or none. */
  reserve(records: readonly AllocationRecord[], index?: InternetIndex): ReserveResult {
    const byUnit = groupByUnit(records);
    const conflicts: string[] = [];
    for (const [key, recs] of byUnit) {
      const merged = [...(this.units.get(key)?.records ?? []), ...recs];
      const problem = overCommitment(key, merged, index);
      if (problem) conflicts.push(problem);
    }
    if (conflicts.length) return { ok: false, conflicts };
    this.counter++;
    for (const [key, recs] of byUnit) {
      const u = this.units.get(key);
      this.units.set(key, { version: this.counter, records: [...(u?.records ?? []), ...recs] });
    }
    return { ok: true };
  }

  /** Release everything a realization holds; returns the number of records freed. */
  free(realization: string): number {
    let freed = 0;
    this.counter++;
    for (const [key, u] of [...this.units]) {
      const keep = u.records.filter((r) => r.realization !== realization);
      if (keep.length === u.records.length) continue;
      freed += u.records.length - keep.length;
      if (keep.length) this.units.set(key, { version: this.counter, records: keep });
      else this.units.delete(key);
    }
    return freed;
  }
}

function groupByUnit(records: readonly AllocationRecord[]): Map<string, AllocationRecord[]> {
  const byUnit = new Map<string, AllocationRecord[]>();
  for (const r of records) {
    const k = unitKey(r);
    const list = byUnit.get(k);
    if (list) list.push(r);
    else byUnit.set(k, [r]);
  }
  return byUnit;
}

/** Why a unit's records over-commit it, or undefined. */
export function overCommitment(
  key: string,
  records: readonly AllocationRecord[],
  index?: InternetIndex,
): string | undefined {
  const first = records[0];
  if (!first) return undefined;
  if (first.kind === "vlan" || first.kind === "vni") {
    const owners = new Set(records.map((r) => `${r.realization}\u0000${(r as { use: string }).use}`));
    return owners.size > 1 ? `${key}: tag held by ${records.map((r) => r.realization).join(", ")}` : undefined;
  }
  if (first.kind === "cable" || first.kind === "interconnect") {
    if (!index) return undefined;
    const e =
      first.kind === "cable"
        ? edgeIndex(index, first.facility, first.cable)
        : edgeIndex(index, undefined, first.interconnect);
    if (e === undefined) return `${key}: no such cable or interconnect`;
    const sum = records.reduce((s, r) => s + (r as { capacity: number }).capacity, 0);
    return sum > index.edgeCap[e]! ? `${key}: ${sum} bit/s reserved on ${index.edgeCap[e]} bit/s` : undefined;
  }
  const nodes = records.filter((r) => r.kind === "node");
  if (nodes.length === 0) return undefined;
  if (nodes.some((r) => r.mode === "physical") && nodes.length > 1)
    return `${key}: a physical node shares its resource`;
  if (!index || nodes[0]!.mode === "physical") return undefined;
  const r = resourceIndex(index, nodes[0]!.facility, nodes[0]!.resource);
  if (r === undefined) return `${key}: no such resource`;
  const [cores, memory, disk] = vmRoom(index.resources[r]!);
  const base = { cores, memory, disk };
  for (const k of ["cores", "memory", "disk"] as const) {
    const sum = nodes.reduce((s, n) => s + n[k], 0);
    if (sum > base[k]) return `${key}: virtual machines take ${sum} ${k} of ${base[k]}`;
  }
  return undefined;
}

/** The parts of the store's transaction this table needs (structurally the store's `Txn`). */
export type UnitCompare =
  | { key: string; target: "modRevision"; op: "=="; value: number }
  | { key: string; target: "absent" };
export type UnitOp = { op: "put"; key: string; value: string } | { op: "delete"; key: string };
export interface UnitTxn {
  compare: UnitCompare[];
  success: UnitOp[];
}

/**
 * The store transaction that reserves `records` on top of `table` as read from
 * the store (its unit versions are the keys' modRevisions). It succeeds only if
 * no touched unit changed since, so concurrent realizations never double-allocate.
 */
export function reserveTxn(table: AllocationTable, records: readonly AllocationRecord[], prefix: string): UnitTxn {
  const compare: UnitCompare[] = [];
  const success: UnitOp[] = [];
  for (const [k, recs] of groupByUnit(records)) {
    const key = prefix + k;
    const u = table.unit(k);
    compare.push(
      u && u.version > 0 ? { key, target: "modRevision", op: "==", value: u.version } : { key, target: "absent" },
    );
    success.push({ op: "put", key, value: JSON.stringify([...(u?.records ?? []), ...recs]) });
  }
  return { compare, success };
}

/** The store transaction that frees everything `realization` holds in `table`. */
export function freeTxn(table: AllocationTable, realization: string, prefix: string): UnitTxn {
  const compare: UnitCompare[] = [];
  const success: UnitOp[] = [];
  for (const k of table.unitKeys()) {
    const u = table.unit(k)!;
    if (!u.records.some((r) => r.realization === realization)) continue;
    const key = prefix + k;
    compare.push({ key, target: "modRevision", op: "==", value: u.version });
    const keep = u.records.filter((r) => r.realization !== realization);
    success.push(keep.length ? { op: "put", key, value: JSON.stringify(keep) } : { op: "delete", key });
  }
  return { compare, success };
}

/** A table from the store's keys under `prefix` (`store.range(prefix)`). */
export function tableFromStore(
  kvs: readonly { key: string; value: string; modRevision: number }[],
  prefix: string,
): AllocationTable {
  return AllocationTable.of(
    kvs
      .filter((kv) => kv.key.startsWith(prefix))
      .map((kv) => [
        kv.key.slice(prefix.length),
        { version: kv.modRevision, records: JSON.parse(kv.value) as AllocationRecord[] },
      ]),
  );
}

/**
 * The coarse alternative for stores that bound a transaction's size (128 ops
 * here): one key per realization holding all its records, and one epoch key
 * every reservation and free compares and bumps. Three operations whatever
 * the realization's size; reservations serialize on the epoch (one commits,
 * the others re-read and realize again), which is cheap at portal rates.
 */
export interface Epoch {
  key: string;
  /** modRevision of the epoch key when the table was read (0: absent). */
  revision: number;
}

export function reserveByEpochTxn(
  realization: string,
  records: readonly AllocationRecord[],
  epoch: Epoch,
  prefix: string,
): UnitTxn {
  return {
    compare: [epochCompare(epoch), { key: prefix + enc(realization), target: "absent" }],
    success: [
      { op: "put", key: prefix + enc(realization), value: JSON.stringify(records) },
      { op: "put", key: epoch.key, value: realization },
    ],
  };
}

export function freeByEpochTxn(realization: string, epoch: Epoch, prefix: string): UnitTxn {
  return {
    compare: [epochCompare(epoch)],
    success: [
      { op: "delete", key: prefix + enc(realization) },
      { op: "put", key: epoch.key, value: `-${realization}` },
    ],
  };
}

function epochCompare(epoch: Epoch): UnitCompare {
  return epoch.revision > 0
    ? { key: epoch.key, target: "modRevision", op: "==", value: epoch.revision }
    : { key: epoch.key, target: "absent" };
}

/** A table from per-realization keys (`reserveByEpochTxn`'s layout). */
export function tableFromRealizations(kvs: readonly { key: string; value: string }[], prefix: string): AllocationTable {
  const t = new AllocationTable();
  for (const kv of kvs) {
    if (!kv.key.startsWith(prefix)) continue;
    const r = t.reserve(JSON.parse(kv.value) as AllocationRecord[]);
    if (!r.ok) throw new Error(`allocation table: ${kv.key} conflicts with others: ${r.conflicts.join("; ")}`);
  }
  return t;
}
