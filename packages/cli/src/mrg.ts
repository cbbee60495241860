#!/usr/bin/env -S node --import tsx
// mrg: the experimenter's command line. Each command lives in commands/<name>.ts
// and registers itself on the program.
import { Command } from "commander";
import { registerAuth } from "./commands/auth.ts";
import { registerCompile } from "./commands/compile.ts";
import { registerEmu } from "./commands/emu.ts";
import { registerExec } from "./commands/exec.ts";
import { registerMaterialize } from "./commands/materialize.ts";
import { registerMembership } from "./commands/membership.ts";
import { registerNode } from "./commands/node.ts";
import { registerProject } from "./commands/project.ts";
import { registerPush } from "./commands/push.ts";
import { registerRealization } from "./commands/realization.ts";
import { registerRealizeLocal } from "./commands/realize.ts";

const program = new Command("mrg")
  .description("Merge testbed: model, realize and materialize network experiments")
  .showHelpAfterError("(run 'mrg --help' for usage)");

registerCompile(program);
registerAuth(program);
registerProject(program);
registerPush(program);
registerRealization(program);
registerRealizeLocal(program);
registerMembership(program);
registerMaterialize(program);
registerNode(program);
registerExec(program);
registerEmu(program);

await program.parseAsync(process.argv);
