/**
 * Type-checks a TypeScript model before it runs, so unit mistakes
 * (`memory.ge(ms(10))`, `latency.eq(10)`) and misspelt calls stop the compile
 * with `file:line:col` diagnostics, as they would in an editor.
 *
 * Only the user's files are checked (the model and what it imports outside
 * node_modules); `@merge/model` resolves as it does at run time, falling back
 * to this installation. Three caches keep it quick:
 * - in the process, one language service: a recheck parses only what changed;
 * - on disk (`~/.cache/merge/typecheck`), the result for a model text whose
 *   files and library are unchanged, so recompiling an unchanged model skips
 *   loading the TypeScript compiler at all. A cache that cannot be written
 *   (a confined worker) is skipped, never an error;
 * - for one-shot processes (`mrg compile`), a per-user server that keeps the
 *   language service warm between runs (typecheck-server.ts).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type * as TS from "typescript";
import type { Diagnostic } from "./diagnostics.ts";

type Ts = typeof TS;

const here = dirname(fileURLToPath(import.meta.url));
const modelEntry = join(here, "index.ts");
/** This installation's @merge/model and @merge/xir sources: the library, not the user's code. */
const librarySources = [here, join(here, "..", "..", "xir", "src")];
const projectModules = join(here, "..", "..", "..", "node_modules");

let ts: Ts | undefined;
/** One language service per option set (with or without Node's types). */
const services = new Map<string, { ls: TS.LanguageService; root: string }>();

export interface TypeCheckOptions {
  /**
   * Ask the user's type-check server (typecheck-server.ts), starting it when
   * none runs; for one-shot processes like `mrg compile`. Otherwise, and when
   * the server cannot answer, the check runs in this process.
   */
  server?: boolean;
}

/**
 * Type errors in a TypeScript model file (empty when it type-checks).
 * Warnings are never produced: a type error is an error.
 */
export async function typeCheckModel(file: string, options: TypeCheckOptions = {}): Promise<Diagnostic[]> {
  const path = resolve(file);
  const text = readFileSync(path, "utf8");
  const cached = readCache(path, text);
  if (cached) return cached;
  if (options.server && services.size === 0) {
    const answered = await askServer(path);
    if (answered) return answered;
  }
  return checkHere(path);
}

/** The check in this process (no disk-cache lookup; its result is cached). */
export async function checkHere(file: string): Promise<Diagnostic[]> {
  const path = resolve(file);
  const text = readFileSync(path, "utf8");
  ts ??= ((await import("typescript")) as unknown as { default: Ts }).default;
  const found = check(ts, path, text);
  writeCache(path, text, found.diagnostics, found.files);
  return found.diagnostics;
}

/**
 * Someone else's model text (the portal's compile threads), checked in memory
 * under `filename`: nothing is written, and the compiler reads nothing outside
 * this library, the project's node_modules and TypeScript's own declarations,
 * so an `import` or `/// <reference>` of another path finds nothing, not even
 * whether it exists. The language service stays warm in the calling thread.
 */
export async function typeCheckSource(text: string, filename: string): Promise<Diagnostic[]> {
  ts ??= ((await import("typescript")) as unknown as { default: Ts }).default;
  const t = ts;
  const kind = USES_NODE.test(text) ? "virtual-node" : "virtual";
  let service = services.get(kind);
  if (!service) {
    const options = kind === "virtual-node" ? NODE_OPTIONS : OPTIONS;
    const names = kind === "virtual-node" ? [VIRTUAL] : [VIRTUAL, GLOBALS];
    service = {
      ls: t.createLanguageService(
        virtualHost(t, options, () => names),
        registry(t),
      ),
      root: VIRTUAL,
    };
    services.set(kind, service);
  }
  virtualText = text;
  virtualVersion++;
  const program = service.ls.getProgram();
  const file = program?.getSourceFile(VIRTUAL);
  if (!program || !file) return [];
  const syntax = program.getSyntacticDiagnostics(file);
  return (syntax.length ? syntax : program.getSemanticDiagnostics(file)).map((d) => {
    const out = toDiagnostic(t, d, syntax.length > 0);
    if (out.location) out.location = { ...out.location, file: filename };
    return out;
  });
}

/** The in-memory model of typeCheckSource: a path no file system has. */
const VIRTUAL = "/merge-model-in-memory/model.ts";
let virtualText = "";
let virtualVersion = 0;
/** What an in-memory check may read: this library, @merge/xir, the project's node_modules (TypeScript's declarations). */
const readableRoots = [join(here, ".."), join(here, "..", "..", "xir"), projectModules].map((p) => resolve(p));

