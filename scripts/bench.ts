// npm run bench -- <name> [case ...]
// Finds packages/*/bench/<name>.bench.ts and runs each of its cases in a fresh
// process, so each case's peak memory is its own. Each case prints one line:
//   BENCH {"name":…,"case":…,"ms":…,"peak_mb":…, …}
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { BenchFile } from "@merge/bench";

const root = new URL("..", import.meta.url).pathname;
const [name, ...only] = process.argv.slice(2);
const available = readdirSync(join(root, "packages")).flatMap((pkg) => {
  const dir = join(root, "packages", pkg, "bench");
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith(".bench.ts"))
        .map((f) => ({ name: f.replace(/\.bench\.ts$/, ""), file: join(dir, f) }))
    : [];
});
const found = available.find((b) => b.name === name);
if (!found) {
  console.error(
    `npm run bench -- <name>: ${name ? `no benchmark named '${name}'` : "name a benchmark"}; available: ${available.map((b) => b.name).join(", ") || "none"}`,
  );
  process.exit(2);
}
const mod = (await import(pathToFileURL(found.file).href)) as { default: BenchFile };
const cases = Object.keys(mod.default.cases).filter((c) => only.length === 0 || only.includes(c));
let failed = 0;
for (const c of cases) {
  const r = spawnSync(
    process.execPath,
    [
      "--expose-gc",
      "--max-old-space-size=8192",
      "--import",
      "tsx",
      join(root, "packages/bench/src/run-case.ts"),
      found.file,
      c,
    ],
    { stdio: "inherit", cwd: root },
  );
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
