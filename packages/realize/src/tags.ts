/**
 * Tag pools: VLAN ids per VLAN domain and VNIs per facility, handed out lowest
 * first, skipping every tag the allocation table or this realization holds.
 */
import type { TagRange } from "@merge/xir";

export class TagPool {
  private range = 0;
  private next: number;

  constructor(
    private readonly ranges: readonly TagRange[],
    private readonly used: Set<number>,
  ) {
    this.next = ranges[0]?.first ?? 0;
  }

  /** A free tag, now marked used; undefined when the pool is exhausted. */
  take(): number | undefined {
    while (this.range < this.ranges.length) {
      const r = this.ranges[this.range]!;
      if (this.next < r.first) this.next = r.first;
      while (this.next <= r.last) {
        const t = this.next++;
        if (!this.used.has(t)) {
          this.used.add(t);
          return t;
        }
      }
      this.range++;
    }
    return undefined;
  }

  describe(): string {
    return this.ranges.length ? this.ranges.map((r) => `${r.first}-${r.last}`).join(", ") : "empty";
  }
}
