/**
 * Several facilities on one machine, each its own process (facility-process.ts)
 * with its own commander, certificates, store and data plane, each with a site
 * (linux backend: a namespace holding its wide-area address, linux/wan.ts),
 * the sites joined by one emulated wide area. What `npm start -- --facilities N`,
 * the multi-facility tests (e2e `multi-fixture.ts`) and `bench materialize-multi`
 * start. A portal learns of them from `facilities` (register each: name,
 * commander URL, CA, model) and `interconnects` (one between every pair of
 * facilities, gateway port to gateway port, with the wide area's latency and
 * rate).
 *
 * A model whose resources name hosts runs over hosts of its own (linux
 * backend): a fabric of host namespaces with an agent each (linux/fabric.ts,
 * as `npm start -- --hosts N`), the facility's address on it; the agent of the
 * host carrying a gateway resource is given the facility's site, so the
 * gateway's tunnels have their sockets there. Host names are kernel-name
 * qualifiers on this one machine, so they must not repeat across facilities.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Facility, Interconnect } from "@merge/xir";
import { modelHosts } from "./facility.ts";
import { type FacilityProcess, facilityCa, spawnFacility } from "./facility-process.ts";
import type { Fabric } from "./linux/fabric.ts";

/** The second facility of the demo and of the tests: phobos's shape under another name. */
export const SECOND_FACILITY = "deimos";

export interface SitesOptions {
  /** Each facility's directory is `<dir>/<name>`. */
  dir: string;
  /** The facilities to start, each its own process. */
  models: Facility[];
  /**
   * Facilities already running elsewhere (`npm start`'s demo facility): each gets a site and
   * its interconnects, first, but no process.
   */
  running?: Facility[];
  backend: "linux" | "sim";
  /** Per-run prefix of the wide area's namespaces (default: random `mw` + 4 hex). */
  run?: string;
  /** One-way latency of the wide area, ns (default 15 ms). */
  latencyNs?: number;
  /** Rate of the wide area, bits/s (default 100 Mbit/s). */
  rateBps?: number;
  noHarbor?: boolean;
  withParent?: boolean;
}

export interface SiteFacility {
  name: string;
  model: Facility;
  /** The commander's facility API URL. */
  url: string;
  /** PEM of the facility's CA (the portal's facility record). */
  ca: string;
  /** The directory holding the portal's client credentials (ca.pem, portal.pem, portal-key.pem). */
  certs: string;
  /** The site's namespace and wide-area address (linux backend only). */
  site?: { netns: string; address: string };
  process: FacilityProcess;
  /** The facility's hosts, when its model names any (linux backend). */
  fabric?: Fabric;
}

export interface Sites {
  facilities: SiteFacility[];
  /** The sites of the facilities running elsewhere (`running`), by name (linux backend only). */
  runningSites: Record<string, { netns: string; address: string }>;
  interconnects: Interconnect[];
  /** The wide area's namespace (linux backend only). */
  wan?: { netns: string; latencyNs: number; rateBps: number; setLatency(ns: number): Promise<void> };
  /** Stops every facility process and removes the wide area and the sites. */
  close(): Promise<void>;
}

/** Gateway ports of a model (`resource`, `port`), in model order. */
function gatewayPorts(f: Facility): { resource: string; port: string }[] {
  return f.resources.flatMap((r) =>
    r.ports.filter((p) => p.role === "gateway").map((p) => ({ resource: r.id, port: p.name })),
  );
}

/** One interconnect between every pair of facilities, each on the next free gateway port of either. */
export function siteInterconnects(models: Facility[], latencyNs: number, rateBps: number): Interconnect[] {
  const free = new Map(models.map((m) => [m.name, gatewayPorts(m)]));
  const out: Interconnect[] = [];
  for (let i = 0; i < models.length; i++) {
    for (let j = i + 1; j < models.length; j++) {
      const [a, b] = [models[i]!, models[j]!];
      const pa = free.get(a.name)?.shift();
      const pb = free.get(b.name)?.shift();
      if (!pa || !pb)
        throw new Error(
          `sites: no free gateway port for the interconnect ${a.name}–${b.name} (${!pa ? a.name : b.name} needs one more port of role gateway)`,
        );
      out.push({
        id: `${a.name}-${b.name}`,
        a: { facility: a.name, ...pa },
        b: { facility: b.name, ...pb },
        capacity: rateBps,
        latency: latencyNs,
        shared: true,
      });
    }
  }
  return out;
}

