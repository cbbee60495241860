import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

const src = new URL("../src/", import.meta.url);

test("the sources import each other without cycles (builder and validate share problem.ts)", () => {
  const files = readdirSync(src).filter((f) => f.endsWith(".ts"));
  const deps = new Map(
    files.map((f) => [
      f,
      [...readFileSync(new URL(f, src), "utf8").matchAll(/from "\.\/([\w-]+\.ts)"/g)].map((m) => m[1] as string),
    ]),
  );
  const cycles: string[] = [];
  const walk = (f: string, path: string[]) => {
    if (path.includes(f)) {
      cycles.push([...path.slice(path.indexOf(f)), f].join(" → "));
      return;
    }
    for (const d of deps.get(f) ?? []) walk(d, [...path, f]);
  };
  for (const f of files) walk(f, []);
  assert.ok(deps.get("builder.ts")?.includes("problem.ts"), "the scan sees builder's imports");
  assert.deepEqual([...new Set(cycles)], []);
});