function mayRead(name: string): boolean {
  const p = resolve(name);
  return readableRoots.some((root) => p === root || p.startsWith(root + sep));
}

function virtualHost(t: Ts, options: TS.CompilerOptions, roots: () => string[]): TS.LanguageServiceHost {
  const sys = t.sys;
  return {
    getCompilationSettings: () => options,
    getScriptFileNames: roots,
    getScriptVersion: (name) => (name === VIRTUAL ? String(virtualVersion) : "0"),
    getScriptSnapshot: (name) => {
      if (name === VIRTUAL) return t.ScriptSnapshot.fromString(virtualText);
      if (name === GLOBALS) return t.ScriptSnapshot.fromString(GLOBALS_TEXT);
      const text = mayRead(name) ? sys.readFile(name) : undefined;
      return text === undefined ? undefined : t.ScriptSnapshot.fromString(text);
    },
    getCurrentDirectory: () => dirname(VIRTUAL),
    getDefaultLibFileName: (o) => t.getDefaultLibFilePath(o),
    fileExists: (name) => name === VIRTUAL || name === GLOBALS || (mayRead(name) && sys.fileExists(name)),
    readFile: (name) => (name === VIRTUAL ? virtualText : mayRead(name) ? sys.readFile(name) : undefined),
    directoryExists: (name) => name === dirname(VIRTUAL) || (mayRead(name) && sys.directoryExists(name)),
    getDirectories: (name) => (mayRead(name) ? sys.getDirectories(name) : []),
    realpath: (name) => (mayRead(name) && sys.realpath ? sys.realpath(name) : name),
    // The model may import @merge/model only (as in the confined run); the library resolves its own imports.
    resolveModuleNameLiterals: (literals, containing, _ref, opts) =>
      literals.map((lit) => {
        if (containing === VIRTUAL) {
          return lit.text === "@merge/model"
            ? { resolvedModule: { resolvedFileName: modelEntry, extension: ".ts", isExternalLibraryImport: false } }
            : { resolvedModule: undefined };
        }
        return t.resolveModuleName(lit.text, containing, opts, {
          fileExists: (n) => mayRead(n) && sys.fileExists(n),
          readFile: (n) => (mayRead(n) ? sys.readFile(n) : undefined),
          directoryExists: (n) => mayRead(n) && sys.directoryExists(n),
          realpath: (n) => (mayRead(n) && sys.realpath ? sys.realpath(n) : n),
          getCurrentDirectory: () => dirname(VIRTUAL),
          getDirectories: (n) => (mayRead(n) ? sys.getDirectories(n) : []),
        });
      }),
  };
}

/** The server's answer, or undefined (none running: one is started for next time). */
async function askServer(file: string): Promise<Diagnostic[] | undefined> {
  const socket = join(cacheDir(), `server-${libraryFingerprint().slice(0, 12)}.sock`);
  const answer = await new Promise<string | undefined>((done) => {
    const conn = connect(socket);
    let text = "";
    conn.setEncoding("utf8");
    conn.on("connect", () => conn.write(`${JSON.stringify({ file })}\n`));
    conn.on("data", (c: string) => {
      text += c;
    });
    conn.on("end", () => done(text));
    conn.on("error", () => done(undefined));
    conn.setTimeout(30_000, () => {
      conn.destroy();
      done(undefined);
    });
  });
  if (answer === undefined) {
    startServer(socket);
    return undefined;
  }
  try {
    const reply = JSON.parse(answer) as { diagnostics?: Diagnostic[] };
    return reply.diagnostics;
  } catch {
    return undefined;
  }
}

function startServer(socket: string): void {
  try {
    mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
    rmSync(socket, { force: true }); // a server that died left its socket
    const tsx = pathToFileURL(join(projectModules, "tsx", "dist", "esm", "index.mjs")).href;
    const child = spawn(process.execPath, ["--import", tsx, join(here, "typecheck-server.ts"), socket], {
      detached: true,
      stdio: "ignore",
    });
    child.on("error", () => undefined);
    child.unref();
  } catch {
    // No server: every check runs in its own process.
  }
}

