/**
 * The benchmark harness. A bench file (`packages/<pkg>/bench/<name>.bench.ts`)
 * default-exports `defineBench({ name, cases })`; each case sets up its input
 * (untimed) and returns the work to time. `npm run bench -- <name>` runs every
 * case in a fresh process and prints one `BENCH {json}` line per case.
 */
export interface CaseRun<R = unknown> {
  /** The timed work. */
  run: () => R | Promise<R>;
  /** Extra figures for the BENCH line, computed from the result (untimed). */
  fields?: (result: Awaited<R>) => Record<string, number | string | boolean>;
  /** Called after the figures are printed, also on failure (stop servers, remove temp dirs). */
  cleanup?: () => void | Promise<void>;
  /** Targets to report against: a field name and its maximum (ms, peak_mb, p99_ms) or minimum (ops_per_s). */
  targets?: { max?: Record<string, number>; min?: Record<string, number> };
}

/** A case, type-erased; build it with `benchCase` to keep the result typed. */
export type BenchCase = () => Promise<CaseRun<unknown>>;

export interface BenchFile {
  name: string;
  cases: Record<string, BenchCase>;
}

export function defineBench(file: BenchFile): BenchFile {
  return file;
}

/** A typed case: `fields` sees the result type of `run`. */
export function benchCase<R>(setup: () => CaseRun<R> | Promise<CaseRun<R>>): BenchCase {
  return async () => (await setup()) as CaseRun<unknown>;
}

/** Peak resident memory of this process so far, MiB. */
export function peakMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}
