/**
 * Units of XIR quantities. Every quantity in XIR is a plain JSON number in a
 * fixed base unit; in TypeScript it carries a brand so that a latency can never
 * be passed where a memory size is expected.
 *
 *   bytes     memory, disk (binary multiples: kb = 1024 bytes)
 *   bps       link and port capacity, bits per second (decimal: mbps = 1e6)
 *   ns        latency, nanoseconds
 *   fraction  loss, 0..1
 */
declare const unitBrand: unique symbol;
export type Quantity<U extends Unit> = number & { readonly [unitBrand]: U };
export type Unit = "bytes" | "bps" | "ns" | "fraction";

export type Bytes = Quantity<"bytes">;
export type BitsPerSecond = Quantity<"bps">;
export type Nanoseconds = Quantity<"ns">;
export type Fraction = Quantity<"fraction">;

const KiB = 1024;

function quantity<U extends Unit>(n: number, scale: number, what: string): Quantity<U> {
  if (!Number.isFinite(n) || n < 0) {
    throw new RangeError(`${what}: expected a finite, non-negative number, got ${n}`);
  }
  return (n * scale) as Quantity<U>;
}

export const bytes = (n: number): Bytes => quantity<"bytes">(n, 1, "bytes");
export const kb = (n: number): Bytes => quantity<"bytes">(n, KiB, "kb");
export const mb = (n: number): Bytes => quantity<"bytes">(n, KiB ** 2, "mb");
export const gb = (n: number): Bytes => quantity<"bytes">(n, KiB ** 3, "gb");
export const tb = (n: number): Bytes => quantity<"bytes">(n, KiB ** 4, "tb");
export const pb = (n: number): Bytes => quantity<"bytes">(n, KiB ** 5, "pb");
export const eb = (n: number): Bytes => quantity<"bytes">(n, KiB ** 6, "eb");

export const bps = (n: number): BitsPerSecond => quantity<"bps">(n, 1, "bps");
export const kbps = (n: number): BitsPerSecond => quantity<"bps">(n, 1e3, "kbps");
export const mbps = (n: number): BitsPerSecond => quantity<"bps">(n, 1e6, "mbps");
export const gbps = (n: number): BitsPerSecond => quantity<"bps">(n, 1e9, "gbps");
export const tbps = (n: number): BitsPerSecond => quantity<"bps">(n, 1e12, "tbps");

export const ns = (n: number): Nanoseconds => quantity<"ns">(n, 1, "ns");
export const us = (n: number): Nanoseconds => quantity<"ns">(n, 1e3, "us");
export const ms = (n: number): Nanoseconds => quantity<"ns">(n, 1e6, "ms");
export const s = (n: number): Nanoseconds => quantity<"ns">(n, 1e9, "s");

/** Loss as a fraction of packets (0.1 = 10%). */
export function fraction(n: number): Fraction {
  if (!Number.isFinite(n) || n < 0 || n > 1) {
    throw new RangeError(`loss: expected a fraction between 0 and 1, got ${n}`);
  }
  return n as Fraction;
}
/** Loss given in percent (10 = 10%). */
export const percent = (n: number): Fraction => fraction(n / 100);

/** Human form of a quantity in its unit, e.g. 8 GiB, 100 Mbit/s, 10 ms, 5%. */
export function formatQuantity(value: number, unit: Unit): string {
  switch (unit) {
    case "bytes":
      return scaled(value, 1024, ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]);
    case "bps":
      return scaled(value, 1000, ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"]);
    case "ns":
      return scaled(value, 1000, ["ns", "us", "ms", "s"]);
    case "fraction":
      return `${round(value * 100)}%`;
  }
}

function scaled(value: number, base: number, names: string[]): string {
  let v = value;
  let i = 0;
  while (Math.abs(v) >= base && i < names.length - 1) {
    v /= base;
    i++;
  }
  return `${round(v)} ${names[i]}`;
}

function round(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(2)));
}

/**
 * Unit suffixes people type, lower case, and the base units each is worth.
 * Sizes are binary as in models (mb = MiB); rates decimal, in bits (never
 * `mb`, which would read as bytes); loss only with `%` (a bare 1 could be 1%
 * or 100%). The forms `formatQuantity` writes are among them, so the two round-trip.
 */
const SUFFIXES: Readonly<Record<Unit, Readonly<Record<string, number>>>> = {
  bytes: {
    b: 1,
    kb: KiB,
    kib: KiB,
    mb: KiB ** 2,
    mib: KiB ** 2,
    gb: KiB ** 3,
    gib: KiB ** 3,
    tb: KiB ** 4,
    tib: KiB ** 4,
    pb: KiB ** 5,
    pib: KiB ** 5,
    eb: KiB ** 6,
    eib: KiB ** 6,
  },
  bps: {
    bps: 1,
    "bit/s": 1,
    bit: 1,
    kbps: 1e3,
    "kbit/s": 1e3,
    kbit: 1e3,
    mbps: 1e6,
    "mbit/s": 1e6,
    mbit: 1e6,
    gbps: 1e9,
    "gbit/s": 1e9,
    gbit: 1e9,
    tbps: 1e12,
    "tbit/s": 1e12,
    tbit: 1e12,
  },
  ns: { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9 },
  fraction: { "%": 0.01 },
};

/** The suffixes a unit accepts, for messages: "ns, us, µs, ms, s". */
export function acceptedUnits(unit: Unit): string {
  return Object.keys(SUFFIXES[unit]).join(", ");
}

/**
 * A quantity as people write it (`30ms`, `1.5 s`, `50Mbit`, `50 mbps`, `1%`,
 * `8 GiB`; case-insensitive) → its base unit (ns, bit/s, fraction, bytes).
 * A bare number is refused unless `bare` names the unit it is in (a form
 * whose label says "ms"). Throws a RangeError naming what was wrong and the
 * units accepted; `what` (e.g. "--latency") starts the message.
 */
export function parseQuantity(text: string, unit: Unit, opts: { what?: string; bare?: string } = {}): number {
  const what = opts.what ?? UNIT_NAMES[unit];
  const m = /^\+?(\d+(?:\.\d*)?|\.\d+)\s*([^\s\d.].*)?$/.exec(text.trim());
  const suffix = (m?.[2] ?? opts.bare)?.toLowerCase();
  const scale = suffix === undefined ? undefined : SUFFIXES[unit][suffix];
  if (!m || scale === undefined) {
    const hint = m && suffix === undefined ? "a number needs a unit" : `expected ${UNIT_NAMES[unit]}`;
    throw new RangeError(`${what} '${text.trim()}': ${hint}, one of ${acceptedUnits(unit)} (e.g. ${UNIT_TYPED[unit]})`);
  }
  const v = Number(m[1]) * scale;
  if (unit === "fraction" && v > 1) throw new RangeError(`${what} '${text.trim()}': expected 0% to 100%`);
  return v;
}

/** How a person types a value of each unit. */
const UNIT_TYPED: Readonly<Record<Unit, string>> = {
  bytes: "8GiB",
  bps: "50Mbit",
  ns: "30ms",
  fraction: "1%",
};

/** What a quantity of each unit is, in words ("a size was expected, not a duration"). */
export const UNIT_NAMES: Readonly<Record<Unit, string>> = {
  bytes: "a size",
  bps: "a bit rate",
  ns: "a duration",
  fraction: "a fraction",
};

/** How a model writes a value of each unit. */
export const UNIT_EXAMPLES: Readonly<Record<Unit, string>> = {
  bytes: "gb(8)",
  bps: "mbps(100)",
  ns: "ms(10)",
  fraction: "percent(1)",
};