function check(t: Ts, root: string, text: string): { diagnostics: Diagnostic[]; files: string[] } {
  // Node's types cost more to load than the rest together; only a model that looks like it uses Node gets them.
  const kind = USES_NODE.test(text) ? "node" : "plain";
  // One service, one root at a time: its document registry keeps the parsed
  // libraries, so a new root re-parses only the user's files.
  let service = services.get(kind);
  if (!service) {
    const made = { ls: undefined as unknown as TS.LanguageService, root };
    const roots = kind === "node" ? () => [made.root] : () => [made.root, GLOBALS];
    made.ls = t.createLanguageService(host(t, kind === "node" ? NODE_OPTIONS : OPTIONS, roots), registry(t));
    service = made;
    services.set(kind, made);
  }
  service.root = root;
  const program = service.ls.getProgram();
  if (!program) return { diagnostics: [], files: [root] };
  const users = program.getSourceFiles().filter((f) => isUserFile(f.fileName));
  const diagnostics: Diagnostic[] = [];
  for (const f of users) {
    const syntax = program.getSyntacticDiagnostics(f);
    // A file that does not parse gets its syntax errors only: the rest would follow from them.
    for (const d of syntax.length ? syntax : program.getSemanticDiagnostics(f)) {
      diagnostics.push(toDiagnostic(t, d, syntax.length > 0));
    }
  }
  return { diagnostics, files: users.map((f) => f.fileName) };
}

/** The model's own files: not TypeScript's libs, not a package, not this library. */
function isUserFile(name: string): boolean {
  return (
    !name.includes(`${sep}node_modules${sep}`) &&
    !name.includes("/node_modules/") &&
    !librarySources.some((dir) => name.startsWith(dir + sep) || name.startsWith(`${dir}/`))
  );
}

const OPTIONS: TS.CompilerOptions = {
  target: 9 /* ES2022 */,
  module: 99 /* ESNext */,
  moduleResolution: 100 /* Bundler */,
  allowImportingTsExtensions: true,
  allowJs: false,
  noEmit: true,
  skipLibCheck: true,
  esModuleInterop: true,
  resolveJsonModule: true,
  // Loose where a model's style is its own business; the units are in the types either way.
  strict: false,
  lib: ["lib.es2023.d.ts"],
  types: [],
};
const NODE_OPTIONS: TS.CompilerOptions = { ...OPTIONS, types: ["node"], typeRoots: [join(projectModules, "@types")] };
const USES_NODE =
  /\bnode:|\bprocess\.|\bBuffer\b|\b__dirname\b|\brequire\(|import\.meta\.(dirname|filename)|\bset(Timeout|Interval)\b|\bURL\b|\bTextEncoder\b|\bstructuredClone\b/;

/** What a model without Node's types may still use: the console. */
const GLOBALS = join(here, "model-globals.d.ts");
const GLOBALS_TEXT = `interface ModelConsole { log(...a: unknown[]): void; error(...a: unknown[]): void; warn(...a: unknown[]): void; info(...a: unknown[]): void; debug(...a: unknown[]): void; table(...a: unknown[]): void; }
declare var console: ModelConsole;
`;

let shared: TS.DocumentRegistry | undefined;
function registry(t: Ts): TS.DocumentRegistry {
  shared ??= t.createDocumentRegistry();
  return shared;
}

function host(t: Ts, options: TS.CompilerOptions, roots: () => string[]): TS.LanguageServiceHost {
  return {
    getCompilationSettings: () => options,
    getScriptFileNames: roots,
    getScriptVersion: (name) => {
      // Packages and TypeScript's libs do not change under a running process; user files do.
      if (!isUserFile(name)) return "0";
      try {
        const st = statSync(name);
        return `${st.mtimeMs}:${st.size}`;
      } catch {
        return "missing";
      }
    },
    getScriptSnapshot: (name) => {
      if (name === GLOBALS) return t.ScriptSnapshot.fromString(GLOBALS_TEXT);
      try {
        return t.ScriptSnapshot.fromString(readFileSync(name, "utf8"));
      } catch {
        return undefined;
      }
    },
    getCurrentDirectory: () => process.cwd(),
    getDefaultLibFileName: (o) => t.getDefaultLibFilePath(o),
    fileExists: (name) => name === GLOBALS || t.sys.fileExists(name),
    readFile: t.sys.readFile,
    readDirectory: t.sys.readDirectory,
    directoryExists: t.sys.directoryExists,
    getDirectories: t.sys.getDirectories,
    realpath: t.sys.realpath,
    // @merge/model as at run time: the model's own copy if it has one, else this installation's.
    resolveModuleNameLiterals: (literals, containing, _ref, options) =>
      literals.map((lit) => {
        const r = t.resolveModuleName(lit.text, containing, options, t.sys);
        if (!r.resolvedModule && lit.text === "@merge/model") {
          return { resolvedModule: { resolvedFileName: modelEntry, extension: ".ts", isExternalLibraryImport: false } };
        }
        return r;
      }),
  };
}

/** Unit type names in the user's words. */
const UNIT_TYPES: Record<string, string> = {
  Bytes: "a size",
  'Quantity<"bytes">': "a size",
  'Quantity<"bps">': "a bit rate",
  'Quantity<"ns">': "a duration",
  'Quantity<"fraction">': "a fraction",
  BitsPerSecond: "a bit rate",
  Nanoseconds: "a duration",
  Fraction: "a fraction",
  never: "a plain count",
};
const UNIT_EXAMPLE: Record<string, string> = {
  Bytes: "gb(8)",
  BitsPerSecond: "mbps(100)",
  Nanoseconds: "ms(10)",
  Fraction: "percent(1)",
  never: "4",
};

function toDiagnostic(t: Ts, d: TS.Diagnostic, syntax: boolean): Diagnostic {
  const first = t.flattenDiagnosticMessageText(d.messageText, "\n").split("\n")[0] ?? "";
  const out: Diagnostic = syntax
    ? { severity: "error", code: "syntax", message: `syntax error: ${first}` }
    : { severity: "error", code: `ts${d.code}`, message: unitWords(first) };
  if (d.file && d.start !== undefined) {
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    out.location = { file: d.file.fileName, line: line + 1, column: character + 1 };
  }
  return out;
}

/** `Argument of type 'Nanoseconds' is not assignable to parameter of type 'Bytes'.` said with units. */
function unitWords(message: string): string {
  // As the model would say at run time (ReferenceError), keeping TypeScript's suggestion.
  const unknown = /^Cannot find name '([^']+)'\.(?: Did you mean '([^']+)'\?)?$/.exec(message);
  if (unknown) return `${unknown[1]} is not defined${unknown[2] ? ` (did you mean ${unknown[2]}?)` : ""}`;
  const m = /^Argument of type '([^']+)' is not assignable to parameter of type '([^']+)'\.$/.exec(message);
  const want = m?.[2];
  if (!m || want === undefined || !(want in UNIT_TYPES)) return message;
  const got = m[1] as string;
  const gotWords =
    UNIT_TYPES[got] ??
    (got === "number" ? "a bare number" : /^-?[\d.e+]+$/.test(got) ? `a bare number (${got})` : `'${got}'`);
  if (want === "never" && !(got in UNIT_TYPES)) return message;
  return `${UNIT_TYPES[want]} was expected, not ${gotWords}; write e.g. ${UNIT_EXAMPLE[want]} (${message})`;
}

// ---- the on-disk result cache ----

interface Entry {
  /** TypeScript's version and the library's fingerprint. */
  library: string;
  /** The model's files, relative to its directory, with a hash of each text. */
  files: [string, string][];
  /** Diagnostics with files relative to the model's directory. */
  diagnostics: Diagnostic[];
}

function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "merge", "typecheck");
}

