#!/usr/bin/env node
// Runs the test suite: every packages/*/test/**/*.test.ts, given to node:test as an
// explicit file list (on Node 20 a directory argument silently finds no .ts tests).
//   npm test                 all packages
//   npm test -- xir model    only these packages
//   npm test -- path/to/file.test.ts
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const args = process.argv.slice(2);
const files = [];

function walk(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir).sort()) {
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) walk(p);
    else if (entry.endsWith(".test.ts")) files.push(p);
  }
}

const explicit = args.filter((a) => a.endsWith(".ts"));
const packages = args.filter((a) => !a.endsWith(".ts"));
// Packages and files may be mixed (`npm test -- cli packages/web/test/x.test.ts`); neither: everything.
const all = readdirSync(join(root, "packages")).sort();
for (const unknown of packages.filter((p) => !all.includes(p))) {
  console.error(`npm test: no package named '${unknown}'; packages are: ${all.join(", ")}`);
  process.exit(2);
}
files.push(...explicit);
if (packages.length || !explicit.length)
  for (const pkg of packages.length ? packages : all) walk(join(root, "packages", pkg, "test"));
if (!files.length) {
  console.error("npm test: no test files found");
  process.exit(1);
}
// Tests run the command lines as users do, built (packages/cli/bin → dist): build them from these sources first.
const build = spawnSync(process.execPath, [join(root, "packages/cli/build.mjs")], { stdio: "inherit", cwd: root });
if (build.status !== 0) {
  console.error("npm test: building the command lines failed");
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? "2";
// Tests leave nothing behind: no type-check server outliving `mrg compile` (the one test of it asks
// for one and stops it), and caches in a directory of this run, not the user's ~/.cache.
const cache = mkdtempSync(join(tmpdir(), "merge-test-cache-"));
const r = spawnSync(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    `--test-concurrency=${concurrency}`,
    // A test that hangs fails by name after 10 minutes (a test may set its own, longer timeout) instead of
    // holding the run until CI's limit; a file whose tests are done but whose process lingers on an open
    // handle ends then (its after hooks have run).
    `--test-timeout=${process.env.TEST_TIMEOUT_MS ?? 600_000}`,
    "--test-force-exit",
    "--test-reporter=spec",
    ...files,
  ],
  { stdio: "inherit", cwd: root, env: { ...process.env, MERGE_TYPECHECK_SERVER: "0", XDG_CACHE_HOME: cache } },
);
rmSync(cache, { recursive: true, force: true });
process.exit(r.status ?? 1);
