/**
 * Runs a user's TypeScript model and takes the Network it makes. The model
 * either default-exports its Network or passes it to `experiment(net)`; both
 * may be used (they must name the same network).
 *
 * The module is imported in this process (through tsx, which the CLI and tests
 * run under) with a fresh URL each time, so recompiling an edited file runs the
 * new text; modules it imports are cached as usual. Loads are serialized, since
 * `experiment()` registers into a process-wide slot.
 *
 * A model outside this project (say ~/exp/model.ts) still finds `@merge/model`
 * (see reachModelPackage). A model with its own node_modules may get its own
 * copy of this package, so
 * networks and errors are recognized by shape, and `experiment()` registers in
 * a slot on globalThis that every copy shares.
 */
import Module, { register } from "node:module";
import { dirname, join, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { nearest } from "@merge/xir";
import { type Diagnostic, ModelError } from "./diagnostics.ts";
import { Link, Network, Node, Socket } from "./network.ts";
import { userFrame } from "./source.ts";

const SLOT = Symbol.for("@merge/model.experiments");
const slot = globalThis as { [SLOT]?: Network[] | undefined };
let queue: Promise<unknown> = Promise.resolve();
let generation = 0;

/** Names the experiment this model describes (alternative to `export default net`). */
export function experiment(net: Network): Network {
  slot[SLOT]?.push(net);
  return net;
}

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** This package's own entry, which models anywhere resolve `@merge/model` to. */
const modelEntry = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), "index.ts")).href;
let hooked = false;

/**
 * Lets a model anywhere import `@merge/model` (and only it) from this
 * installation, once per process. Two paths need it:
 * - ESM: a resolve hook that falls back to this package when the model's own
 *   resolution (its node_modules, if any) finds none;
 * - tsx runs a .ts file outside any `"type": "module"` package as CommonJS,
 *   and Node 20 then loads its `import`s through require(esm), which skips
 *   async resolve hooks. So the same hook marks a model file that uses
 *   import/export syntax as an ES module, which keeps its imports on the
 *   hooked path. CommonJS models (`require`) get a Module._resolveFilename fallback.
 */
function reachModelPackage(file: string): void {
  if (hooked || file.startsWith(projectRoot + sep)) return;
  hooked = true;
  const hook = `import { readFileSync } from "node:fs";
  import { fileURLToPath } from "node:url";
  const esm = /^\\s*(import|export)\\b/m;
  export async function resolve(s, c, next) {
    let r;
    try { r = await next(s, c); } catch (e) {
      if (s !== "@merge/model") throw e;
      return { url: ${JSON.stringify(modelEntry)}, format: "module", shortCircuit: true };
    }
    if (r.format === "commonjs" && /\\.[cm]?[jt]s(\\?|$)/.test(r.url) && !r.url.includes("/node_modules/")) {
      try { if (esm.test(readFileSync(fileURLToPath(r.url.replace(/\\?.*$/, "")), "utf8"))) return { ...r, format: "module" }; } catch {}
    }
    return r;
  }`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
  const M = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = M._resolveFilename;
  const entry = fileURLToPath(modelEntry);
  M._resolveFilename = function (request: string, ...rest: unknown[]): string {
    try {
      return original.call(this, request, ...rest);
    } catch (e) {
      if (request !== "@merge/model") throw e;
      return entry;
    }
  };
}

/** A Network from this or another copy of the package. */
export function isNetwork(v: unknown): v is Network {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as Network).compileParts === "function" &&
    typeof (v as Network).name === "string"
  );
}

/** A ModelError from this or another copy of the package. */
export function isModelError(e: unknown): e is ModelError {
  return e instanceof Error && e.name === "ModelError" && Array.isArray((e as ModelError).diagnostics);
}

export function loadModel(file: string): Promise<Network> {
  const run = queue.then(() => load(file));
  queue = run.catch(() => undefined);
  return run;
}

