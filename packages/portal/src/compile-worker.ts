/**
 * Child process for compileModel: reads a model source on stdin, compiles it
 * with @merge/model and writes `{xir, errors}` as JSON on stdout.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

type Out = { xir: unknown; errors: { message: string; line?: number; column?: number; field?: string }[] };

async function main(): Promise<Out> {
  const [lang, filename] = process.argv.slice(2) as ["ts" | "py", string];
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const source = Buffer.concat(chunks).toString();
  // biome-ignore lint/suspicious/noExplicitAny: the compiler's exports are probed at run time
  const model: any = await import("@merge/model").catch(() => ({}));
  const dir = mkdtempSync(join(tmpdir(), "merge-compile-"));
  try {
    const file = join(
      dir,
      basename(filename).replace(/[^A-Za-z0-9._-]/g, "_") || (lang === "py" ? "model.py" : "model.ts"),
    );
    writeFileSync(file, source);
    if (typeof model.compileFile !== "function") {
      return {
        xir: null,
        errors: [{ message: "this portal has no model compiler for model sources; push XIR (lang xir)" }],
      };
    }
    try {
      const r = await model.compileFile(file);
      const xir = r?.xir ?? r?.experiment ?? r;
      const diags: {
        severity?: string;
        message: string;
        location?: { line: number; column: number };
        path?: string;
      }[] = r?.diagnostics ?? [];
      const errors = diags
        .filter((d) => d.severity === undefined || d.severity === "error")
        .map((d) => ({ message: d.message, line: d.location?.line, column: d.location?.column, field: d.path }));
      if (errors.length > 0 || r?.ok === false) return { xir: null, errors };
      return { xir, errors: [] };
    } catch (e) {
      // biome-ignore lint/suspicious/noExplicitAny: ModelError carries diagnostics
      const diags: any[] = (e as any)?.diagnostics ?? [];
      if (diags.length > 0) {
        return {
          xir: null,
          errors: diags.map((d) => ({
            message: String(d.message),
            line: d.location?.line,
            column: d.location?.column,
            field: d.path,
          })),
        };
      }
      return { xir: null, errors: [{ message: (e as Error).message ?? String(e) }] };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out)),
  (e) => {
    process.stdout.write(JSON.stringify({ xir: null, errors: [{ message: String(e?.message ?? e) }] }));
  },
);
