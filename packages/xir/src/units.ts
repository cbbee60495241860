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
