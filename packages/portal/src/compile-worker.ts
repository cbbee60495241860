/**
 * Child process for compileModel: reads a model source on stdin, compiles it
 * with @merge/model's compileSource and writes the CompileResult as JSON on
 * stdout. Runs user code, which is why it is a separate process.
 */
import { compileSource } from "@merge/model";

const lang = process.argv[2] as "ts" | "py";
const chunks: Buffer[] = [];
for await (const c of process.stdin) chunks.push(c as Buffer);
const name = lang === "py" ? "model.py" : "model.ts";
try {
  const r = await compileSource(Buffer.concat(chunks).toString(), name);
  process.stdout.write(JSON.stringify({ ok: r.ok, xir: r.xir, diagnostics: r.diagnostics }));
} catch (e) {
  process.stdout.write(
    JSON.stringify({
      ok: false,
      diagnostics: [{ severity: "error", code: "compiler", message: (e as Error).message ?? String(e) }],
    }),
  );
}
