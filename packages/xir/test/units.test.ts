/** The one parse/format of quantities (units.ts) that the CLI, the web and the API share. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatQuantity, gb, mbps, ms, parseQuantity, percent, type Unit } from "../src/units.ts";

test("people's forms → base units (ns, bit/s, fraction, bytes)", () => {
  assert.equal(parseQuantity("30ms", "ns"), ms(30));
  assert.equal(parseQuantity(" 1.5 s ", "ns"), 1.5e9);
  assert.equal(parseQuantity("500us", "ns"), 500e3);
  assert.equal(parseQuantity("50Mbit", "bps"), mbps(50));
  assert.equal(parseQuantity("50mbps", "bps"), mbps(50));
  assert.equal(parseQuantity("2.5 Gbit/s", "bps"), 2.5e9);
  assert.equal(parseQuantity("1%", "fraction"), percent(1));
  assert.equal(parseQuantity("8GiB", "bytes"), gb(8));
});

test("a bare number is refused with the units accepted, unless the caller names its unit", () => {
  assert.throws(
    () => parseQuantity("50", "bps", { what: "--capacity" }),
    /--capacity '50': a number needs a unit, one of bps, bit\/s, bit, kbps.*mbit.*\(e\.g\. 50Mbit\)/,
  );
  assert.throws(() => parseQuantity("30", "ns"), /a number needs a unit, one of ns, us, µs, ms, s/);
  assert.equal(parseQuantity("30", "ns", { bare: "ms" }), ms(30));
  assert.equal(parseQuantity("1.5", "fraction", { bare: "%" }), 0.015);
});

test("wrong units, signs and out-of-range loss are refused, naming what is valid", () => {
  assert.throws(() => parseQuantity("50mb", "bps"), /'50mb': expected a bit rate, one of bps/);
  assert.throws(() => parseQuantity("5kg", "ns"), /expected a duration, one of ns, us, µs, ms, s/);
  assert.throws(() => parseQuantity("-1ms", "ns"), /expected a duration/);
  assert.throws(() => parseQuantity("1e3ms", "ns"), /expected a duration/);
  assert.throws(() => parseQuantity("150%", "fraction", { what: "loss" }), /loss '150%': expected 0% to 100%/);
});

test("what formatQuantity writes parses back to the same value", () => {
  const cases: [number, Unit][] = [
    [ms(30), "ns"],
    [1.5e9, "ns"],
    [250, "ns"],
    [mbps(50), "bps"],
    [1.5e3, "bps"],
    [0.015, "fraction"],
    [gb(8), "bytes"],
  ];
  for (const [v, unit] of cases) {
    const text = formatQuantity(v, unit);
    assert.ok(Math.abs(parseQuantity(text, unit) - v) < 1e-9 * Math.max(1, v), `${text} → ${v}`);
  }
});
