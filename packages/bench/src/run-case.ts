// Runs one benchmark case in this (fresh) process and prints its BENCH line.
import { pathToFileURL } from "node:url";
import { getHeapStatistics } from "node:v8";
import { type BenchFile, peakMb } from "./index.ts";

const [file, caseName] = process.argv.slice(2);
if (!file || !caseName) throw new Error("usage: run-case.ts <bench file> <case>");
const bench = ((await import(pathToFileURL(file).href)) as { default: BenchFile }).default;
const setup = bench.cases[caseName];
if (!setup) throw new Error(`${bench.name}: no case '${caseName}'`);

const prepared = await setup();
globalThis.gc?.();
const heapBefore = getHeapStatistics().used_heap_size;
const start = process.hrtime.bigint();
let status = 0;
try {
  const result = await prepared.run();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const heapAfter = getHeapStatistics().used_heap_size;
  const line: Record<string, unknown> = {
    name: bench.name,
    case: caseName,
    ms: Math.round(ms * 10) / 10,
    peak_mb: peakMb(),
    heap_delta_mb: Math.round((heapAfter - heapBefore) / 1048576),
    ...(prepared.fields ? prepared.fields(result) : {}),
  };
  console.log(`BENCH ${JSON.stringify(line)}`);
  const misses: string[] = [];
  for (const [k, max] of Object.entries(prepared.targets?.max ?? {})) {
    if (typeof line[k] === "number" && (line[k] as number) > max) misses.push(`${k} ${line[k]} > ${max}`);
  }
  for (const [k, min] of Object.entries(prepared.targets?.min ?? {})) {
    if (typeof line[k] === "number" && (line[k] as number) < min) misses.push(`${k} ${line[k]} < ${min}`);
  }
  if (misses.length) console.log(`# ${bench.name}/${caseName}: target missed: ${misses.join(", ")}`);
} catch (err) {
  console.error(`${bench.name}/${caseName} failed:`, err);
  status = 1;
} finally {
  await prepared.cleanup?.();
}
process.exit(status);
