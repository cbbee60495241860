/**
 * Choosing a concrete number that satisfies a set of constraints on one
 * property: a virtual machine's size, an emulated link's latency, loss and
 * rate. Generic: candidates are the bounds, the default and every value the
 * constraints mention (and the numbers just beside them, for strict bounds);
 * the smallest or largest candidate that satisfies them all wins.
 */
import { type Constraint, satisfies } from "@merge/xir";

export function constraintsOn(constraints: readonly Constraint[], prop: string): Constraint[] {
  return constraints.filter((c) => c.prop === prop);
}

/**
 * A value in [lo, hi] satisfying every constraint, preferring `preferred` when it
 * does, else the smallest (`min`) or largest (`max`) such candidate.
 */
export function pickValue(
  constraints: readonly Constraint[],
  lo: number,
  hi: number,
  prefer: "min" | "max",
  preferred?: number,
): number | undefined {
  const ok = (v: number) => v >= lo && v <= hi && constraints.every((c) => satisfies(v, c));
  if (preferred !== undefined && ok(preferred)) return preferred;
  const candidates: number[] = [lo];
  if (Number.isFinite(hi)) candidates.push(hi);
  for (const c of constraints) {
    const values = Array.isArray(c.value) ? c.value : [c.value];
    for (const v of values) {
      if (typeof v !== "number") continue;
      const step = Number.isInteger(v) ? 1 : Math.max(Math.abs(v) * 1e-9, 1e-12);
      candidates.push(v, v - step, v + step);
    }
  }
  let best: number | undefined;
  for (const v of candidates) {
    if (!ok(v)) continue;
    if (best === undefined || (prefer === "min" ? v < best : v > best)) best = v;
  }
  return best;
}
