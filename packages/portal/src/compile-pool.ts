/**
 * The compile pool: every compile (XIR validation, TypeScript and Python
 * models) runs on a bounded set of worker threads, never on the event loop
 * that answers requests. Jobs wait in a queue bounded globally and per user;
 * a job that would overflow it is refused at once with CompileQueueFull (429
 * with Retry-After) instead of being started and then killed at the time
 * limit, so valid models never fail for being many at a time.
 *
 * A thread that overruns the time limit (an XIR too big to analyse in time)
 * or runs out of memory is terminated and replaced; its job gets a clear error.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { removeThreadScratch } from "@merge/model";
import { MergeError } from "@merge/xir/errors";
import type { Compiled, CompileJob } from "./compiler.ts";
import { finish } from "./compiler.ts";

export interface CompileLimits {
  /** Compiles running at once, all users together (default: the number of CPUs, at least 2). */
  threads: number;
  /** Compiles one user may have running at once (default 2). */
  perUser: number;
  /** Jobs waiting, all users together (default 64). */
  queue: number;
  /** Jobs one user may have waiting (default 8). */
  perUserQueue: number;
  /** A model program's wall-clock limit (default 30 s); an XIR compile gets the same. */
  timeoutMs: number;
  /** JavaScript heap of a compile thread, MiB (default 2048: a 55,000-node XIR needs about 1,000). */
  threadHeapMb: number;
}

export function compileLimits(partial: Partial<CompileLimits> = {}): CompileLimits {
  return {
    threads: partial.threads ?? Math.max(2, availableParallelism()),
    perUser: partial.perUser ?? 2,
    queue: partial.queue ?? 64,
    perUserQueue: partial.perUserQueue ?? 8,
    timeoutMs: partial.timeoutMs ?? 30_000,
    threadHeapMb: partial.threadHeapMb ?? 2048,
  };
}

/** The queue is full (for this user or for everyone): try again after `retryAfterSeconds`. */
export class CompileQueueFull extends MergeError<"api"> {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super("api", "too_many_requests", message);
  }
}

interface Waiting {
  user: string;
  job: CompileJob;
  resolve: (c: Compiled) => void;
}

interface Slot {
  worker: Worker | undefined;
  busy: boolean;
}

/** Time a thread needs beyond a model program's own limit (confinement set-up, the report's parsing). */
const THREAD_GRACE_MS = 15_000;

export class CompilePool {
  readonly limits: CompileLimits;
  private readonly slots: Slot[];
  private readonly waiting: Waiting[] = [];
  private readonly running = new Map<string, number>();
  private nextId = 1;
  private closed = false;
  /** Recent compile durations, for Retry-After. */
  private recentMs = 2000;

  constructor(limits: Partial<CompileLimits> = {}) {
    this.limits = compileLimits(limits);
    this.slots = Array.from({ length: this.limits.threads }, () => ({ worker: undefined, busy: false }));
  }

  /** Queues a compile for `user`; throws CompileQueueFull when the queue has no room for it. */
  compile(user: string, job: Omit<CompileJob, "timeoutMs">): Promise<Compiled> {
    if (this.closed) throw new Error("the compile pool is closed");
    const mine = this.waiting.filter((w) => w.user === user).length;
    const free = this.slots.some((s) => !s.busy) && (this.running.get(user) ?? 0) < this.limits.perUser;
    if (!free) {
      if (mine >= this.limits.perUserQueue) {
        throw new CompileQueueFull(
          `you have ${mine} compiles waiting (and ${this.running.get(user) ?? 0} running), the most one user may queue; try again shortly`,
          this.retryAfter(mine),
        );
      }
      if (this.waiting.length >= this.limits.queue) {
        throw new CompileQueueFull(
          `the portal is compiling at capacity (${this.waiting.length} compiles waiting); try again shortly`,
          this.retryAfter(this.waiting.length),
        );
      }
    }
    return new Promise((resolve) => {
      this.waiting.push({ user, job: { ...job, timeoutMs: this.limits.timeoutMs }, resolve });
      this.dispatch();
    });
  }

