/**
 * Model source → XIR for pushes and the compile endpoint. XIR documents are
 * validated in-process. Model programs (model.ts / model.py) are user code, so
 * they run in a child process (compile-worker.ts) with a time and output
 * limit, never inside the portal.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type CompileResult, compileExperiment } from "@merge/model";
import { canonicalHash, type Experiment } from "@merge/xir";
import type { CompileError, ModelLang } from "./objects.ts";

export interface Compiled {
  xir: Experiment | null;
  errors: CompileError[];
  xirHash: string | null;
}

export interface CompileOptions {
  timeoutMs?: number;
}

const WORKER = fileURLToPath(new URL("./compile-worker.ts", import.meta.url));
/** tsx's loader, resolved from here so the worker starts whatever the portal's working directory. */
const TSX = typeof import.meta.resolve === "function" ? import.meta.resolve("tsx") : "tsx";

export async function compileModel(
  source: string,
  lang: ModelLang,
  filename?: string,
  opts: CompileOptions = {},
): Promise<Compiled> {
  if (lang === "xir") return compileXir(source);
  return compileInChild(source, lang, filename ?? (lang === "py" ? "model.py" : "model.ts"), opts.timeoutMs ?? 30_000);
}

/** XIR pushed as JSON: validation, static analysis and reticulation (pure, so in-process). */
export function compileXir(source: string): Compiled {
  let doc: unknown;
  try {
    doc = JSON.parse(source);
  } catch (e) {
    return { xir: null, xirHash: null, errors: [{ message: `not valid JSON: ${(e as Error).message}` }] };
  }
  try {
    return fromResult(compileExperiment(doc));
  } catch (e) {
    // A compiler bug must not take the push down with a 500: the revision records it.
    return { xir: null, xirHash: null, errors: [{ message: `the model compiler failed: ${(e as Error).message}` }] };
  }
}

/** A model compiler result as a revision's status: errors block, warnings do not. */
export function fromResult(r: CompileResult): Compiled {
  const errors = r.diagnostics
    .filter((d) => d.severity === "error")
    .map((d) => ({
      message: d.message,
      ...(d.location ? { line: d.location.line, column: d.location.column } : {}),
      ...(d.path ? { field: d.path } : {}),
    }));
  if (!r.ok || r.xir === undefined) return { xir: null, xirHash: null, errors };
  return { xir: r.xir, xirHash: canonicalHash(r.xir), errors: [] };
}

function compileInChild(source: string, lang: "ts" | "py", filename: string, timeoutMs: number): Promise<Compiled> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", TSX, WORKER, lang, filename], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "", NODE_OPTIONS: "--max-old-space-size=512" },
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = "";
    const limit = 64 * 1024 * 1024;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (b: Buffer) => {
      outBytes += b.length;
      if (outBytes > limit) child.kill("SIGKILL");
      else out.push(b);
    });
    child.stderr.on("data", (b: Buffer) => {
      if (err.length < 8192) err += b.toString();
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (signal !== null) {
        resolve(
          fail(
            `the model compiler was stopped (${signal}): it ran longer than ${timeoutMs / 1000}s or produced too much output`,
          ),
        );
        return;
      }
      try {
        resolve(fromResult(JSON.parse(Buffer.concat(out).toString()) as CompileResult));
      } catch {
        resolve(fail(`the model compiler failed (exit ${code}): ${err.trim().slice(0, 2000)}`));
      }
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(source);
  });
}

function fail(message: string): Compiled {
  return { xir: null, xirHash: null, errors: [{ message }] };
}
