/**
 * Where in the user's model an element was made. Capturing a stack is cheap;
 * formatting it (through source maps, so lines are the user's TypeScript lines)
 * is not, so a `Origin` keeps the raw Error and formats it only when a
 * diagnostic asks for its location.
 */
import { fileURLToPath } from "node:url";
import type { SourceLocation } from "./diagnostics.ts";

const here = fileURLToPath(new URL(".", import.meta.url));

export class Origin {
  readonly #trace: { stack?: string };
  #location: SourceLocation | undefined | null = null;
  constructor(trace: { stack?: string }) {
    this.#trace = trace;
  }
  get location(): SourceLocation | undefined {
    if (this.#location === null) this.#location = userFrame(this.#trace.stack ?? "");
    return this.#location;
  }
}

/** Records the caller of a modeling API function (the first frame outside this package). */
export function origin(): Origin {
  // A plain holder is cheaper than an Error; V8 formats `stack` only when read.
  const trace: { stack?: string } = {};
  Error.captureStackTrace(trace, origin);
  return new Origin(trace);
}

const FRAME = /\(?((?:file:\/\/)?[^\s()]+?):(\d+):(\d+)\)?\s*$/;

/** The first stack frame outside the modeling library and Node internals. */
export function userFrame(stack: string, inFile?: string): SourceLocation | undefined {
  for (const line of stack.split("\n")) {
    if (!line.trimStart().startsWith("at ")) continue;
    const m = FRAME.exec(line);
    if (!m) continue;
    const file = toPath(m[1] as string);
    if (file.startsWith("node:") || file.includes("/node_modules/") || file.startsWith(here)) continue;
    if (inFile !== undefined && file !== inFile) continue;
    return { file, line: Number(m[2]), column: Number(m[3]) };
  }
  return undefined;
}

function toPath(raw: string): string {
  const noQuery = raw.replace(/\?[^:/]*$/, "");
  return noQuery.startsWith("file://") ? fileURLToPath(noQuery) : noQuery;
}