async function load(file: string): Promise<Network> {
  reachModelPackage(file);
  slot[SLOT] = [];
  let mod: Record<string, unknown>;
  try {
    mod = (await import(`${pathToFileURL(file).href}?compile=${++generation}`)) as Record<string, unknown>;
  } catch (err) {
    slot[SLOT] = undefined;
    throw new ModelError([exceptionDiagnostic(err, file)]);
  }
  const calls = slot[SLOT] ?? [];
  slot[SLOT] = undefined;
  let exported = mod.default;
  // A model run as CommonJS shows up as its module.exports object.
  if (!isNetwork(exported) && typeof exported === "object" && exported !== null) {
    const inner = (exported as { default?: unknown }).default;
    if (isNetwork(inner) || Object.keys(exported).length === 0 || "__esModule" in exported) exported = inner;
  }
  if (exported !== undefined && !isNetwork(exported)) {
    throw new ModelError([
      {
        severity: "error",
        code: "no-network",
        message: `the model's default export is ${typeof exported}, not a Network (export default net)`,
        location: { file, line: 1, column: 1 },
      },
    ]);
  }
  const distinct = new Set<Network>(calls);
  if (isNetwork(exported)) distinct.add(exported);
  if (distinct.size === 0) {
    throw new ModelError([
      {
        severity: "error",
        code: "no-network",
        message: "the model makes no experiment: end it with `export default net` (or call experiment(net))",
        location: { file, line: 1, column: 1 },
      },
    ]);
  }
  if (distinct.size > 1) {
    throw new ModelError([
      {
        severity: "error",
        code: "several-networks",
        message: `the model names ${distinct.size} networks (${[...distinct].map((n) => n.name).join(", ")}); a model describes one experiment`,
        location: [...distinct][1]?.origin.location ?? { file, line: 1, column: 1 },
      },
    ]);
  }
  return [...distinct][0] as Network;
}

/** The modeling API's method names, for "did you mean" on a misspelt call. */
const METHODS = [
  ...new Set([Network, Node, Link, Socket].flatMap((c) => Object.getOwnPropertyNames(c.prototype))),
].filter((m) => m !== "constructor");

/** `net.conect is not a function` → ` (did you mean connect?)`. */
function didYouMean(e: Error): string {
  const called = e instanceof TypeError ? /(?:^|\.)([\w$]+) is not a function/.exec(e.message)?.[1] : undefined;
  const near = called ? nearest(called, METHODS) : undefined;
  return near && near !== called ? ` (did you mean ${near}?)` : "";
}

/** An exception from running the model, located in the user's code where possible. */
export function exceptionDiagnostic(err: unknown, file: string): Diagnostic {
  if (isModelError(err)) return err.diagnostics[0] as Diagnostic;
  const e = err instanceof Error ? err : new Error(String(err));
  // esbuild (through tsx) reports syntax errors as "file:line:col: ERROR: message".
  const syntax = /([^\s:]+\.[cm]?ts):(\d+):(\d+): ERROR: (.+)/.exec(e.message);
  if (syntax) {
    return {
      severity: "error",
      code: "syntax",
      message: `syntax error: ${syntax[4]}`,
      location: { file: syntax[1] as string, line: Number(syntax[2]), column: Number(syntax[3]) + 1 },
    };
  }
  const code = (e as { code?: string }).code;
  if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") {
    const d: Diagnostic = {
      severity: "error",
      code: "module-not-found",
      message: `${e.message.split("\n")[0]}${/'@merge\/(?!model')/.test(e.message) ? " (a model imports @merge/model; the other @merge packages are not part of the modeling API)" : ""}`,
    };
    const where = userFrame(e.stack ?? "", file) ?? userFrame(e.stack ?? "");
    d.location = where ?? { file, line: 1, column: 1 };
    return d;
  }
  const location = userFrame(e.stack ?? "", file) ?? userFrame(e.stack ?? "");
  const d: Diagnostic = {
    severity: "error",
    code: "model-exception",
    message: `the model threw ${e.name}: ${e.message}${didYouMean(e)}`,
  };
  if (location) d.location = location;
  return d;
}
