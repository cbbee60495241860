/**
 * The compiler: model source (TypeScript or Python) → XIR, through one
 * pipeline for both: JSON-schema validation, static analysis, then
 * reticulation (addressing, routing) when the experiment asks for it.
 *
 *   compileFile("model.ts")        run a model file, then the pipeline
 *   compileSource(text, name)      the same for model text (e.g. from the portal)
 *   compileExperiment(xir)         the pipeline alone, for XIR already in hand
 */
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Experiment, validateExperiment } from "@merge/xir";
import { cidrProblem } from "@merge/xir/ipv4";
import { assignAddresses } from "./addressing.ts";
import { analyze } from "./analysis.ts";
import type { Diagnostic, SourceLocation } from "./diagnostics.ts";
import { canonicalImage } from "./images.ts";
import { isModelError, loadModel } from "./load.ts";
import { type PythonModelResult, type PythonRunOptions, runPythonModel, runPythonSource } from "./python.ts";
import { computeRoutes } from "./routing.ts";
import { spanningTree } from "./spanning.ts";
import { topology } from "./topology.ts";
import { typeCheckModel } from "./typecheck.ts";

/** Where elements were made, by XIR path (`nodes[3]`, `links[0].constraints[1]`, `` for the network). */
export type OriginMap = ReadonlyMap<string, { readonly location: SourceLocation | undefined }>;

export interface CompileStats {
  nodes: number;
  links: number;
  sockets: number;
  addresses: number;
  /** Addresses the addressing reticulator assigned. */
  assigned: number;
  routes: number;
  /** How routes were computed: along the spanning tree, or shortest paths (small experiments with cycles). */
  routing?: "tree" | "shortest-path";
}

export interface CompileResult {
  /** True when there are no errors (warnings allowed). */
  ok: boolean;
  /** The compiled (and, when asked, reticulated) experiment; absent when the input could not be read as XIR. */
  xir?: Experiment;
  diagnostics: Diagnostic[];
  stats?: CompileStats;
}

export interface CompileOptions {
  /** Skip reticulation even when the experiment asks for it. */
  noReticulate?: boolean;
  origins?: OriginMap;
  /** Type-check a TypeScript model before running it (default true; see typecheck.ts). */
  typeCheck?: boolean;
  /** Type-check through the user's type-check server, starting it if needed (for one-shot CLIs). */
  typeCheckServer?: boolean;
}

/** Validate, analyze and reticulate XIR already in hand. Pure: the input is not changed. */
export function compileExperiment(doc: unknown, options: CompileOptions = {}): CompileResult {
  const valid = validateExperiment(doc);
  if (!valid.ok) {
    const diagnostics = valid.errors.map((e): Diagnostic => {
      // An address the schema's pattern rejects deserves the analyzer's explanation.
      const value = /\.addrs\[\d+\]$/.test(e.path) ? at(doc, e.path) : undefined;
      if (typeof value === "string") {
        const problem = cidrProblem(value) ?? e.message;
        return { severity: "error", code: "malformed-address", message: `malformed address: ${problem}`, path: e.path };
      }
      return { severity: "error", code: "schema", message: `${e.path || "(document)"}: ${e.message}`, path: e.path };
    });
    return { ok: false, diagnostics: locate(diagnostics, options.origins) };
  }
  const x = copyExperiment(valid.value);
  // Image aliases (ubuntu:2204, debian:12) become the catalog's names, which facilities know.
  for (const n of x.nodes) if (n.image !== undefined) n.image = canonicalImage(n.image) ?? n.image;
  const t = topology(x);
  const diagnostics = analyze(x, t);
  const failed = diagnostics.some((d) => d.severity === "error");
  let assigned = 0;
  let routes = 0;
  let mode: CompileStats["routing"];
  if (!failed && !options.noReticulate) {
    const routed = x.parameters.routing === "static";
    const tree = routed ? spanningTree(t, x.nodes.length) : undefined;
    if (x.parameters.addressing === "ipv4") {
      const before = countAddresses(x);
      const order = tree ? tree.linkPreorder : Int32Array.from(x.links, (_, i) => i);
      diagnostics.push(...assignAddresses(x, t, order));
      assigned = countAddresses(x) - before;
    }
    if (tree && !diagnostics.some((d) => d.severity === "error")) {
      const routed = computeRoutes(x, t, tree);
      routes = routed.routes;
      mode = routed.mode;
    }
  }
  const ok = !diagnostics.some((d) => d.severity === "error");
  return {
    ok,
    xir: x,
    diagnostics: locate(diagnostics, options.origins),
    stats: {
      nodes: x.nodes.length,
      links: x.links.length,
      sockets: x.nodes.reduce((n, node) => n + node.sockets.length, 0),
      addresses: countAddresses(x),
      assigned,
      routes,
      ...(mode ? { routing: mode } : {}),
    },
  };
}

