/**
 * A node command's output and a shell's input on the wire: the facility API's
 * Exec and Shell messages ↔ what NodeOps streams. The driver serves them to its
 * commander; the host agents serve and rex's side calls them for nodes on other hosts.
 */
import { create } from "@bufbuild/protobuf";
import * as pb from "@merge/proto";
import type { ExecChunk, ShellInput } from "./node-ops.ts";

export function execChunkToPb(c: ExecChunk): pb.ExecResponse {
  if ("stdout" in c) return create(pb.ExecResponseSchema, { out: { case: "stdout", value: c.stdout } });
  if ("stderr" in c) return create(pb.ExecResponseSchema, { out: { case: "stderr", value: c.stderr } });
  return create(pb.ExecResponseSchema, { out: { case: "exitCode", value: c.exit } });
}

export function shellChunkToPb(c: ExecChunk): pb.ShellResponse {
  return create(pb.ShellResponseSchema, { out: execChunkToPb(c).out });
}

/** A chunk of output; undefined for an empty message. */
export function execChunkFromPb(out: pb.ExecResponse["out"]): ExecChunk | undefined {
  if (out.case === "stdout") return { stdout: out.value };
  if (out.case === "stderr") return { stderr: out.value };
  if (out.case === "exitCode") return { exit: out.value };
  return undefined;
}

/** A shell's input after its start message; undefined for a start or an empty message. */
export function shellInputFromPb(m: pb.ShellRequest["in"]): ShellInput | undefined {
  if (m.case === "stdin") return { stdin: m.value };
  if (m.case === "resize") return { resize: { rows: m.value.rows, cols: m.value.cols } };
  if (m.case === "eof") return { eof: true };
  return undefined;
}

export function shellInputToPb(i: ShellInput): pb.ShellRequest {
  if ("stdin" in i) return create(pb.ShellRequestSchema, { in: { case: "stdin", value: i.stdin } });
  if ("resize" in i)
    return create(pb.ShellRequestSchema, { in: { case: "resize", value: create(pb.WindowSizeSchema, i.resize) } });
  return create(pb.ShellRequestSchema, { in: { case: "eof", value: true } });
}
