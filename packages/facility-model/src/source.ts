/**
 * Loading a facility model or resource internet from where an operator keeps
 * it: a JSON file, a TypeScript/JavaScript module, or a named sample.
 *
 *   facility.json | internet.json
 *   facility.ts      default export (or `facility` / `internet`): a Facility,
 *                    a FacilityBuilder, a ResourceInternet, an InternetBuilder,
 *                    or a function returning one of those
 *   sample:phobos | sample:two-rack | sample:wide-area
 *   sample:gen:<nodes>[:<seed>]                   generateFacility
 *   sample:internet:<facilities>x<nodes>[:<seed>] generateResourceInternet
 *
 * Unreadable sources throw `ModelSourceError` naming the file (and line, for
 * JSON syntax); schema and model problems come back as `problems`.
 */
import { readFile } from "node:fs/promises";
import { register } from "node:module";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type Facility, type ResourceInternet, validateFacility, validateResourceInternet } from "@merge/xir";
import { MergeError } from "@merge/xir/errors";
import { generateFacility } from "./generate.ts";
import { checkResourceInternet, generateResourceInternet } from "./internet.ts";
import { jsonErrorOffset, jsonPathOffset, lineCol } from "./json-text.ts";
import type { Problem } from "./problem.ts";
import { SAMPLES } from "./samples/index.ts";
import { checkFacility } from "./validate.ts";

export type LoadedModel =
  | { kind: "facility"; source: string; facility: Facility; problems: Problem[] }
  | { kind: "internet"; source: string; internet: ResourceInternet; problems: Problem[] }
  /** The document does not match the schema; `problems` says where. */
  | { kind: "invalid"; source: string; problems: Problem[] };

/** The forms `loadModel` accepts, for command-line help. */
export const MODEL_SOURCE_FORMS =
  "facility.json | internet.json | facility.ts | sample:phobos | sample:two-rack | sample:wide-area | sample:gen:<nodes>[:<seed>] | sample:internet:<k>x<nodes>[:<seed>]";

export class ModelSourceError extends MergeError<"facility-model"> {
  constructor(message: string, options?: ErrorOptions) {
    super("facility-model", "source", message, options);
  }
}

const MODULES = new Set([".ts", ".mts", ".js", ".mjs"]);

export async function loadModel(source: string, options: { cwd?: string } = {}): Promise<LoadedModel> {
  if (source.startsWith("sample:")) return fromSample(source);
  const path = resolve(options.cwd ?? process.cwd(), source);
  const ext = extname(path);
  let doc: unknown;
  if (ext === ".json") {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      throw new ModelSourceError(
        `cannot read ${source}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`,
      );
    }
    doc = parseJSON(source, text);
    const loaded = check(source, doc);
    if (loaded.kind === "invalid") {
      // Point at the line of each schema error (the first 50: each is a scan of the text).
      for (const p of loaded.problems.slice(0, 50)) {
        if (p.element === "(document)") continue;
        const { line, col } = lineCol(text, jsonPathOffset(text, p.element));
        p.at = `${source}:${line}:${col}`;
      }
    }
    return loaded;
  } else if (MODULES.has(ext)) {
    doc = await fromModule(source, path);
  } else {
    throw new ModelSourceError(
      `${source}: expected a .json file, a .ts/.js module or sample:<name> (samples: ${Object.keys(SAMPLES).join(", ")}, gen:<nodes>, internet:<k>x<nodes>)`,
    );
  }
  return check(source, doc);
}

/** Schema first, then the model rules; a document with `facilities` is a resource internet. */
export function check(source: string, doc: unknown): LoadedModel {
  const isInternet = typeof doc === "object" && doc !== null && "facilities" in doc;
  const schema = isInternet ? validateResourceInternet(doc) : validateFacility(doc);
  if (!schema.ok) {
    return {
      kind: "invalid",
      source,
      problems: schema.errors.map((e) => ({ severity: "error", element: e.path || "(document)", message: e.message })),
    };
  }
  if (isInternet) {
    const internet = doc as ResourceInternet;
    if (!Array.isArray(internet.interconnects)) {
      return {
        kind: "invalid",
        source,
        problems: [{ severity: "error", element: "interconnects", message: "must be an array of interconnects" }],
      };
    }
    return { kind: "internet", source, internet, problems: checkResourceInternet(internet) };
  }
  const facility = doc as Facility;
  return { kind: "facility", source, facility, problems: checkFacility(facility) };
}

