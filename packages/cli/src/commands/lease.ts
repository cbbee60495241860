// mrg realization extend <rlz.exp.proj> <duration> | mrg notifications [--follow] | mrg show history <exp.proj>
// Leases (how long an accepted realization holds its resources), the notices
// the portal sends about them, and an experiment's history (why something was
// reclaimed). The time left shows in `mrg list realizations` and `mrg show
// realization` through `withLeft`.
import { formatDuration, parseDuration, type Realization } from "@merge/portal/client";
import type { Command } from "commander";
import { action, type OutputFlags, parseName, portalOptions, print, signedIn, UsageError } from "../client.ts";

interface Flags extends OutputFlags {
  portal?: string;
}

/** A duration argument (`48h`, `90m`, `7d`), or a usage error naming it. */
export function durationArg(text: string, what: string): number {
  const s = parseDuration(text);
  if (s === undefined || s < 60)
    throw new UsageError(`${what}: '${text}' is not a duration of at least a minute; write e.g. 90m, 48h or 7d`);
  return s;
}

/** The time a realization has left, as a column: `1d2h`, `expired`, or empty without an expiry. */
export function timeLeft(r: Pick<Realization, "expires">, now = Date.now()): string {
  if (r.expires === null) return "";
  const left = (Date.parse(r.expires) - now) / 1000;
  return left <= 0 ? "expired" : formatDuration(left);
}

/** Rows with their time left (`left`), for tables. */
export function withLeft<T extends Pick<Realization, "expires">>(rows: T[]): (T & { left: string })[] {
  const now = Date.now();
  return rows.map((r) => ({ ...r, left: timeLeft(r, now) }));
}

export function registerLease(program: Command): void {
  const realization =
    program.commands.find((c) => c.name() === "realization") ??
    program.command("realization").description("change a realization (extend its lease)");
  portalOptions(
    realization
      .command("extend <rlz.exp.proj> <duration>")
      .description("hold an accepted realization longer, within the policy's maximum (counted from its accept)")
      .addHelpText(
        "after",
        `
Examples:
  mrg realization extend r1.demo.admin 24h
  mrg realization extend r1.demo.admin 90m`,
      ),
  ).action(
    action(async (id: string, duration: string, f: Flags) => {
      const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
      const r = await signedIn(f).extendLease(proj, exp, rlz, durationArg(duration, "duration"));
      print(f, f.json ? r : withLeft([r]), ["id", "state", "expires", "left"] as never);
    }),
  );

  portalOptions(
    program
      .command("notifications")
      .description("the portal's notices to you: lease warnings, expiry and reclaim, idleness")
      .option("--follow", "keep watching and print new notices as they come (Ctrl-C ends)"),
  ).action(
    action(async (f: Flags & { follow?: boolean }) => {
      const c = signedIn(f);
      let notices = await c.notifications();
      const show = (ns: typeof notices) => {
        for (const n of ns) {
          if (f.json) process.stdout.write(`${JSON.stringify(n)}\n`);
          else process.stdout.write(`${n.at.slice(0, 16).replace("T", " ")}  ${n.kind.padEnd(13)} ${n.message}\n`);
        }
      };
      if (!f.follow) {
        if (f.json) return print(f, notices, []);
        if (notices.length === 0) process.stdout.write("(none)\n");
        return show(notices);
      }
      show(notices);
      let last = notices.at(-1)?.id;
      for (;;) {
        await new Promise((r) => setTimeout(r, 2000));
        notices = await c.notifications(last);
        show(notices);
        last = notices.at(-1)?.id ?? last;
      }
    }),
  );

  const show = program.commands.find((c) => c.name() === "show") ?? program.command("show").description("show things");
  portalOptions(
    show
      .command("history <exp.proj>")
      .description("what happened to an experiment's realizations, and why (leases, reclaim)"),
  ).action(
    action(async (id: string, f: Flags) => {
      const [exp, proj] = parseName(id, ["experiment", "project"]) as [string, string];
      print(f, await signedIn(f).history(proj, exp), ["at", "realization", "kind", "by", "message"]);
    }),
  );
}