function sha(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

let fingerprint: string | undefined;
/** Changes when this library's sources or TypeScript change (a stat per file, once per process). */
function libraryFingerprint(): string {
  if (fingerprint) return fingerprint;
  const h = createHash("sha256");
  try {
    h.update(readFileSync(join(projectModules, "typescript", "package.json"), "utf8"));
  } catch {
    h.update("typescript?");
  }
  for (const dir of librarySources) {
    for (const f of readdirSync(dir).sort()) {
      const st = statSync(join(dir, f));
      h.update(`${f}:${st.mtimeMs}:${st.size}\n`);
    }
  }
  fingerprint = h.digest("hex").slice(0, 32);
  return fingerprint;
}

function readCache(root: string, text: string): Diagnostic[] | undefined {
  try {
    const entry = JSON.parse(readFileSync(join(cacheDir(), `${sha(text)}.json`), "utf8")) as Entry;
    if (entry.library !== libraryFingerprint()) return undefined;
    const base = dirname(root);
    for (const [rel, hash] of entry.files) {
      if (sha(readFileSync(resolve(base, rel), "utf8")) !== hash) return undefined;
    }
    return entry.diagnostics.map((d) =>
      d.location ? { ...d, location: { ...d.location, file: resolve(base, d.location.file) } } : d,
    );
  } catch {
    return undefined;
  }
}

function writeCache(root: string, text: string, diagnostics: Diagnostic[], files: string[]): void {
  const base = dirname(root);
  const rel = (f: string) => (isAbsolute(f) ? relative(base, f) : f);
  try {
    const entry: Entry = {
      library: libraryFingerprint(),
      files: files.map((f) => [rel(f), sha(readFileSync(f, "utf8"))]),
      diagnostics: diagnostics.map((d) =>
        d.location ? { ...d, location: { ...d.location, file: rel(d.location.file) } } : d,
      ),
    };
    const dir = cacheDir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.${process.pid}.${Date.now()}.tmp`);
    writeFileSync(tmp, JSON.stringify(entry));
    renameSync(tmp, join(dir, `${sha(text)}.json`));
  } catch {
    // No cache (read-only home, confined worker): the check still ran.
  }
}
