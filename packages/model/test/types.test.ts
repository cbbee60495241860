// Unit mistakes are type errors. test/types/units.ts marks each mistake with
// `@ts-expect-error` (so the project's own `tsc` run passes). Here tsc checks a
// copy without the directives: it must report an error on exactly the marked
// lines, and nowhere else.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { test } from "node:test";

const dir = join(import.meta.dirname, "types");

test("unit and element mistakes do not type-check; the correct lines do", () => {
  const source = readFileSync(join(dir, "units.ts"), "utf8");
  const lines = source.split("\n");
  const marked = lines.flatMap((l, i) => (l.trim() === "// @ts-expect-error" ? [i + 2] : []));
  assert.ok(marked.length >= 15, `${marked.length} marked mistakes`);
  const copy = join(dir, `stripped-${process.pid}.ts`);
  const config = join(dir, `tsconfig-${process.pid}.json`);
  writeFileSync(copy, source.replaceAll("// @ts-expect-error", "// (a type error)"));
  writeFileSync(config, JSON.stringify({ extends: "./tsconfig.json", include: [copy] }));
  try {
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
    const r = spawnSync(process.execPath, [tsc, "-p", config], { encoding: "utf8" });
    const errorLines = new Set(
      [...r.stdout.matchAll(/stripped-\d+\.ts\((\d+),\d+\): error TS/g)].map((m) => Number(m[1])),
    );
    assert.deepEqual(
      [...errorLines].sort((a, b) => a - b),
      marked,
      r.stdout,
    );
  } finally {
    rmSync(copy, { force: true });
    rmSync(config, { force: true });
  }
});
