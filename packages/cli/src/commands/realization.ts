// mrg realize <rlz.exp.proj> [revision] [--accept] | accept | reject | relinquish
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
import { durationArg, withLeft } from "./lease.ts";

interface Flags extends OutputFlags {
  portal?: string;
}
const COLS = ["id", "state", "revision", "expires", "left", "resources"] as const;

export function registerRealization(program: Command): void {
  portalOptions(
    program
      .command("realize <rlz.exp.proj> [revision]")
      .summary("reserve resources for a revision (--local: offline)")
      .description(
        "find and reserve resources for a revision (default: the latest); accept within the timeout or they are released",
      )
      .option("--accept", "accept at once")
      .option(
        "--duration <d>",
        "hold it this long once accepted (e.g. 48h, 7d; default and maximum: the portal's policy)",
      )
      .option(
        "--best-effort",
        "when it cannot be realized, also show the closest mapping found and every constraint it leaves unmet (nothing is reserved)",
      )
      .addHelpText(
        "after",
        `
The accept window: without --accept the resources are held only until the
portal's accept timeout (47 s by default; a portal's --accept-timeout changes it).
Accept within it (mrg accept), or the realization is released and expires;
asking for it then says when it expired (for a day), not that it never existed.

The lease: an accepted realization is held until it expires (the portal's
policy sets the default and the maximum; mrg list realizations shows the time
left), then dematerialized and relinquished. mrg realization extend adds time;
mrg notifications shows the warnings before expiry.

Examples:
  mrg realize r1.demo.admin --accept      # the latest revision, accepted at once
  mrg realize r1.demo.admin --accept --duration 48h
  mrg realize r2.demo.admin 3             # revision 3; then: mrg accept r2.demo.admin
  mrg realize --local examples/demo.ts --facility phobos   # offline, nothing reserved`,
      ),
  ).action(
    action(
      async (
        id: string,
        revision: string | undefined,
        f: Flags & { accept?: boolean; bestEffort?: boolean; duration?: string },
      ) => {
        const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
        const n = revision === undefined ? undefined : Number(revision);
        if (n !== undefined && (!Number.isInteger(n) || n < 1))
          throw new UsageError(`revision must be a number >= 1, not '${revision}'`);
        const r = await signedIn(f)
          .realize(proj, exp, {
            name: rlz,
            ...(n ? { revision: n } : {}),
            ...(f.accept ? { accept: true } : {}),
            ...(f.bestEffort ? { bestEffort: true } : {}),
            ...(f.duration !== undefined ? { durationSeconds: durationArg(f.duration, "--duration") } : {}),
          })
          .catch((e: unknown) => {
            // The latest revision is broken: an earlier one may still be realized.
            if (n === undefined && e instanceof Error && /^revision \d+ did not compile/.test(e.message))
              throw new CliError(
                `${e.message}, or realize one that compiled: mrg realize ${id} <revision> (see mrg list revisions ${exp}.${proj})`,
              );
            throw e;
          });
        if (f.json) return print(f, r, []);
        print(f, withLeft([r]), [...COLS]);
        if (r.state === "failed") {
          if (r.closest !== undefined) {
            const { formatEmbedding } = await import("@merge/realize");
            process.stdout.write(
              `closest mapping found (nothing reserved; it cannot be accepted):\n${formatEmbedding(r.closest as Parameters<typeof formatEmbedding>[0])}\n`,
            );
          }
          process.stderr.write(
            `realization ${id} failed${r.closest !== undefined ? "; the closest mapping leaves these unmet" : ""}:\n${r.diagnostics.map((d) => `  ${d}`).join("\n")}\n`,
          );
          process.stderr.write(
            `change the model's constraints or wait for resources, then: mrg relinquish ${id} && mrg realize ${id}\n`,
          );
          process.exitCode = 1;
        } else if (r.state === "pending") {
          const left = r.expires ? Math.max(0, Math.round((Date.parse(r.expires) - Date.now()) / 1000)) : undefined;
          process.stdout.write(
            `accept within ${left} s (before ${r.expires?.slice(11, 19)} UTC) or it expires: mrg accept ${id}\n`,
          );
        }
      },
    ),
  );
  for (const [verb, what] of [
    ["accept", "keep a pending realization's resources until relinquished"],
    ["reject", "release a pending realization"],
    ["relinquish", "release a realization's resources and forget it"],
  ] as const) {
    portalOptions(program.command(`${verb} <rlz.exp.proj>`).description(what)).action(
      action(async (id: string, f: Flags) => {
        const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
        const c = signedIn(f);
        if (verb === "accept") {
          const r = await c.accept(proj, exp, rlz);
          return print(f, f.json ? r : withLeft([r]), [...COLS] as never);
        }
        if (verb === "reject") await c.reject(proj, exp, rlz);
        else await c.relinquish(proj, exp, rlz);
        const past = verb === "reject" ? "rejected" : "relinquished";
        done(f, `${past} ${id}`, { id, state: past });
      }),
    );
  }
}
