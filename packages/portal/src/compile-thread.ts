/**
 * A compile thread: takes CompileJobs from compile-pool.ts and answers each
 * with its Compiled outcome. Started through tsx's API (worker threads do not
 * inherit the main thread's loader).
 */
import { parentPort } from "node:worker_threads";
import { type CompileJob, compileJob } from "./compiler.ts";

parentPort?.on("message", async (m: { id: number; job: CompileJob }) => {
  const compiled = await compileJob(m.job);
  parentPort?.postMessage({ id: m.id, compiled });
});