function fromSample(source: string): LoadedModel {
  const spec = source.slice("sample:".length);
  const sample = SAMPLES[spec];
  if (sample) return check(source, sample());
  const gen = /^gen:(\d+)(?::(\d+))?$/.exec(spec);
  if (gen) return check(source, generateFacility({ nodes: Number(gen[1]), seed: Number(gen[2] ?? 1) }));
  const net = /^internet:(\d+)x(\d+)(?::(\d+))?$/.exec(spec);
  if (net) {
    return check(
      source,
      generateResourceInternet({
        facilities: Number(net[1]),
        nodesPerFacility: Number(net[2]),
        seed: Number(net[3] ?? 1),
      }),
    );
  }
  throw new ModelSourceError(
    `${source}: no such sample; samples are ${Object.keys(SAMPLES)
      .map((s) => `sample:${s}`)
      .join(", ")}, sample:gen:<nodes>[:<seed>], sample:internet:<facilities>x<nodes>[:<seed>]`,
  );
}

function parseJSON(source: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    // Node 20 does not say where; find the offset ourselves to name the line.
    const offset = jsonErrorOffset(text);
    const { line, col } = lineCol(text, offset);
    const found = offset < text.length ? `unexpected ${JSON.stringify(text[offset])}` : "unexpected end of file";
    throw new ModelSourceError(
      `${source}:${line}:${col}: invalid JSON: ${found} (${(e as Error).message.split("\n")[0]})`,
    );
  }
}

interface Buildable {
  build(options?: { validate?: boolean }): unknown;
}

/**
 * A model module kept outside this repository imports `@merge/facility-model`
 * and `@merge/xir` too; Node resolves those from the importing file and would
 * not find them. This resolve hook retries a failed `@merge/*` import from here.
 */
let mergeResolution = false;
function resolveMergeFromHere(): void {
  if (mergeResolution) return;
  mergeResolution = true;
  const here = JSON.stringify(import.meta.url);
  const hook = `export async function resolve(specifier, context, next) {
  try { return await next(specifier, context); }
  catch (e) {
    if (!specifier.startsWith("@merge/")) throw e;
    return next(specifier, { ...context, parentURL: ${here} });
  }
}`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
}

async function fromModule(source: string, path: string): Promise<unknown> {
  resolveMergeFromHere();
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ERR_MODULE_NOT_FOUND" && err.message.includes(path)) {
      throw new ModelSourceError(`cannot read ${source}: no such file`);
    }
    if (/Cannot find module '@merge\//.test(err.message) && err.message.includes("Require stack")) {
      // Outside a `"type": "module"` package a .ts file loads as CommonJS, which the hook above cannot help.
      throw new ModelSourceError(
        `${source}: failed to load: ${err.message.split("\n")[0]}; name the file .mts (or put a package.json with "type": "module" beside it) so it loads as an ES module`,
      );
    }
    throw new ModelSourceError(`${source}: failed to load: ${err.message}`);
  }
  const names = Object.keys(mod);
  let value = mod.default ?? mod.facility ?? mod.internet ?? (names.length === 1 ? mod[names[0] as string] : undefined);
  if (value === undefined) {
    throw new ModelSourceError(
      `${source}: export the facility as default (or as 'facility' / 'internet'); found exports: ${names.join(", ") || "none"}`,
    );
  }
  try {
    if (typeof value === "function") value = await (value as () => unknown)();
    if (typeof value === "object" && value !== null && typeof (value as Buildable).build === "function") {
      value = (value as Buildable).build({ validate: false });
    }
  } catch (e) {
    throw new ModelSourceError(`${source}: building the model failed: ${(e as Error).message}`);
  }
  return value;
}
