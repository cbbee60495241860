// mergectl health: the portal's operations view (GET /health/detail): replicas,
// the store (sqlite size; etcd members and leader), facilities and their
// certificates, rex workers and failed actions (with their errors), realizations, materializations (age, delivery, idleness),
// leases running out, usage per project and user. Exit status 1 when there is
// something to look at (listed at the end).
import { formatDuration } from "@merge/portal/client";
import Table from "cli-table3";
import type { Command } from "commander";
import { action, type OutputFlags, portalOptions, signedIn } from "../client.ts";

const PLAIN = { head: [], border: [] };

export function registerHealth(program: Command): void {
  portalOptions(
    program
      .command("health")
      .description("every component at a glance: replicas, store, facilities, certificates, materializations, usage"),
  ).action(
    action(async (f: OutputFlags & { portal?: string }) => {
      const h = await signedIn(f).healthDetail();
      if (f.json) {
        process.stdout.write(`${JSON.stringify(h, null, 2)}\n`);
        if (h.warnings.length) process.exitCode = 1;
        return;
      }
      const out: string[] = [];
      const table = (head: string[], rows: (string | number)[][]) => {
        const t = new Table({ head, style: PLAIN });
        for (const r of rows) t.push(r.map(String));
        out.push(t.toString());
      };
      table(
        ["portal replica", "url", "host", "pid", "up"],
        h.replicas.map((r) => [
          `${r.id}${r.self ? " (this)" : ""}`,
          r.url,
          r.host,
          r.pid,
          formatDuration((Date.now() - Date.parse(r.started)) / 1000),
        ]),
      );
      const s = h.store;
      out.push(
        `store: ${s.backend}, revision ${s.revision}${s.bytes !== undefined ? `, ${(s.bytes / 2 ** 20).toFixed(1)} MiB (${s.file})` : ""}${s.backend === "etcd" ? `, leader ${s.leader ?? "none"}` : ""}`,
      );
      if (s.members)
        table(
          ["etcd member", "leader", "reachable", "db MiB"],
          s.members.map((m) => [
            m.name || m.id,
            m.leader ? "yes" : "",
            m.reachable ? "yes" : `no: ${m.error ?? ""}`,
            m.dbBytes === undefined ? "" : (m.dbBytes / 2 ** 20).toFixed(1),
          ]),
        );
      table(
        ["facility", "state", "endpoint", "certificate expires", "rex workers"],
        h.facilities.map((x) => [
          x.name,
          x.state,
          x.endpoint,
          x.certificateExpires === null ? "" : `${x.certificateExpires.slice(0, 10)} (${x.daysLeft} days)`,
          !x.health ? "" : "unreachable" in x.health ? "unknown" : x.health.workers,
        ]),
      );
      // Each facility's failed actions, with their errors, as the facility reports them.
      const failed = h.facilities.flatMap((x) =>
        x.health && "failed" in x.health
          ? x.health.failed.map((a) => [x.name, a.mzid, `${a.task}/${a.action}`, a.attempts, a.error])
          : [],
      );
      if (failed.length) table(["facility", "materialization", "failed action", "tries", "error"], failed);
      out.push(
        `realizations: ${Object.entries(h.realizations)
          .map(([k, v]) => `${v} ${k}`)
          .join(", ")}`,
      );
      if (h.expiringSoon.length)
        out.push(
          `leases ending within a day: ${h.expiringSoon.map((x) => `${x.id} (${x.expires.slice(11, 16)} UTC)`).join(", ")}`,
        );
      table(
        ["materialization", "state", "creator", "age", "idle", "undelivered"],
        h.materializations.map((m) => [
          m.id,
          m.state,
          m.creator,
          formatDuration(m.ageSeconds),
          m.idle ? `${m.idle.flagged ? "IDLE " : ""}${formatDuration(m.idle.idleSeconds)}` : "",
          m.undelivered.map((u) => `${u.facility}${u.lastError ? `: ${u.lastError}` : ""}`).join("; "),
        ]),
      );
      table(
        ["project", "realizations", "resources", "materializations"],
        Object.entries(h.usage.byProject).map(([k, u]) => [k, u.realizations, u.resources, u.materializations]),
      );
      table(
        ["user", "realizations", "resources", "materializations"],
        Object.entries(h.usage.byUser).map(([k, u]) => [k, u.realizations, u.resources, u.materializations]),
      );
      out.push(h.warnings.length ? `look at:\n${h.warnings.map((w) => `  ${w}`).join("\n")}` : "nothing to look at");
      process.stdout.write(`${out.join("\n")}\n`);
      if (h.warnings.length) process.exitCode = 1;
    }),
  );
}
