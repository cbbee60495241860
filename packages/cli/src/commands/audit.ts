// mergectl audit [--since 1h|TIME] [--until TIME] [--actor U] [--action A] [--failed] [--limit N]
// The portal's audit log, for administrators (portal/src/audit.ts lists what it records).
import { parseDuration } from "@merge/portal/client";
import type { Command } from "commander";
import { action, type OutputFlags, portalOptions, print, signedIn, UsageError } from "../client.ts";

interface Flags extends OutputFlags {
  portal?: string;
  since?: string;
  until?: string;
  actor?: string;
  action?: string;
  failed?: boolean;
  limit?: string;
}

/** `1h` (that long ago) or an RFC 3339 time, as RFC 3339. */
function when(v: string | undefined, flag: string): string | undefined {
  if (v === undefined) return undefined;
  const ago = /^\d+(\.\d+)?[smhdw]$/.test(v) ? parseDuration(v) : undefined;
  if (ago !== undefined) return new Date(Date.now() - ago * 1000).toISOString();
  if (Number.isNaN(Date.parse(v)))
    throw new UsageError(
      `${flag}: '${v}' is neither a duration (90m, 24h, 7d: that long ago) nor a time (2026-01-31T12:00:00Z)`,
    );
  return new Date(Date.parse(v)).toISOString();
}

export function registerAudit(program: Command): void {
  portalOptions(
    program
      .command("audit")
      .description(
        "the audit log: sign-ins (failed ones with why), account and access changes, who realized and materialized what",
      )
      .option("--since <when>", "entries since then: a duration ago (24h) or a time")
      .option("--until <when>", "entries until then")
      .option("--actor <user>", "only what this user did (or tried to sign in as)")
      .option("--action <a>", "only this action and its sub-actions (login, user, member, materialize, …)")
      .option("--failed", "only failures (failed sign-ins, refusals)")
      .option("--limit <n>", "at most the newest n (default 500)")
      .addHelpText(
        "after",
        `
Examples:
  mergectl audit --since 24h --action login --failed
  mergectl audit --actor ivy --action materialize`,
      ),
  ).action(
    action(async (f: Flags) => {
      if (f.limit !== undefined && !/^[1-9]\d{0,4}$/.test(f.limit))
        throw new UsageError(`--limit: '${f.limit}' is not a number from 1 to 99999`);
      const rows = await signedIn(f).audit({
        since: when(f.since, "--since"),
        until: when(f.until, "--until"),
        actor: f.actor,
        action: f.action,
        failed: f.failed === true,
        limit: f.limit === undefined ? undefined : Number(f.limit),
      });
      print(f, rows, ["at", "actor", "action", "target", "ok", "detail", "address"]);
    }),
  );
}
