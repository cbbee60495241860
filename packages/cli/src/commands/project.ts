// mrg new project|experiment, list, show, delete
import type { Command } from "commander";
import {
  action,
  CliError,
  done,
  type OutputFlags,
  parseName,
  portalOptions,
  print,
  signedIn,
  UsageError,
} from "../client.ts";
import { withLeft } from "./lease.ts";
import { hasRoom, RESOURCE_COLUMNS, resourceRow } from "./resources.ts";

interface Flags extends OutputFlags {
  portal?: string;
}
type Vis = "public" | "protected" | "private";

function visibility(v: string | undefined): Vis | undefined {
  if (v === undefined) return undefined;
  if (v !== "public" && v !== "protected" && v !== "private")
    throw new UsageError(`--visibility must be public, protected or private, not '${v}'`);
  return v;
}

const PROJECT_COLS = ["name", "visibility", "creator", "personal", "description"] as const;
const EXPERIMENT_COLS = ["name", "project", "visibility", "creator", "revisions", "description"] as const;
const REALIZATION_COLS = ["id", "state", "revision", "creator", "expires", "left", "resources"] as const;

/** What a new project or experiment is for, and who may see it. */
function aboutOptions(c: Command, what: "project" | "experiment"): Command {
  return c
    .option("--description <text>", `what the ${what} is for`)
    .option("--visibility <v>", "public, protected or private (default private)");
}

