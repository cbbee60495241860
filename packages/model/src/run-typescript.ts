/**
 * The confined child of typescript.ts: compiles the model file it is given
 * (argv[2]) and writes the CompileResult as JSON on file descriptor 3, so
 * nothing the model prints can corrupt it. Diagnostics name the user's file
 * (argv[3]) instead of the scratch path. Types were checked by the caller
 * (runTypeScriptSource), so the child does not load TypeScript.
 */
import { createWriteStream } from "node:fs";
import type { CompileResult } from "./compile.ts";
import { compileFile } from "./compile.ts";

const [file, filename] = process.argv.slice(2) as [string, string];
let result: CompileResult;
try {
  // The caller type-checked the text already (typeCheckSource, in memory and warm in its thread).
  result = await compileFile(file, { typeCheck: false });
  for (const d of result.diagnostics) {
    if (d.location?.file === file) d.location = { ...d.location, file: filename };
    d.message = d.message.split(file).join(filename);
  }
} catch (e) {
  result = {
    ok: false,
    diagnostics: [{ severity: "error", code: "compiler", message: (e as Error).message ?? String(e) }],
  };
}
// What the model printed is counted (and capped) by the parent: let it all reach the parent
// before the report, so a model cannot slip megabytes of output past the cap by ending first.
await Promise.all([process.stdout, process.stderr].map((s) => new Promise((done) => s.write("", done))));
const report = createWriteStream("", { fd: 3 });
report.end(
  JSON.stringify({ ok: result.ok, xir: result.xir, diagnostics: result.diagnostics, stats: result.stats }),
  () =>
    // A model may leave timers or sockets behind: the result is written, so the run is over.
    process.exit(0),
);
