/**
 * Action specs as the store keeps them: outside rex's watched range
 * (`keys.specs`), many to a key, compressed. A 1,000-node DAG's specs are
 * 0.7 MB of JSON in 1,200 actions, and repeat themselves (the same infranet,
 * images, switch ports): one chunk of up to CHUNK_ACTIONS actions of one
 * stage per key, gzipped, is about a tenth of that in a dozen keys. Each spec
 * stays a JSON string inside its chunk, so that a worker, which reads every
 * chunk of a task, parses only the specs of the actions it claims. Nobody
 * watches them: a rex worker reads a task's chunks once, when the task
 * appears, and the driver and `cog` read them with the actions (readActions).
 * They also say which actions there are: an action with no state key is
 * pending (impliedAction in task.ts).
 */
import { gunzipSync, gzipSync } from "node:zlib";
import type { Op } from "@merge/store";
import { MergeError } from "@merge/xir/errors";
import { type Action, keys } from "./task.ts";

/** Actions in one chunk, and the JSON bytes it holds at most before a new one is started. */
const CHUNK_ACTIONS = 100;
const CHUNK_BYTES = 256 * 1024;

export class SpecChunkError extends MergeError<"facility"> {
  constructor(message: string, options?: ErrorOptions) {
    super("facility", "spec-chunk", message, options);
  }
}

/** The puts that store the actions' specs: per stage, in the actions' order, chunked. */
export function specChunkPuts(actions: readonly Action[]): Op[] {
  const stages = new Map<string, Action[]>();
  for (const a of actions) {
    const k = keys.stageSpecs(a);
    const list = stages.get(k);
    if (list) list.push(a);
    else stages.set(k, [a]);
  }
  const out: Op[] = [];
  for (const [prefix, list] of stages) {
    let chunk: Record<string, string> = {};
    let index = 0;
    let n = 0;
    let bytes = 0;
    const flush = () => {
      if (!n) return;
      out.push({ op: "put", key: keys.specChunk(prefix, index++), value: encode(chunk) });
      [chunk, n, bytes] = [{}, 0, 0];
    };
    for (const a of list) {
      const spec = JSON.stringify(a.spec);
      if (n >= CHUNK_ACTIONS || (n && bytes + spec.length > CHUNK_BYTES)) flush();
      chunk[a.id] = spec;
      n++;
      bytes += spec.length;
    }
    flush();
  }
  return out;
}

function encode(chunk: Record<string, string>): string {
  // Level 1: nearly the ratio of the default for a fifth of the driver's CPU.
  return gzipSync(JSON.stringify(chunk), { level: 1 }).toString("base64");
}

/**
 * One stored chunk as its stage and its specs (each as JSON: parseActionSpec)
 * by action id, without building each action's key (every rex worker decodes
 * every chunk of every task); a chunk that does not decode is an error naming
 * its key.
 */
export function decodeStageChunk(
  chunkKey: string,
  value: string,
): { stage: Pick<Action, "mzid" | "task" | "stage">; specs: Record<string, string> } {
  const stage = keys.parseSpecChunk(chunkKey);
  if (!stage) throw new SpecChunkError(`${chunkKey} is not an action spec chunk key`);
  let chunk: Record<string, unknown>;
  try {
    chunk = JSON.parse(gunzipSync(Buffer.from(value, "base64")).toString("utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new SpecChunkError(
      `action spec chunk ${chunkKey} does not decode (base64 of gzipped JSON expected): ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (typeof chunk !== "object" || chunk === null || Array.isArray(chunk))
    throw new SpecChunkError(`action spec chunk ${chunkKey} is not an object of specs by action id`);
  for (const id in chunk)
    if (typeof chunk[id] !== "string")
      throw new SpecChunkError(`action spec chunk ${chunkKey}: the spec of action ${id} is not a JSON string`);
  return { stage, specs: chunk as Record<string, string> };
}
