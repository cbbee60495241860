import type { Command } from "commander";

// Filled in by the modeling work (issue 2): compile model.ts|model.py to XIR.
export function registerCompile(program: Command): void {
  program
    .command("compile <model>")
    .description("compile a model (model.ts or model.py) to XIR JSON")
    .option("--out <file>", "write XIR to a file instead of stdout")
    .option("--graph", "emit a node/link graph JSON for the web UI instead of XIR")
    .action(() => {
      throw new Error("mrg compile: not built yet");
    });
}