  /** Compiles waiting and running, for tests and the benchmark. */
  get load(): { waiting: number; running: number } {
    return { waiting: this.waiting.length, running: this.slots.filter((s) => s.busy).length };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0))
      w.resolve(finish(w.job.source, failedCompile("the portal is shutting down")));
    await Promise.all(
      this.slots.map(async (s) => {
        const thread = s.worker?.threadId;
        await s.worker?.terminate();
        // Its confined run died with it (PR_SET_PDEATHSIG); its scratch directory is removed here.
        if (thread !== undefined) removeThreadScratch(thread);
      }),
    );
  }

  private retryAfter(ahead: number): number {
    return Math.max(1, Math.ceil(((ahead + 1) * this.recentMs) / 1000 / this.limits.threads));
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const i = this.waiting.findIndex((w) => (this.running.get(w.user) ?? 0) < this.limits.perUser);
      if (i < 0) return;
      const [next] = this.waiting.splice(i, 1) as [Waiting];
      this.start(slot, next);
    }
  }

  private start(slot: Slot, w: Waiting): void {
    slot.busy = true;
    this.running.set(w.user, (this.running.get(w.user) ?? 0) + 1);
    const worker = slot.worker ?? this.spawn();
    slot.worker = worker;
    const id = this.nextId++;
    const started = Date.now();
    const limitMs = w.job.timeoutMs + (w.job.lang === "xir" ? 0 : THREAD_GRACE_MS);
    const done = (c: Compiled, replace: boolean) => {
      clearTimeout(timer);
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
      if (replace) {
        slot.worker = undefined;
        // Its confined run dies with it (PR_SET_PDEATHSIG); its scratch directory is removed here.
        const thread = worker.threadId;
        void worker.terminate().finally(() => removeThreadScratch(thread));
      }
      this.recentMs = (this.recentMs * 3 + (Date.now() - started)) / 4;
      slot.busy = false;
      const left = (this.running.get(w.user) ?? 1) - 1;
      if (left > 0) this.running.set(w.user, left);
      else this.running.delete(w.user);
      w.resolve(c);
      if (!this.closed) this.dispatch();
    };
    const onMessage = (m: { id: number; compiled: Compiled }) => {
      if (m.id === id) done(m.compiled, false);
    };
    const onError = (e: Error) => {
      const memory = (e as { code?: string }).code === "ERR_WORKER_OUT_OF_MEMORY";
      const message = memory
        ? `compiling it needed more than ${this.limits.threadHeapMb} MiB of memory; make the model smaller`
        : `the model compiler failed: ${e.message}`;
      done(finish(w.job.source, failedCompile(message)), true);
    };
    const onExit = () => done(finish(w.job.source, failedCompile("the model compiler stopped unexpectedly")), true);
    const timer = setTimeout(
      () =>
        done(
          finish(
            w.job.source,
            failedCompile(`compiling it took longer than ${limitMs / 1000} s, the limit; make the model smaller`),
          ),
          true,
        ),
      limitMs,
    );
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.on("exit", onExit);
    worker.postMessage({ id, job: w.job });
  }

  private spawn(): Worker {
    // Worker threads do not inherit tsx's loader: register it through its API first.
    const thread = new URL("./compile-thread.ts", import.meta.url).href;
    const boot = `import { register } from ${JSON.stringify(import.meta.resolve("tsx/esm/api"))}; register(); await import(${JSON.stringify(thread)});`;
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), {
      resourceLimits: { maxOldGenerationSizeMb: this.limits.threadHeapMb },
      stdout: false,
      stderr: false,
    });
    // An idle thread must not keep the process alive.
    worker.unref();
    return worker;
  }
}

function failedCompile(message: string) {
  return { ok: false, diagnostics: [{ severity: "error" as const, code: "compiler", message }] };
}
