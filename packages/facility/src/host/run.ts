/**
 * A host agent as a process (`cog host agent`, `daemon.ts agent`): open this
 * host's backend on its data directory, serve rex, register with the facility
 * and beat until SIGTERM/SIGINT. What the backend holds stays on the host when
 * the agent stops (as with the facility): a restarted agent takes it back.
 */
import { loadTls } from "@merge/proto";
import type { Backend } from "../backend.ts";
import { certFiles } from "../certs.ts";
import { SimBackend } from "../sim/sim.ts";
import { type RunningAgent, startHostAgent } from "./agent.ts";

export interface AgentProcessOptions {
  name: string;
  registry: string;
  /** Directory holding the host's certificate (`cog certs host`): host.pem, host-key.pem, ca.pem. */
  certs: string;
  dataDir: string;
  underlay: string;
  listenPort?: number;
  backend?: "linux" | "sim";
  /** Node image when a model names none (`busybox` for fast tests). */
  defaultImage?: string;
  /** Several hosts on one machine (tests): qualify kernel object names with the host's name (or `nameQualifier`). */
  qualifyNames?: boolean;
  /** What qualifies the names instead of the host's name (a fabric's `<host>@<run>`: two runs never share a name). */
  nameQualifier?: string;
  /**
   * A shared host's NAT for control access to its nodes (linux/nat.ts):
   * `FIRST-LAST[/PORTS_PER_NODE]` on `natAddress` (default: the underlay address).
   */
  nat?: string;
  natAddress?: string;
  /**
   * The facility's site, on the host carrying its gateway: the namespace
   * holding its wide-area address, where the gateway's tunnels to other
   * facilities have their sockets (linux/gateway.ts).
   */
  site?: { netns: string; address: string };
  log?: (m: string) => void;
}

export async function runAgentProcess(o: AgentProcessOptions): Promise<{ agent: RunningAgent; backend: Backend }> {
  const log = o.log ?? ((m: string) => console.error(m));
  let backend: Backend;
  if (o.backend === "sim") backend = new SimBackend({ strict: false });
  else {
    const { LinuxBackend, qualifyNames } = await import("../linux/index.ts");
    const { journalPrefix } = await import("../linux/state.ts");
    // Several hosts on one machine: each prefix journaled before use, for the fabric's teardown.
    if (o.qualifyNames) qualifyNames(o.nameQualifier ?? o.name, (prefix) => journalPrefix(o.dataDir, prefix));
    const { natProblem, parseNatPorts } = await import("../linux/nat.ts");
    const nat = o.nat ? { ...parseNatPorts(o.nat), address: o.natAddress ?? o.underlay, host: o.name } : undefined;
    const bad = nat && natProblem(nat);
    if (bad) throw new Error(`host agent ${o.name}: ${bad}`);
    backend = await LinuxBackend.open({
      dataDir: o.dataDir,
      log,
      ...(o.defaultImage ? { defaultImage: o.defaultImage } : {}),
      ...(nat ? { nat } : {}),
      ...(o.site ? { site: o.site } : {}),
    });
  }
  const agent = await startHostAgent({
    name: o.name,
    backend,
    tls: loadTls(certFiles(o.certs, "host")),
    registry: o.registry,
    underlay: o.underlay,
    listen: { host: o.underlay, port: o.listenPort ?? 0 },
    dataDir: o.dataDir,
    log,
  });
  log(`host agent ${o.name}: serving ${agent.url}, underlay ${o.underlay}, registering with ${o.registry}`);
  return { agent, backend };
}
