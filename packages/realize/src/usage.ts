/**
 * What is already taken, as flat arrays over the prepared internet: read once
 * from the allocation table at the start of a realization, then updated as the
 * realization takes more. The VirtAlloc model lives here: a hypervisor's
 * remaining capacity is its base `proc.cores`, `memory.capacity` and
 * `disk.capacity` minus the virtual machines on it.
 */
import type { Resource } from "@merge/xir";
import type { AllocationRecord } from "./allocation.ts";
import type { MeasuredRoom } from "./context.ts";
import { edgeIndex, type InternetIndex, resourceIndex } from "./internet.ts";

/** The three properties a virtual machine takes a slice of. */
export const VM_PROPS = ["proc.cores", "memory.capacity", "disk.capacity"] as const;

/**
 * What virtual nodes may take of a hypervisor in all, VM_PROPS order: its
 * `proc.cores` and `memory.capacity` times the overcommit ratios it declares
 * (`virt.overcommit`), its `disk.capacity` as it is.
 */
export function vmRoom(res: Resource): [number, number, number] {
  const num = (v: unknown) => (typeof v === "number" ? v : 0);
  const o = res.virt?.overcommit;
  return [
    num(res.props["proc.cores"]) * (o?.cores ?? 1),
    num(res.props["memory.capacity"]) * (o?.memory ?? 1),
    num(res.props["disk.capacity"]),
  ];
}

export const FREE = 0;
export const PRIOR = 1;
export const MINE = 2;

export class Usage {
  /** Physical allocation: FREE, PRIOR (another realization) or MINE. */
  readonly physical: Uint8Array;
  /** Virtual machines on a resource, and who placed the first of them. */
  readonly vmCount: Int32Array;
  /** Virtual machines of this realization on a resource. */
  readonly mine: Int32Array;
  /** 1 where the hypervisor takes one node per experiment (`virt.sharing`). */
  readonly onePerExperiment: Uint8Array;
  readonly vmOwner: Uint8Array;
  /** Remaining VirtAlloc capacity per resource, 3 entries each (VM_PROPS order). */
  readonly remaining: Float64Array;
  readonly edgeUsed: Float64Array;
  readonly vlanUsed: Set<number>[];
  readonly vniUsed: Set<number>[];
  readonly infrapodLoad: Int32Array;

  /** Resources on a host whose agent measured what is free (`RealizeOptions.measured`). */
  readonly measured = new Map<number, MeasuredRoom>();

  constructor(
    readonly ix: InternetIndex,
    records: Iterable<AllocationRecord>,
    measured: readonly MeasuredRoom[] = [],
  ) {
    const n = ix.resources.length;
    this.physical = new Uint8Array(n);
    this.vmCount = new Int32Array(n);
    this.mine = new Int32Array(n);
    this.onePerExperiment = Uint8Array.from(ix.resources, (r) => (r.virt?.sharing === "one-per-experiment" ? 1 : 0));
    this.vmOwner = new Uint8Array(n);
    this.remaining = new Float64Array(n * 3);
    for (let r = 0; r < n; r++) {
      const room = vmRoom(ix.resources[r]!);
      for (let k = 0; k < 3; k++) this.remaining[r * 3 + k] = room[k]!;
    }
    this.edgeUsed = new Float64Array(ix.edgeCount);
    this.vlanUsed = ix.domainNames.map(() => new Set<number>());
    this.vniUsed = ix.facilityNames.map(() => new Set<number>());
    this.infrapodLoad = new Int32Array(n);
    const domainOf = new Map(ix.domainNames.map((d, i) => [d, i]));
    for (const rec of records) {
      const fi = "facility" in rec ? ix.facilityOf.get(rec.facility) : undefined;
      switch (rec.kind) {
        case "node":
        case "infrapod": {
          const r = resourceIndex(ix, rec.facility, rec.resource);
          if (r === undefined) break;
          if (rec.kind === "infrapod") this.infrapodLoad[r]!++;
          else if (rec.mode === "physical") this.physical[r] = PRIOR;
          else this.addVm(r, [rec.cores, rec.memory, rec.disk], PRIOR);
          break;
        }
        case "cable":
        case "interconnect": {
          const e =
            rec.kind === "cable" ? edgeIndex(ix, rec.facility, rec.cable) : edgeIndex(ix, undefined, rec.interconnect);
          if (e !== undefined) this.edgeUsed[e]! += rec.capacity;
          break;
        }
        case "vlan": {
          const d = domainOf.get(`${rec.facility}\u0000${rec.domain}`);
          if (d !== undefined) this.vlanUsed[d]!.add(rec.tag);
          break;
        }
        case "vni":
          if (fi !== undefined) this.vniUsed[fi]!.add(rec.tag);
          break;
      }
    }
    // What the host really has free bounds what the model leaves (memory and disk; cores are time-shared).
    for (const m of measured) {
      for (const id of m.resources) {
        const r = resourceIndex(ix, m.facility, id);
        if (r === undefined) continue;
        this.measured.set(r, m);
        this.remaining[r * 3 + 1] = Math.min(this.remaining[r * 3 + 1]!, m.memory);
        this.remaining[r * 3 + 2] = Math.min(this.remaining[r * 3 + 2]!, m.disk);
      }
    }
  }

  addVm(r: number, sizes: readonly number[], owner: number): void {
    if (this.vmCount[r] === 0) this.vmOwner[r] = owner;
    this.vmCount[r]!++;
    if (owner === MINE) this.mine[r]!++;
    for (let k = 0; k < 3; k++) this.remaining[r * 3 + k]! -= sizes[k]!;
  }

  fits(r: number, sizes: readonly number[]): boolean {
    if (this.full(r)) return false;
    const base = r * 3;
    return (
      this.remaining[base]! >= sizes[0]! &&
      this.remaining[base + 1]! >= sizes[1]! &&
      this.remaining[base + 2]! >= sizes[2]!
    );
  }

  /** A shared host that already has this experiment's one node. */
  full(r: number): boolean {
    return this.onePerExperiment[r] === 1 && this.mine[r]! > 0;
  }

  /** Free for a whole-machine allocation. */
  physicallyFree(r: number): boolean {
    return this.physical[r] === FREE && this.vmCount[r] === 0;
  }

  edgeFree(e: number): number {
    return this.ix.edgeCap[e]! - this.edgeUsed[e]!;
  }
}
