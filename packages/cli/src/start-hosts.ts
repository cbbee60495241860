// npm start -- --hosts N: the demo facility over N hosts on this machine (linux backend). The hosts
// are a fabric (facility/src/linux/fabric.ts, the one the multi-host tests use): a namespace with its
// own underlay address, data directory, certificate and agent process each, under <data>/hosts. The
// model puts phobos's testbed nodes round robin on them and its infrastructure on the first
// (spreadOverHosts). The facility's host registry and VTEP are on the fabric's first address. Stopping
// start removes the hosts completely (agents, what they hold, namespaces, the bridge); a start killed
// outright leaves its fabric for the next start to remove.
import { X509Certificate } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { certFiles, makeCerts } from "@merge/facility";
import type { Fabric } from "@merge/facility/linux";
import { spreadOverHosts } from "@merge/facility-model";
import type { Facility } from "@merge/xir";

export interface StartedHosts {
  fabric: Fabric;
  model: Facility;
  /** The facility daemon's options for them (registry on the fabric, its VTEP). */
  facilityArgs: string[];
  /**
   * Start every host's agent; resolves once all are registered. With the facility's `site`
   * (--facilities N), the host carrying its gateway gets it: its tunnels to other facilities end there.
   */
  startAgents(site?: { netns: string; address: string }): Promise<void>;
  summary(): string[];
  stop(): Promise<void>;
}

/** h1 … hN. */
export const hostNames = (n: number): string[] => Array.from({ length: n }, (_, i) => `h${i + 1}`);

/** Whether the commander's certificate is valid for `address` (agents verify it when they register). */
function certifiedFor(certs: string, address: string): boolean {
  const c = new X509Certificate(readFileSync(certFiles(certs, "commander").cert));
  return (c.subjectAltName ?? "").split(", ").includes(`IP Address:${address}`);
}

/** Hosts laid out otherwise than phobos spread round robin (start-wide-area.ts). */
export interface HostsLayout {
  names: string[];
  /** These hosts behind a router that delays each way (a routed, latent wide area). */
  routed?: { hosts: string[]; delayMs: number };
  /** The facility model, made once the hosts' addresses are known. */
  model(fabric: Fabric): Facility;
  /** The facility runs no harbor (shared hosts are hypervisors: nothing waits in imaging standby). */
  noHarbor?: boolean;
}

export async function startHosts(o: {
  data: string;
  count: number;
  demo: Facility;
  certs: string;
  registryPort: number;
  layout?: HostsLayout;
}): Promise<StartedHosts> {
  const { openFabric, removeStaleFabric } = await import("@merge/facility/linux");
  const dir = join(o.data, "hosts");
  const stale = await removeStaleFabric(dir);
  if (stale) console.log(`removed the hosts an earlier start left (fabric ${stale})`);
  const fabric = await openFabric({
    dir,
    hosts: o.layout?.names ?? hostNames(o.count),
    ...(o.layout?.routed ? { routed: o.layout.routed } : {}),
  });
  let model: Facility;
  try {
    model = o.layout
      ? o.layout.model(fabric)
      : spreadOverHosts(
          o.demo,
          fabric.hosts.map((h) => h.name),
        );
    // The fabric's address is new each start: the commander's certificate names it (the CA stays).
    if (!certifiedFor(o.certs, fabric.gateway)) {
      const f = certFiles(o.certs, "commander");
      rmSync(f.cert);
      rmSync(f.key);
      makeCerts(o.certs, { facility: o.demo.name, roles: ["commander"], hosts: [fabric.gateway] });
    }
  } catch (e) {
    await fabric.close().catch(() => {});
    throw e;
  }
  const registry = `https://${fabric.gateway}:${o.registryPort}`;
  return {
    fabric,
    model,
    facilityArgs: [
      "--host-registry-host",
      fabric.gateway,
      "--host-registry-port",
      String(o.registryPort),
      "--underlay",
      fabric.gateway,
      ...(o.layout?.noHarbor ? ["--no-harbor"] : []),
    ],
    startAgents: async (site) => {
      const gateways = new Set(model.resources.filter((r) => r.kind === "gateway").map((r) => r.host));
      await Promise.all(
        fabric.hosts.map((h) =>
          fabric.startAgent(h.name, {
            registry,
            ca: o.certs,
            parentPipe: true,
            ...(site && gateways.has(h.name) ? { args: ["--site", site.netns, "--site-address", site.address] } : {}),
          }),
        ),
      );
    },
    summary: () => [
      `hosts      ${fabric.hosts.map((h) => `${h.name} ${h.underlay} (agent pid ${h.agent?.pid}, netns ${h.netns})`).join(", ")}`,
      `           fabric ${fabric.run}fab ${fabric.gateway}/24, host registry ${registry}; logs in ${fabric.dir}`,
    ],
    stop: () => fabric.close(),
  };
}