export async function startSites(o: SitesOptions): Promise<Sites> {
  const all = [...(o.running ?? []), ...o.models];
  const names = all.map((m) => m.name);
  if (new Set(names).size !== names.length) throw new Error(`sites: facility names repeat: ${names.join(", ")}`);
  const hostNames = o.models.flatMap(modelHosts);
  if (o.backend === "linux" && new Set(hostNames).size !== hostNames.length)
    throw new Error(
      `sites: host names repeat across facilities (${hostNames.join(", ")}): on one machine each must be unique`,
    );
  const { WAN_LATENCY_NS, WAN_RATE_BPS, wanUp } = await import("./linux/wan.ts");
  const latencyNs = o.latencyNs ?? WAN_LATENCY_NS;
  const rateBps = o.rateBps ?? WAN_RATE_BPS;
  const interconnects = siteInterconnects(all, latencyNs, rateBps);
  const wan =
    o.backend === "linux"
      ? await wanUp({
          run: o.run ?? `mw${randomBytes(2).toString("hex")}`,
          sites: names,
          latencyNs,
          rateBps,
          dataDir: o.dir,
        })
      : undefined;
  const skipped = o.running?.length ?? 0;
  // Facilities of several hosts: their fabrics first (the facility's address on it is in its certificate).
  const fabrics: (Fabric | undefined)[] = [];
  const closeFabrics = async () => {
    for (const f of fabrics) await f?.close();
  };
  try {
    const { openFabric } = await import("./linux/fabric.ts");
    for (const model of o.models) {
      const hosts = o.backend === "linux" ? modelHosts(model) : [];
      fabrics.push(hosts.length ? await openFabric({ dir: join(o.dir, model.name, "hosts"), hosts }) : undefined);
    }
  } catch (e) {
    await closeFabrics();
    await wan?.close();
    throw e;
  }
  const procs = o.models.map((model, i) =>
    spawnFacility({
      dir: join(o.dir, model.name),
      model,
      backend: o.backend,
      qualifyNames: true,
      ...(wan?.sites[skipped + i]
        ? { site: { netns: wan.sites[skipped + i]!.netns, address: wan.sites[skipped + i]!.address } }
        : {}),
      ...(o.noHarbor ? { noHarbor: true } : {}),
      ...(o.withParent ? { withParent: true } : {}),
      ...(fabrics[i] ? { fabric: fabrics[i].gateway } : {}),
    }),
  );
  const close = async () => {
    await Promise.all(procs.map((p) => p.stop()));
    // The hosts' agents hold the gateways' tunnels in the sites: they go before the wide area.
    await closeFabrics();
    await wan?.close();
  };
  try {
    const urls = await Promise.all(procs.map((p) => p.ready));
    await Promise.all(
      procs.map(async (p, i) => {
        const fabric = fabrics[i];
        if (!fabric) return;
        const registry = await p.hostRegistry;
        if (!registry) throw new Error(`facility ${p.name} names hosts but started no host registry`);
        const model = o.models[i]!;
        const site = wan?.sites[skipped + i];
        const gateways = new Set(model.resources.filter((r) => r.kind === "gateway" && r.host).map((r) => r.host));
        await Promise.all(
          fabric.hosts.map((h) =>
            fabric.startAgent(h.name, {
              registry,
              ca: p.certs,
              ...(o.withParent ? { parentPipe: true } : {}),
              args: site && gateways.has(h.name) ? ["--site", site.netns, "--site-address", site.address] : [],
            }),
          ),
        );
      }),
    );
    const skip = o.running?.length ?? 0;
    const runningSites = Object.fromEntries(
      (wan?.sites.slice(0, skip) ?? []).map((s) => [s.name, { netns: s.netns, address: s.address }]),
    );
    const facilities = procs.map((p, i): SiteFacility => {
      const s = wan?.sites[skip + i];
      return {
        name: p.name,
        model: o.models[i]!,
        url: urls[i]!,
        ca: facilityCa(p),
        certs: p.certs,
        ...(s ? { site: { netns: s.netns, address: s.address } } : {}),
        process: p,
        ...(fabrics[i] ? { fabric: fabrics[i] } : {}),
      };
    });
    return { facilities, runningSites, interconnects, ...(wan ? { wan } : {}), close };
  } catch (e) {
    await close();
    throw e;
  }
}
