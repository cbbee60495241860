// cog host list|show|drain|undrain: the facility's hosts (one host agent per
// machine) as its store has them: state (up, down, drained), underlay address,
// what each agent measured, and the experiment nodes each carries. A drained
// host keeps what it carries and gets no new nodes.

import { existsSync } from "node:fs";
import { Driver, type HostView, listHosts, readHost, runAgentProcess, setDrained } from "@merge/facility";
import { parseStoreUrl } from "@merge/store";
import Table from "cli-table3";
import type { Command } from "commander";
import { defaultStoreUrl, PLAIN, print, type StoreOpts, withStore, withStoreOpts } from "./facility-store.ts";

const GIB = 2 ** 30;

/** host → the experiment nodes it carries (`node (mzid)`), from the set-up actions in the store. */
async function nodesByHost(store: Parameters<typeof listHosts>[0]): Promise<Map<string, string[]>> {
  const driver = new Driver(store);
  const out = new Map<string, string[]>();
  for (const info of await driver.list()) {
    if (info.phase !== "materializing") continue;
    for (const a of (await driver.readDag(info.mzid)).actions) {
      if (a.spec.kind !== "node.setup" || a.state !== "complete") continue;
      const h = a.spec.node.host ?? "";
      const nodes = out.get(h) ?? [];
      nodes.push(`${a.spec.node.node} (${info.mzid})`);
      out.set(h, nodes);
    }
  }
  return out;
}

const row = (h: HostView, nodes: string[]) => [
  h.name,
  h.state,
  h.underlay,
  h.cores,
  // What the agent last measured free beside what it has (a shared host carries other work).
  h.memoryFree === undefined
    ? `${(h.memory / GIB).toFixed(1)} GiB`
    : `${(h.memoryFree / GIB).toFixed(1)} free of ${(h.memory / GIB).toFixed(1)} GiB`,
  `${(h.disk / GIB).toFixed(1)} GiB`,
  nodes.length ? nodes.join(", ") : "none",
];

/**
 * `cog host list` on a facility of several hosts: its hosts, from the store.
 * Returns false (printing nothing) when there is no store to read or no host
 * agent has registered: the facility is its own machine, and `list` shows
 * what this machine holds instead.
 */
export async function listFacilityHosts(opts: StoreOpts): Promise<boolean> {
  const url = opts.store ?? defaultStoreUrl();
  try {
    const o = parseStoreUrl(url);
    if (o.backend === "sqlite" && !existsSync(o.dir)) return false;
  } catch {
    return false;
  }
  let shown = false;
  await withStore({ ...opts, store: url }, async (store) => {
    const hosts = await listHosts(store);
    if (!hosts.length) return;
    shown = true;
    const nodes = await nodesByHost(store);
    print(
      opts,
      hosts.map((h) => ({ ...h, nodes: nodes.get(h.name) ?? [] })),
      () => {
        const t = new Table({ head: ["host", "state", "underlay", "cores", "memory", "disk", "nodes"], style: PLAIN });
        for (const h of hosts) t.push(row(h, nodes.get(h.name) ?? []));
        return t;
      },
    );
  });
  return shown;
}

export function registerHosts(host: Command): void {
  host
    .command("agent")
    .description("run this machine's host agent: register with the facility, carry out its actions (until SIGTERM)")
    .requiredOption("--name <host>", "the host's name, as the facility model and its certificate say")
    .requiredOption("--registry <url>", "the facility's host registry, e.g. https://10.99.0.1:6003")
    .requiredOption("--certs <dir>", "the host's certificate directory (from 'cog certs host')")
    .requiredOption("--data-dir <dir>", "the backend's data directory on this host")
    .requiredOption(
      "--underlay <addr>",
      "this host's underlay address (VXLAN tunnel endpoint; the agent listens there)",
    )
    .option("--listen-port <n>", "port of the agent's service (default any free port)", "0")
    .option(
      "--nat <FIRST-LAST[/N]>",
      "a shared host: give each node N ports (default 10) of FIRST-LAST on --nat-address, the first to its ssh (overrides the model's hosts.<name>.nat)",
    )
    .option("--nat-address <addr>", "the address people reach this host on (default: the underlay address)")
    .action(
      async (o: {
        name: string;
        registry: string;
        certs: string;
        dataDir: string;
        underlay: string;
        listenPort: string;
        nat?: string;
        natAddress?: string;
      }) => {
        const { agent, backend } = await runAgentProcess({
          name: o.name,
          registry: o.registry,
          certs: o.certs,
          dataDir: o.dataDir,
          underlay: o.underlay,
          listenPort: Number(o.listenPort),
          ...(o.nat ? { nat: o.nat } : {}),
          ...(o.natAddress ? { natAddress: o.natAddress } : {}),
        });
        const stop = async () => {
          await agent.close();
          await backend.close();
          process.exit(0);
        };
        process.once("SIGTERM", () => void stop());
        process.once("SIGINT", () => void stop());
      },
    );
  withStoreOpts(host.command("show <name>").description("one host: its registration and the nodes it carries")).action(
    (name: string, opts: StoreOpts) =>
      withStore(opts, async (store) => {
        const h = await readHost(store, name);
        if (!h) {
          const names = (await listHosts(store)).map((x) => x.name);
          console.error(`cog: no host '${name}' is registered (hosts: ${names.join(", ") || "none"})`);
          process.exitCode = 1;
          return;
        }
        const nodes = (await nodesByHost(store)).get(name) ?? [];
        print(opts, { ...h, nodes }, () =>
          [
            `host ${h.name}: ${h.state}`,
            `  agent     pid ${h.pid} at ${h.endpoint}, started ${h.started}`,
            `  underlay  ${h.underlay}`,
            `  measured  ${h.cores} cores, ${(h.memory / GIB).toFixed(1)} GiB memory, ${(h.disk / GIB).toFixed(1)} GiB disk free`,
            `  nodes     ${nodes.length ? nodes.join(", ") : "none"}`,
          ].join("\n"),
        );
      }),
  );
  for (const [cmd, drained] of [
    ["drain", true],
    ["undrain", false],
  ] as const) {
    withStoreOpts(
      host
        .command(`${cmd} <name>`)
        .description(
          drained ? "give a host no new nodes (what it carries stays)" : "let a drained host take nodes again",
        ),
    ).action((name: string, opts: StoreOpts) =>
      withStore(opts, async (store) => {
        try {
          const r = await setDrained(store, name, drained);
          print(opts, r, () => `host ${name}: ${drained ? "drained" : "undrained"}`);
        } catch (e) {
          console.error(`cog: ${(e as Error).message}`);
          process.exitCode = 1;
        }
      }),
    );
  }
}
