/**
 * Quantities that remember their unit at run time. In TypeScript the unit is
 * in the type (`Bytes`, `Nanoseconds`), but a JavaScript model, or one that
 * casts, has no types; so the unit helpers a model imports (`gb`, `ms`, ...)
 * return Number objects tagged with their unit, and each constraint checks
 * the unit it was given against the one its property takes:
 *
 *   memory.ge(ms(10))   error: memory.capacity >= 10 ms: a size was expected, not a duration
 *   latency.eq(10)      warning: latency == 10: a bare number, taken as 10 ns
 *
 * A tagged number behaves as a number in arithmetic; arithmetic gives a plain
 * number (taken in the property's base unit, with the warning). XIR holds
 * plain JSON numbers only: constraints unwrap what they are given.
 */
import * as units from "@merge/xir";
import {
  type BitsPerSecond,
  type Bytes,
  type Fraction,
  formatQuantity,
  type Nanoseconds,
  PROPERTIES,
  type Quantity,
  type Scalar,
  UNIT_EXAMPLES,
  UNIT_NAMES,
  type Unit,
} from "@merge/xir";

class Measured extends Number {
  constructor(
    value: number,
    readonly unit: Unit,
  ) {
    super(value);
  }
}

function tagged<U extends Unit>(make: (n: number) => Quantity<U>, unit: U): (n: number) => Quantity<U> {
  return (n: number) => new Measured(make(Number(n)), unit) as unknown as Quantity<U>;
}

export const bytes: (n: number) => Bytes = tagged(units.bytes, "bytes");
export const kb: (n: number) => Bytes = tagged(units.kb, "bytes");
export const mb: (n: number) => Bytes = tagged(units.mb, "bytes");
export const gb: (n: number) => Bytes = tagged(units.gb, "bytes");
export const tb: (n: number) => Bytes = tagged(units.tb, "bytes");
export const pb: (n: number) => Bytes = tagged(units.pb, "bytes");
export const eb: (n: number) => Bytes = tagged(units.eb, "bytes");
export const bps: (n: number) => BitsPerSecond = tagged(units.bps, "bps");
export const kbps: (n: number) => BitsPerSecond = tagged(units.kbps, "bps");
export const mbps: (n: number) => BitsPerSecond = tagged(units.mbps, "bps");
export const gbps: (n: number) => BitsPerSecond = tagged(units.gbps, "bps");
export const tbps: (n: number) => BitsPerSecond = tagged(units.tbps, "bps");
export const ns: (n: number) => Nanoseconds = tagged(units.ns, "ns");
export const us: (n: number) => Nanoseconds = tagged(units.us, "ns");
export const ms: (n: number) => Nanoseconds = tagged(units.ms, "ns");
export const s: (n: number) => Nanoseconds = tagged(units.s, "ns");
export const fraction: (n: number) => Fraction = tagged(units.fraction, "fraction");
export const percent: (n: number) => Fraction = tagged(units.percent, "fraction");

/** The unit a value carries, if it is a tagged quantity (from this or another copy of the package). */
export function unitOf(v: unknown): Unit | undefined {
  if (v instanceof Number && typeof (v as { unit?: unknown }).unit === "string") return (v as Measured).unit;
  return undefined;
}

/** A constraint value as XIR holds it: tagged numbers become plain ones. */
export function plain(v: Scalar | Scalar[]): Scalar | Scalar[] {
  if (Array.isArray(v)) return v.map((x) => plain(x) as Scalar);
  return (v as unknown) instanceof Number ? Number(v) : v;
}

export type UnitCheck = { error: string } | { warning: string } | undefined;

/**
 * Whether `value` suits `prop`: a quantity of another unit is an error, a
 * bare number where a unit is expected a warning naming the unit it is taken as.
 */
export function checkUnit(prop: string, op: string, value: Scalar | Scalar[]): UnitCheck {
  const spec = PROPERTIES[prop];
  // Properties this library does not know (custom ones) take whatever they are given.
  if (spec === undefined || spec.type !== "number") return undefined;
  const expected = spec.unit;
  for (const v of Array.isArray(value) ? value : [value]) {
    const have = unitOf(v);
    const n = Number(v);
    if (have !== undefined && have !== expected) {
      const shown = formatQuantity(n, have);
      if (expected === undefined) {
        return { error: `${prop} ${op} ${shown}: a plain count was expected, not ${UNIT_NAMES[have]}` };
      }
      return {
        error: `${prop} ${op} ${shown}: ${UNIT_NAMES[expected]} was expected, not ${UNIT_NAMES[have]}; write e.g. ${UNIT_EXAMPLES[expected]}`,
      };
    }
    // A bare fraction (loss 0.1) or zero means the same in any unit.
    if (have === undefined && expected !== undefined && expected !== "fraction" && typeof v === "number" && v !== 0) {
      return {
        warning: `${prop} ${op} ${v}: a bare number, taken as ${formatQuantity(v, expected)}; write e.g. ${UNIT_EXAMPLES[expected]} to say which unit`,
      };
    }
  }
  return undefined;
}
