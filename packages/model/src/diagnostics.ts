/**
 * What the compiler tells the user about their model: errors stop compilation,
 * warnings do not. Every diagnostic points at a place the user can find: a
 * file:line:column in their model source when the element was made there, and a
 * path into the XIR (`nodes[3].sockets[0]`) otherwise.
 */
import { MergeError } from "@merge/xir/errors";
export type Severity = "error" | "warning";

export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

export interface Diagnostic {
  severity: Severity;
  /** Short stable code, e.g. `duplicate-address`, `islanded`, `model-exception`. */
  code: string;
  message: string;
  location?: SourceLocation;
  /** Path into the XIR document, when the diagnostic is about one element. */
  path?: string;
}

export class ModelError extends MergeError<"model"> {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[]) {
    super("model", "invalid", diagnostics.map(formatDiagnostic).join("\n"));
    this.diagnostics = diagnostics;
  }
}

/** `model.ts:12:5: error: duplicate address 10.0.0.1 (nodes a and b) [duplicate-address]` */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.location ? `${d.location.file}:${d.location.line}:${d.location.column}: ` : "";
  const path = d.path && !d.location ? ` (at ${d.path})` : "";
  return `${where}${d.severity}: ${d.message}${path} [${d.code}]`;
}
