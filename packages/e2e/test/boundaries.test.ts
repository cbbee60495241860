/**
 * Packages meet only at their public entry points (`@merge/<pkg>` and the
 * subpaths its package.json exports), and the architecture's dependency rules
 * hold: a relative import that leaves its own package, or a package importing
 * one it must not, fails here with the file, the line and what to use instead.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const packages = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DIRS = ["src", "test", "bench", "app"];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    if (e === "node_modules" || e === "dist" || e === "gen") continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|tsx|mts)$/.test(e)) out.push(p);
  }
  return out;
}

/** Every `import … from "x"`, `export … from "x"` and `import("x")` with its line. */
function imports(text: string): { spec: string; line: number }[] {
  const out: { spec: string; line: number }[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;
  for (const m of text.matchAll(re)) {
    const spec = (m[1] ?? m[2]) as string;
    out.push({ spec, line: text.slice(0, (m.index ?? 0) + m[0].length).split("\n").length });
  }
  return out;
}

const files = readdirSync(packages).flatMap((pkg) =>
  DIRS.flatMap((d) => {
    const dir = join(packages, pkg, d);
    try {
      return statSync(dir).isDirectory() ? sources(dir).map((file) => ({ pkg, file })) : [];
    } catch {
      return [];
    }
  }),
);

test("no relative import reaches into another package", () => {
  const crossings: string[] = [];
  for (const { pkg, file } of files) {
    for (const { spec, line } of imports(readFileSync(file, "utf8"))) {
      if (!spec.startsWith(".")) continue;
      const target = relative(packages, resolve(dirname(file), spec));
      const other = target.split(sep)[0];
      if (other !== pkg) {
        crossings.push(
          `${relative(packages, file)}:${line}: '${spec}' reaches into package '${other}'; import '@merge/${other}' (or a subpath its package.json exports) instead`,
        );
      }
    }
  }
  assert.ok(files.length > 100, `scanned ${files.length} files`);
  assert.deepEqual(crossings, []);
});

/** Packages whose sources (src/) must not import these (docs/architecture.md, "Packages and their rooms"). */
const FORBIDDEN: Record<string, RegExp> = {
  portal: /^@merge\/(facility|facility-model|cli|web|e2e)(\/|$)/,
  materialize: /^@merge\/(?!xir$|xir\/errors$|proto$|materialize$)/,
  xir: /^@merge\//,
  // The error catalog is the one thing the store takes from elsewhere.
  store: /^@merge\/(?!store|xir\/errors$)/,
  realize: /^@merge\/(?!xir$|xir\/errors$|realize)/,
};

test("sources import only the packages their room allows", () => {
  const wrong: string[] = [];
  for (const { pkg, file } of files) {
    const rule = FORBIDDEN[pkg];
    if (!rule || !file.includes(`${sep}src${sep}`)) continue;
    for (const { spec, line } of imports(readFileSync(file, "utf8"))) {
      if (rule.test(spec)) wrong.push(`${relative(packages, file)}:${line}: ${pkg} must not import '${spec}'`);
    }
  }
  assert.deepEqual(wrong, []);
});

test("the scanner sees imports of every form it checks", () => {
  const found = imports(
    'import a from "./a.ts";\nimport type { B } from "../b.ts";\nexport * from "./c.ts";\nconst d = await import("./d.ts");\nimport {\n  e,\n} from "../../other/src/e.ts";\n',
  );
  assert.deepEqual(
    found.map((f) => [f.spec, f.line]),
    [
      ["./a.ts", 1],
      ["../b.ts", 2],
      ["./c.ts", 3],
      ["./d.ts", 4],
      ["../../other/src/e.ts", 7],
    ],
  );
});

test("every error class of a package is one of the error catalog's (@merge/xir/errors)", () => {
  const outside: string[] = [];
  for (const { pkg, file } of files) {
    if (!file.includes(`${sep}src${sep}`) || pkg === "web") continue;
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/class (\w+) extends (Error|TypeError|RangeError)\b/g)) {
      const line = text.slice(0, m.index).split("\n").length;
      outside.push(
        `${relative(packages, file)}:${line}: ${m[1]} extends ${m[2]}; extend MergeError with a code of the catalog`,
      );
    }
  }
  assert.deepEqual(outside, []);
});
