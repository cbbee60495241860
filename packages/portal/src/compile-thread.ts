/**
 * A compile thread: takes CompileJobs from compile-pool.ts and answers each
 * with its Compiled outcome, at the lowest CPU priority. Started through tsx's
 * API (worker threads do not inherit the main thread's loader).
 */
import { setPriority } from "node:os";
import { parentPort } from "node:worker_threads";
import { type CompileJob, compileJob } from "./compiler.ts";

// On Linux a priority is per thread: this one (and the confined children it
// starts) yields the CPU to the event loop that answers requests.
try {
  setPriority(19);
} catch {
  // not permitted here: compiles then share the CPU evenly
}

parentPort?.on("message", async (m: { id: number; job: CompileJob }) => {
  const compiled = await compileJob(m.job);
  parentPort?.postMessage({ id: m.id, compiled });
});
