#!/usr/bin/env -S node --import tsx
// mergectl: the portal administrator's command line. It talks to the portal API
// with an administrator's token (sign in with `mrg login admin`, or set
// MERGE_TOKEN), and administrators sit behind the policy layer: they may manage
// every object.
import { readFileSync } from "node:fs";
import { phobos } from "@merge/facility-model";
import type { PortalClient } from "@merge/portal/client";
import { Command } from "commander";
import {
  action,
  CliError,
  done,
  helpAfterErrors,
  type OutputFlags,
  portalOptions,
  print,
  signedIn,
  UsageError,
  usageExits,
} from "./client.ts";
import { registerAudit } from "./commands/audit.ts";
import { registerHealth } from "./commands/health.ts";
import { RESOURCE_COLUMNS, resourceRow } from "./commands/resources.ts";

type Flags = OutputFlags & { portal?: string };

const program = usageExits(
  new Command("mergectl").description("Merge portal administration: accounts, facilities, resource usage"),
).addHelpText(
  "after",
  `
Sign in as an administrator with 'mrg login admin --password ...' (or set MERGE_TOKEN). Examples:
  mergectl list users --pending
  mergectl user activate alice
  mergectl facility load facility.json --endpoint https://10.0.0.1:6000 --cert ca.pem
  mergectl usage

Exit status: 0 ok, 1 failed, 2 usage error. List commands take --json.`,
);

const user = program.command("user").description("activate, freeze, promote or delete accounts");
for (const [verb, state, what] of [
  ["activate", "active", "let a registered (or frozen) account in"],
  ["freeze", "frozen", "lock an account out; its objects stay"],
] as const) {
  portalOptions(user.command(`${verb} <name...>`).description(what)).action(
    action(async (names: string[], f: Flags) => {
      const c = signedIn(f);
      const out = [];
      for (const n of names) out.push(await c.setUserState(n, state));
      print(f, out, ["name", "state", "admin", "email"]);
    }),
  );
}
portalOptions(
  user
    .command("admin <name>")
    .description("make an account an administrator")
    .option("--revoke", "take administration away"),
).action(
  action(async (name: string, f: Flags & { revoke?: boolean }) => {
    const c = signedIn(f);
    const u = await c.user(name);
    if (u.state === "pending") throw new CliError(`${name} is not active yet; mergectl user activate ${name} first`);
    print(f, await c.setUserState(name, u.state, !f.revoke), ["name", "state", "admin"]);
  }),
);
portalOptions(
  user.command("delete <name>").description("delete an account, its personal project and home directory"),
).action(
  action(async (name: string, f: Flags) => {
    await signedIn(f).deleteUser(name);
    done(f, `deleted user ${name}`, { user: name, deleted: true });
  }),
);

const list = program.command("list").description("list everything on the portal");
portalOptions(list.command("users").option("--pending", "only accounts waiting for activation")).action(
  action(async (f: Flags & { pending?: boolean }) => {
    const us = await signedIn(f).users();
    print(f, f.pending ? us.filter((u) => u.state === "pending") : us, ["name", "state", "admin", "email", "created"]);
  }),
);
portalOptions(list.command("projects")).action(
  action(async (f: Flags) =>
    print(f, await signedIn(f).projects(), ["name", "visibility", "creator", "personal", "created"]),
  ),
);
portalOptions(list.command("experiments")).action(
  action(async (f: Flags) => {
    const c = signedIn(f);
    const all = [];
    for (const p of await c.projects()) all.push(...(await c.experiments(p.name)));
    print(f, all, ["name", "project", "visibility", "creator", "revisions", "created"]);
  }),
);
portalOptions(list.command("realizations")).action(
  action(async (f: Flags) =>
    print(f, await signedIn(f).allRealizations(), ["id", "state", "creator", "revision", "expires", "resources"]),
  ),
);
portalOptions(list.command("facilities")).action(
  action(async (f: Flags) =>
    print(f, await signedIn(f).facilities(), [
      "name",
      "state",
      "endpoint",
      "resources",
      "certificateExpires",
      "updated",
    ]),
  ),
);
portalOptions(
  list
    .command("resources")
    .description("testbed resources: cores and memory used of total, and who holds them")
    .option("--allocated", "only those with something allocated"),
).action(
  action(async (f: Flags & { allocated?: boolean }) => {
    const rs = await signedIn(f).resources(f.allocated ? { allocated: true } : {});
    if (f.json) return print(f, rs, []);
    print(
      f,
      rs.map((r) => resourceRow(r, true)),
      [...RESOURCE_COLUMNS],
    );
  }),
);

