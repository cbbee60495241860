// cog health [--certs DIR]: the facility at a glance: its store (size; etcd
// members and leader), rex workers, materializations (age, progress,
// infrapod), actions in error with their message, testbed nodes, and
// certificates with their expiry (warning inside 30 days). Exit status 1 when
// there is something to look at (the warnings at the end).
import { resolve } from "node:path";
import { facilityHealth } from "@merge/facility";
import { formatDuration } from "@merge/portal/client";
import Table from "cli-table3";
import type { Command } from "commander";
import { defaultData } from "../config.ts";
import { PLAIN, type StoreOpts, withStore, withStoreOpts } from "./facility-store.ts";

export function register(program: Command): void {
  withStoreOpts(
    program
      .command("health")
      .description("the facility at a glance: store, rex workers, materializations, failed actions, certificates")
      .option("--certs <dir>", "certificate directory to check (default: npm start's, <data>/facility/certs)"),
  ).action(async (opts: StoreOpts & { certs?: string }) =>
    withStore(opts, async (store) => {
      const h = await facilityHealth(store, { certs: opts.certs ?? resolve(defaultData().dir, "facility", "certs") });
      if (opts.json) console.log(JSON.stringify(h, null, 2));
      else {
        const s = h.store;
        const size = s.bytes !== undefined ? `, ${(s.bytes / 2 ** 20).toFixed(1)} MiB (${s.file})` : "";
        console.log(`store: ${s.backend}, revision ${s.revision}${size}`);
        if (s.members) {
          const t = new Table({ head: ["etcd member", "leader", "reachable", "db MiB", "client URL"], style: PLAIN });
          for (const m of s.members)
            t.push([
              m.name || m.id,
              m.leader ? "yes" : "",
              m.reachable ? "yes" : `no: ${m.error ?? ""}`,
              m.dbBytes === undefined ? "" : (m.dbBytes / 2 ** 20).toFixed(1),
              m.clientUrls.join(" "),
            ]);
          console.log(t.toString());
        }
        const w = new Table({ head: ["rex worker", "host", "pid", "concurrency", "up"], style: PLAIN });
        for (const x of h.workers)
          w.push([x.id, x.host, x.pid, x.concurrency, formatDuration((Date.now() - Date.parse(x.started)) / 1000)]);
        console.log(h.workers.length ? w.toString() : "rex workers: none running");
        const m = new Table({
          head: ["materialization", "phase", "age", "nodes", "actions done", "failed", "infrapod"],
          style: PLAIN,
        });
        for (const x of h.materializations)
          m.push([
            x.mzid,
            x.phase,
            formatDuration(x.ageSeconds),
            x.nodes,
            `${x.complete}/${x.actions}`,
            x.failed,
            x.infrapod ?? "",
          ]);
        console.log(h.materializations.length ? m.toString() : "materializations: none");
        console.log(`testbed nodes recorded: ${h.nodes}`);
        if (h.certificates.length) {
          const c = new Table({ head: ["certificate", "expires", "days left"], style: PLAIN });
          for (const x of h.certificates)
            c.push([x.file, x.expires.slice(0, 10), `${x.daysLeft}${x.warn ? " (renew)" : ""}`]);
          console.log(c.toString());
        }
        if (h.warnings.length) console.log(`\nlook at:\n${h.warnings.map((x) => `  ${x}`).join("\n")}`);
        else console.log("\nnothing to look at");
      }
      if (h.warnings.length) process.exitCode = 1;
    }),
  );
}