/** Run a model file (`.ts` or `.py`) and compile the experiment it makes. */
export async function compileFile(path: string, options: Omit<CompileOptions, "origins"> = {}): Promise<CompileResult> {
  const file = resolve(path);
  if (!existsSync(file)) {
    return fail({ severity: "error", code: "no-file", message: `no such model file: ${path}` });
  }
  const ext = extname(file);
  if (ext === ".py") return compilePython(file, options);
  if (![".ts", ".mts", ".js", ".mjs"].includes(ext)) {
    return fail({
      severity: "error",
      code: "unknown-model-kind",
      message: `${path}: a model is a TypeScript (.ts), JavaScript (.js, .mjs) or Python (.py) file`,
    });
  }
  if (options.typeCheck !== false && (ext === ".ts" || ext === ".mts")) {
    // Type errors (units, misspelt calls) stop the compile before the model runs.
    const typeErrors = await typeCheckModel(file, { server: options.typeCheckServer === true });
    if (typeErrors.length) return { ok: false, diagnostics: typeErrors };
  }
  try {
    const net = await loadModel(file);
    const { xir, origins, notes } = net.compileParts();
    const result = compileExperiment(xir, { ...options, origins });
    return { ...result, diagnostics: [...notes, ...result.diagnostics] };
  } catch (err) {
    if (isModelError(err)) return { ok: false, diagnostics: err.diagnostics };
    throw err;
  }
}

/**
 * Compile model text. The text is written to a private temporary directory
 * (where `@merge/model` resolves to this project's) and run from there;
 * locations in diagnostics name `filename`.
 */
export async function compileSource(
  text: string,
  filename = "model.ts",
  options: Omit<CompileOptions, "origins"> = {},
): Promise<CompileResult> {
  const dir = mkdtempSync(join(tmpdir(), "merge-model-"));
  try {
    symlinkSync(projectNodeModules(), join(dir, "node_modules"), "dir");
    writeFileSync(join(dir, "package.json"), '{"type":"module"}\n');
    const ext = extname(filename) === ".py" ? ".py" : ".ts";
    const file = join(dir, `model${ext}`);
    writeFileSync(file, text);
    const result = await compileFile(file, options);
    for (const d of result.diagnostics) {
      if (d.location?.file === file) d.location = { ...d.location, file: filename };
      d.message = d.message.split(file).join(filename);
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function compilePython(file: string, options: Omit<CompileOptions, "origins">): Promise<CompileResult> {
  return compileRanPython(() => runPythonModel(file), options);
}

/** Compile Python model text (e.g. a pushed revision) with the runner's limits; `filename` names it in diagnostics. */
export function compilePythonSource(
  text: string,
  filename: string,
  run: PythonRunOptions = {},
): Promise<CompileResult> {
  return compileRanPython(() => runPythonSource(text, filename, run), {});
}

async function compileRanPython(
  runModel: () => Promise<PythonModelResult>,
  options: Omit<CompileOptions, "origins">,
): Promise<CompileResult> {
  try {
    const ran = await runModel();
    const result = compileExperiment(ran.experiment, { ...options, ...(ran.origins ? { origins: ran.origins } : {}) });
    const earlier = ran.diagnostics ?? [];
    return {
      ...result,
      ok: result.ok && !earlier.some((d) => d.severity === "error"),
      diagnostics: [...earlier, ...result.diagnostics],
    };
  } catch (err) {
    if (isModelError(err)) return { ok: false, diagnostics: err.diagnostics };
    throw err;
  }
}

/**
 * A copy the reticulators may change: new node and socket objects and
 * address/route lists; links, constraints and properties, which nothing
 * changes, are shared with the input. (structuredClone takes half a second at 10,000 nodes.)
 */
function copyExperiment(x: Experiment): Experiment {
  return {
    ...x,
    parameters: { ...x.parameters },
    nodes: x.nodes.map((n) => {
      const copy = { ...n, sockets: n.sockets.map((s) => ({ ...s, addrs: [...s.addrs] })) };
      if (n.routes) copy.routes = n.routes.map((r) => ({ ...r }));
      return copy;
    }),
    // Reticulation never changes links.
    links: x.links,
  };
}

function fail(d: Diagnostic): CompileResult {
  return { ok: false, diagnostics: [d] };
}

function countAddresses(x: Experiment): number {
  let n = 0;
  for (const node of x.nodes) for (const s of node.sockets) n += s.addrs.length;
  return n;
}

/** Give each diagnostic the source location of the element its path names (or the nearest enclosing one). */
function locate(diagnostics: Diagnostic[], origins: OriginMap | undefined): Diagnostic[] {
  if (!origins) return diagnostics;
  attach(diagnostics, origins);
  // In source order, as a reader of the model meets them; unlocated ones last.
  return diagnostics
    .map((d, i) => ({ d, i }))
    .sort((a, b) => {
      const x = a.d.location;
      const y = b.d.location;
      if (!x || !y) return (x ? 0 : 1) - (y ? 0 : 1) || a.i - b.i;
      return x.file.localeCompare(y.file) || x.line - y.line || x.column - y.column || a.i - b.i;
    })
    .map((e) => e.d);
}

function attach(diagnostics: Diagnostic[], origins: OriginMap): void {
  for (const d of diagnostics) {
    if (d.location || d.path === undefined) continue;
    let path: string | undefined = d.path;
    while (path !== undefined) {
      const loc = origins.get(path)?.location;
      if (loc) {
        d.location = loc;
        break;
      }
      path = path === "" ? undefined : parent(path);
    }
  }
}

/** The value at an XIR path like `nodes[1].sockets[0].addrs[2]`. */
function at(doc: unknown, path: string): unknown {
  let v: unknown = doc;
  for (const seg of path.match(/[^.[\]]+/g) ?? []) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}

function parent(path: string): string {
  const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
  return cut <= 0 ? "" : path.slice(0, cut);
}

function projectNodeModules(): string {
  // packages/model/src → <root>/node_modules
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "node_modules");
}