export function registerProject(program: Command): void {
  const neu = program.command("new").description("create a project or an experiment");
  portalOptions(
    aboutOptions(neu.command("project <name>").description("create a project (you are its maintainer)"), "project"),
  ).action(
    action(async (name: string, f: Flags & { description?: string; visibility?: string }) => {
      const vis = visibility(f.visibility);
      const p = await signedIn(f).createProject({
        name,
        ...(f.description ? { description: f.description } : {}),
        ...(vis ? { visibility: vis } : {}),
      });
      print(f, p, [...PROJECT_COLS]);
    }),
  );
  portalOptions(
    aboutOptions(
      neu
        .command("experiment <exp.proj>")
        .description("create an experiment in a project (push models to it as revisions)"),
      "experiment",
    ),
  ).action(
    action(async (id: string, f: Flags & { description?: string; visibility?: string }) => {
      const [exp, proj] = parseName(id, ["experiment", "project"]) as [string, string];
      const vis = visibility(f.visibility);
      const e = await signedIn(f).createExperiment(proj, {
        name: exp,
        ...(f.description ? { description: f.description } : {}),
        ...(vis ? { visibility: vis } : {}),
      });
      print(f, e, [...EXPERIMENT_COLS]);
    }),
  );

  const list = program
    .command("list")
    .summary("list projects, experiments, realizations, ...")
    .description("list projects, experiments, revisions, realizations, members, facilities, resources");
  portalOptions(list.command("projects").description("projects you belong to or may see")).action(
    action(async (f: Flags) => print(f, await signedIn(f).projects(), [...PROJECT_COLS])),
  );
  portalOptions(
    list.command("experiments [project]").description("experiments of a project (default: all your projects)"),
  ).action(
    action(async (project: string | undefined, f: Flags) => {
      const c = signedIn(f);
      const projects = project ? [project] : (await c.projects()).map((p) => p.name);
      const all = [];
      for (const p of projects) all.push(...(await c.experiments(p)));
      print(f, all, [...EXPERIMENT_COLS]);
    }),
  );
  portalOptions(
    list.command("revisions <exp.proj>").description("an experiment's revisions, failed pushes included"),
  ).action(
    action(async (id: string, f: Flags) => {
      const [exp, proj] = parseName(id, ["experiment", "project"]) as [string, string];
      print(f, await signedIn(f).revisions(proj, exp), [
        "number",
        "status",
        "lang",
        "nodes",
        "links",
        "pushedBy",
        "created",
      ]);
    }),
  );
  portalOptions(
    list.command("realizations [exp.proj]").description("realizations of an experiment (default: all you can see)"),
  ).action(
    action(async (id: string | undefined, f: Flags) => {
      const c = signedIn(f);
      const rows =
        id === undefined
          ? await c.allRealizations()
          : await c.realizations(...(parseName(id, ["experiment", "project"]).reverse() as [string, string]));
      print(f, f.json ? rows : withLeft(rows), [...REALIZATION_COLS] as never);
    }),
  );
  portalOptions(list.command("members <project>").description("a project's members and their roles")).action(
    action(async (project: string, f: Flags) =>
      print(f, await signedIn(f).members(project), ["user", "role", "added"]),
    ),
  );
  portalOptions(list.command("facilities").description("the facilities the portal realizes on")).action(
    action(async (f: Flags) =>
      print(f, await signedIn(f).facilities(), ["name", "state", "endpoint", "resources", "updated"]),
    ),
  );
  portalOptions(
    list
      .command("resources")
      .description("testbed resources: cores and memory used and free, and who holds them")
      .option("--free", "only those with room left")
      .option("--allocated", "only those with something allocated"),
  ).action(
    action(async (f: Flags & { free?: boolean; allocated?: boolean }) => {
      const all = await signedIn(f).resources(f.allocated ? { allocated: true } : {});
      const rs = f.free ? all.filter(hasRoom) : all;
      if (f.json) return print(f, rs, []);
      print(
        f,
        rs.map((r) => resourceRow(r)),
        [...RESOURCE_COLUMNS],
      );
    }),
  );

  const show = program
    .command("show")
    .description("show a project, experiment, revision, realization or materialization");
  portalOptions(show.command("project <name>").description("a project")).action(
    action(async (name: string, f: Flags) => print(f, await signedIn(f).project(name), [...PROJECT_COLS, "created"])),
  );
  portalOptions(show.command("experiment <exp.proj>").description("an experiment")).action(
    action(async (id: string, f: Flags) => {
      const [exp, proj] = parseName(id, ["experiment", "project"]) as [string, string];
      print(f, await signedIn(f).experiment(proj, exp), [...EXPERIMENT_COLS, "created"]);
    }),
  );
  portalOptions(
    show
      .command("revision <exp.proj> [number]")
      .description("a revision (default: the latest): its status, errors, source or XIR")
      .option("--source", "print the model source")
      .option("--xir", "print the compiled XIR"),
  ).action(
    action(async (id: string, n: string | undefined, f: Flags & { source?: boolean; xir?: boolean }) => {
      const [exp, proj] = parseName(id, ["experiment", "project"]) as [string, string];
      const c = signedIn(f);
      const number = n === undefined ? (await c.experiment(proj, exp)).revisions : Number(n);
      if (n !== undefined && !(Number.isInteger(number) && number >= 1))
        throw new UsageError(`revision '${n}': expected a revision number >= 1`);
      if (number < 1) throw new CliError(`${id} has no revisions yet; push a model first: mrg push model.ts ${id}`);
      const r = await c.revision(proj, exp, number);
      if (f.source) return void process.stdout.write(r.source.endsWith("\n") ? r.source : `${r.source}\n`);
      if (f.xir) return void process.stdout.write(`${JSON.stringify(r.xir, null, 2)}\n`);
      if (f.json) return print(f, r, []);
      print(f, r.revision, ["number", "status", "lang", "nodes", "links", "sourceHash", "pushedBy", "created"]);
      for (const e of r.revision.errors) process.stdout.write(`  ${e.line ? `line ${e.line}: ` : ""}${e.message}\n`);
    }),
  );
  portalOptions(
    show.command("realization <rlz.exp.proj>").description("a realization: its state, expiry and node placement"),
  ).action(
    action(async (id: string, f: Flags) => {
      const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
      const r = await signedIn(f).realization(proj, exp, rlz);
      if (f.json) return print(f, r, []);
      print(f, withLeft([r]), [...REALIZATION_COLS]);
      // Materialized: how idle, and why it counts as idle (or not).
      const idle = await signedIn(f)
        .idleness(proj, exp, rlz)
        .catch(() => undefined);
      if (idle) process.stdout.write(`${idle.flagged ? "IDLE: " : "activity: "}${idle.why}\n`);
      const emb = r.realization as
        | {
            nodes?: { node: string; facility: string; resource: string; mode: string }[];
            links?: { link: string; external: boolean; emulator?: { facility: string; resource: string } }[];
          }
        | undefined;
      if (emb?.nodes?.length) print({}, emb.nodes, ["node", "facility", "resource", "mode"]);
      const external = (emb?.links ?? []).filter((l) => l.external);
      if (external.length) {
        // Only the links that leave a facility: the others are in the placement's facilities already.
        const rows = external.map((l) => ({
          link: l.link,
          external: "EXTERNAL",
          emulator: l.emulator ? `${l.emulator.facility}/${l.emulator.resource}` : "-",
        }));
        print({}, rows, ["link", "external", "emulator"]);
        process.stdout.write(
          `  warning: ${external.length === 1 ? "this link crosses facilities: its traffic crosses" : "these links cross facilities: their traffic crosses"} shared wide-area links\n`,
        );
      }
      for (const d of r.diagnostics) process.stdout.write(`  ${d}\n`);
    }),
  );

  const del = program.command("delete").description("delete a project or an experiment");
  portalOptions(del.command("project <name>").description("delete a project")).action(
    action(async (name: string, f: Flags) => {
      await signedIn(f).deleteProject(name);
      done(f, `deleted project ${name}`, { project: name, deleted: true });
    }),
  );
  portalOptions(del.command("experiment <exp.proj>").description("delete an experiment")).action(
    action(async (id: string, f: Flags) => {
      const [exp, proj] = parseName(id, ["experiment", "project"]) as [string, string];
      await signedIn(f).deleteExperiment(proj, exp);
      done(f, `deleted experiment ${id}`, { experiment: id, deleted: true });
    }),
  );
}
