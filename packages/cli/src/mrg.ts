#!/usr/bin/env -S node --import tsx
// mrg: the experimenter's command line. Each command lives in commands/<name>.ts
// and registers itself on the program.
import { Command } from "commander";
import { helpAfterErrors, usageExits } from "./client.ts";
import { registerAuth } from "./commands/auth.ts";
import { registerCompile } from "./commands/compile.ts";
import { registerCp } from "./commands/cp.ts";
import { registerEmu } from "./commands/emu.ts";
import { registerExec } from "./commands/exec.ts";
import { registerKeys } from "./commands/keys.ts";
import { registerLease } from "./commands/lease.ts";
import { registerMaterialize } from "./commands/materialize.ts";
import { registerMembership } from "./commands/membership.ts";
import { registerNode } from "./commands/node.ts";
import { registerProject } from "./commands/project.ts";
import { registerPush } from "./commands/push.ts";
import { registerQuota } from "./commands/quota.ts";
import { registerRealization } from "./commands/realization.ts";
import { registerRealizeLocal } from "./commands/realize.ts";
import { registerXdc } from "./commands/xdc.ts";

const program = usageExits(
  new Command("mrg").description("Merge testbed: model, realize and materialize network experiments"),
).addHelpText(
  "after",
  `
A session (portal from 'npm start'; names are realization.experiment.project):
  export MERGE_PORTAL=http://127.0.0.1:8080
  mrg login admin --password '<password>'
  mrg new experiment demo.admin              # in your personal project
  mrg push examples/demo.ts demo.admin       # revision 1 (.ts, .py or XIR .json)
  mrg realize r1.demo.admin --accept         # reserve resources
  mrg materialize r1.demo.admin              # build it; waits until it is up
  mrg exec c0 r1.demo.admin -- ping -c 3 server
  mrg cp results.tar c0:/tmp/ r1.demo.admin   # and back: mrg cp c0:/tmp/x ./x …
  mrg dematerialize r1.demo.admin && mrg relinquish r1.demo.admin
  mrg keys add && mrg xdc new x0.admin && mrg xdc ssh x0.admin   # your project's container

Exit status: 0 ok, 1 failed, 2 usage error. List and show commands take --json.
'mrg <command> --help' shows a command's options and examples.`,
);

registerCompile(program);
registerAuth(program);
registerProject(program);
registerPush(program);
registerRealization(program);
registerLease(program);
registerRealizeLocal(program);
registerMembership(program);
registerMaterialize(program);
registerNode(program);
registerExec(program);
registerCp(program);
registerEmu(program);
registerKeys(program);
registerQuota(program);
registerXdc(program);

helpAfterErrors(program);
// The usual exec mistake is a command with options and no "--" before it.
program.commands
  .find((c) => c.name() === "exec")
  ?.showHelpAfterError(
    "(put the node's command after --, e.g. mrg exec c0 r1.demo.admin -- ping -c 3 server; see 'mrg exec --help')",
  );

await program.parseAsync(process.argv);
