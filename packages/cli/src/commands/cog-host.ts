// cog host list|sweep: what the linux backend holds on this host — each
// materialization's kernel objects and processes (and the harbor), found by
// the prefix they all carry — and removing them. For the operator after a
// crash, a reset facility store, or before handing the host back: the
// facility itself sweeps orphans when it starts, and keeps live
// materializations and its harbor across restarts.
import {
  isClean,
  type Leftovers,
  leftovers,
  type MzState,
  prefixesOwned,
  prefixOf,
  processesOn,
  readStates,
  sweep,
} from "@merge/facility/linux";
import Table from "cli-table3";
import type { Command } from "commander";
import { listFacilityHosts, registerHosts } from "./facility-hosts.ts";
import { defaultDataDir, PLAIN } from "./facility-store.ts";

interface HostOpts {
  dataDir?: string;
  json?: boolean;
}

interface Held {
  prefix: string;
  mzid?: string;
  harbor: boolean;
  nodes: number;
  links: number;
  left: Leftovers;
}

async function held(dataDir: string): Promise<Held[]> {
  const states = new Map<string, MzState>();
  for (const s of readStates(dataDir, (m) => console.error(`cog: ${m}`))) states.set(prefixOf(s.plan.mzid), s);
  const out: Held[] = [];
  for (const prefix of prefixesOwned(dataDir).sort()) {
    const s = states.get(prefix);
    out.push({
      prefix,
      ...(s ? { mzid: s.plan.mzid } : {}),
      harbor: !!s?.harbor,
      nodes: s?.plan.nodes.length ?? 0,
      links: s?.plan.links.length ?? 0,
      left: await leftovers(prefix, dataDir),
    });
  }
  return out;
}

const count = (l: Leftovers) =>
  `${l.netns.length} netns, ${l.links.length} links, ${l.processes.length} processes, ${l.mounts.length} mounts`;

export function register(program: Command): void {
  const host = program
    .command("host")
    .description("what the linux backend holds on this host (materializations, the harbor), and sweeping it");
  registerHosts(host);
  const dataDirOpt = (c: Command) =>
    c.option("--data-dir <dir>", "the facility backend's data directory (default .data/facility/backend)");

  dataDirOpt(
    host
      .command("list")
      .description(
        "a facility of several hosts: its hosts (state, underlay, measured resources, nodes); else what this machine holds (materializations, the harbor, kernel objects)",
      ),
  )
    .option("--json", "print JSON")
    .option("--store <url>", "facility store URL (default $COG_STORE, else the store of the last `npm start`)")
    .action(async (opts: HostOpts & { store?: string }) => {
      // Hosts are the facility's view; --data-dir asks for this machine's.
      if (!opts.dataDir && (await listFacilityHosts(opts))) return;
      const dataDir = opts.dataDir ?? defaultDataDir();
      const rows = await held(dataDir);
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      if (rows.length === 0) {
        console.log(`nothing held in ${dataDir}`);
        return;
      }
      const t = new Table({ head: ["prefix", "materialization", "nodes", "links", "on the host"], style: PLAIN });
      for (const r of rows)
        t.push([
          r.prefix,
          r.harbor ? `${r.mzid} (harbor)` : (r.mzid ?? "(no state: interrupted)"),
          r.nodes,
          r.links,
          count(r.left),
        ]);
      console.log(t.toString());
    });

  dataDirOpt(
    host
      .command("sweep [target]")
      .description("remove everything of one materialization (its mzid or prefix), or --all (the harbor too)"),
  )
    .option("--all", "every materialization this data directory holds, and the harbor")
    .option("--force", "sweep even while a facility runs on the data directory (its experiments break)")
    .action(async (target: string | undefined, opts: HostOpts & { all?: boolean; force?: boolean }) => {
      const dataDir = opts.dataDir ?? defaultDataDir();
      const rows = await held(dataDir);
      if (!opts.all && !target) {
        console.error("cog: name a materialization (mzid or prefix; see 'cog host list') or give --all");
        process.exitCode = 2;
        return;
      }
      // A running facility keeps what it holds: sweeping under it breaks live experiments and its harbor.
      const users = opts.force ? [] : processesOn(dataDir);
      if (users.length) {
        console.error(
          `cog: ${dataDir} is in use by ${users.map((u) => `pid ${u.pid} (${u.command})`).join(", ")}: ` +
            "stop it first (Ctrl-C on npm start; its materializations are taken back at the next start), " +
            "or sweep anyway with --force",
        );
        process.exitCode = 1;
        return;
      }
      const chosen = opts.all ? rows : rows.filter((r) => r.prefix === target || r.mzid === target);
      if (chosen.length === 0) {
        const known = rows.map((r) => r.mzid ?? r.prefix).join(", ") || "none";
        console.error(`cog: ${dataDir} holds no materialization '${target}' (held: ${known})`);
        process.exitCode = 1;
        return;
      }
      for (const r of chosen) {
        const left = await sweep(r.prefix, dataDir);
        const name = r.mzid ? `${r.mzid} (${r.prefix})` : r.prefix;
        if (isClean(left)) console.log(`swept ${name}`);
        else {
          console.error(`cog: ${name}: could not remove ${count(left)}: ${JSON.stringify(left)}`);
          process.exitCode = 1;
        }
      }
    });
}
