/**
 * Model source → XIR for pushes and the compile endpoint, as the compile
 * thread runs it (compile-thread.ts; the portal's event loop never does this
 * work: compile-pool.ts queues jobs onto threads). XIR documents are
 * validated, analysed and reticulated in the thread; model programs
 * (model.ts / model.py) are user code and run confined (@merge/model's
 * confinement: runTypeScriptSource, runPythonSource), never in the portal.
 * The thread also serializes, hashes and encodes the result for the store,
 * so the main thread only moves strings.
 */
import {
  type CompileResult,
  compileExperiment,
  compilePythonSource,
  requireConfinement,
  runTypeScriptSource,
} from "@merge/model";
import { canonicalHash } from "@merge/xir";
import type { CompileError, ModelLang } from "./objects.ts";
import { type EncodedRevisionBody, encodeRevisionBody } from "./revision-body.ts";

/** A compile's outcome, ready for the revision record, the store and the response. */
export interface Compiled {
  /** The XIR as JSON text; null when it did not compile. */
  xirJson: string | null;
  xirHash: string | null;
  errors: CompileError[];
  nodes: number;
  links: number;
  /** The revision body (source and XIR) as it will be stored. */
  body: EncodedRevisionBody;
}

export interface CompileJob {
  source: string;
  lang: ModelLang;
  filename?: string;
  /** Wall-clock limit of a model program's run. */
  timeoutMs: number;
}

/** Compiles one job (in a compile thread). Never throws: a failure is the revision's errors. */
export async function compileJob(job: CompileJob): Promise<Compiled> {
  let result: CompileResult;
  try {
    if (job.lang === "xir") return finish(job.source, compileXir(job.source));
    if (job.lang === "ts") {
      // Types are checked here in the thread (warm between pushes), the program runs confined.
      result = await runTypeScriptSource(job.source, job.filename ?? "model.ts", { timeoutMs: job.timeoutMs });
    } else {
      // Confined, or refused (requireConfinement throws): never Python's audit hooks alone unless opted out.
      const sandbox = requireConfinement() === "none" ? "hooks" : "auto";
      result = await compilePythonSource(job.source, job.filename ?? "model.py", { timeoutMs: job.timeoutMs, sandbox });
    }
  } catch (e) {
    // A compiler bug or a refused confinement must not take the push down with a 500: the revision records it.
    return finish(job.source, failed(`the model compiler failed: ${(e as Error).message}`));
  }
  return finish(job.source, result);
}

/** XIR pushed as JSON: validation, static analysis and reticulation. */
export function compileXir(source: string): CompileResult {
  let doc: unknown;
  try {
    doc = JSON.parse(source);
  } catch (e) {
    return failed(`not valid JSON: ${(e as Error).message}`);
  }
  try {
    return compileExperiment(doc);
  } catch (e) {
    return failed(`the model compiler failed: ${(e as Error).message}`);
  }
}

function failed(message: string): CompileResult {
  return { ok: false, diagnostics: [{ severity: "error", code: "compiler", message }] };
}

/** A compiler result as a revision's status (errors block, warnings do not), serialized and encoded. */
export function finish(source: string, r: CompileResult): Compiled {
  const errors = r.diagnostics
    .filter((d) => d.severity === "error")
    .map((d) => ({
      message: d.message,
      ...(d.location ? { line: d.location.line, column: d.location.column } : {}),
      ...(d.path ? { field: d.path } : {}),
    }));
  const ok = r.ok && r.xir !== undefined;
  const xirJson = ok ? JSON.stringify(r.xir) : null;
  // Same text as JSON.stringify({source, xir}), without building the object twice.
  const body = encodeRevisionBody(`{"source":${JSON.stringify(source)},"xir":${xirJson ?? "null"}}`);
  return {
    xirJson,
    xirHash: ok && r.xir ? canonicalHash(r.xir) : null,
    errors: ok ? [] : errors,
    nodes: ok ? (r.xir?.nodes.length ?? 0) : 0,
    links: ok ? (r.xir?.links.length ?? 0) : 0,
    body,
  };
}