portalOptions(program.command("usage").description("resources in use per project and per user")).action(
  action(async (f: Flags) => {
    const u = await signedIn(f).usage();
    if (f.json) return print(f, u, []);
    const rows = (m: Record<string, { resources: number; realizations: number }>, kind: string) =>
      Object.entries(m).map(([name, v]) => ({ kind, name, ...v }));
    print(
      f,
      [...rows(u.byProject, "project"), ...rows(u.byUser, "user")],
      ["kind", "name", "resources", "realizations"],
    );
  }),
);

/** A facility model from a JSON file, or a built-in sample (`sample:phobos`). */
function readModel(source: string): { name: string } & Record<string, unknown> {
  if (source === "sample:phobos") return phobos() as unknown as { name: string } & Record<string, unknown>;
  try {
    return JSON.parse(readFileSync(source, "utf8")) as { name: string } & Record<string, unknown>;
  } catch (e) {
    throw new UsageError(
      `cannot read facility model ${source}: ${(e as Error).message} (give an XIR facility .json, or sample:phobos)`,
    );
  }
}

const facility = program
  .command("facility")
  .description("register facilities and load or update their resource models");
portalOptions(
  facility
    .command("load <model>")
    .description("register a facility from its model (.json, or sample:phobos); updates the model if it is registered")
    .option("--endpoint <url>", "the facility commander's endpoint", "https://127.0.0.1:6000")
    .option("--cert <file>", "PEM certificate for the commander connection")
    .option("--description <text>", "description"),
).action(
  action(async (source: string, f: Flags & { endpoint: string; cert?: string; description?: string }) => {
    const c: PortalClient = signedIn(f);
    const model = readModel(source);
    const certificate = f.cert ? readFileSync(f.cert, "utf8") : undefined;
    const exists = (await c.facilities()).some((x) => x.name === model.name);
    const r = exists
      ? await c.updateFacility(model.name, {
          model,
          ...(certificate ? { certificate } : {}),
          ...(f.description ? { description: f.description } : {}),
        })
      : await c.registerFacility({
          name: model.name,
          endpoint: f.endpoint,
          model,
          ...(certificate ? { certificate } : {}),
          ...(f.description ? { description: f.description } : {}),
        });
    print(f, r, ["name", "state", "endpoint", "resources", "certificateExpires", "updated"]);
  }),
);
for (const [verb, state] of [
  ["activate", "active"],
  ["deactivate", "inactive"],
] as const) {
  portalOptions(
    facility.command(`${verb} <name>`).description(`mark a facility ${state} (inactive ones are not realized on)`),
  ).action(
    action(async (name: string, f: Flags) =>
      print(f, await signedIn(f).updateFacility(name, { state }), ["name", "state", "updated"]),
    ),
  );
}
portalOptions(facility.command("delete <name>").description("remove a facility with nothing allocated on it")).action(
  action(async (name: string, f: Flags) => {
    await signedIn(f).deleteFacility(name);
    done(f, `deleted facility ${name}`, { facility: name, deleted: true });
  }),
);

registerAudit(program);
registerHealth(program);
helpAfterErrors(program);
await program.parseAsync(process.argv);
