#!/usr/bin/env -S node --import tsx
// mrg: the experimenter's command line. Each command lives in commands/<name>.ts
// and registers itself on the program.
import { Command } from "commander";
import { registerCompile } from "./commands/compile.ts";

const program = new Command("mrg")
  .description("Merge testbed: model, realize and materialize network experiments")
  .showHelpAfterError("(run 'mrg --help' for usage)");

registerCompile(program);

await program.parseAsync(process.argv);
