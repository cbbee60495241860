// npm start -- --facilities N: N-1 more facilities beside the demo (phobos), each its own
// process (commander, certificates, sqlite store, data plane) under <data>/sites/<name>,
// every facility in its own site, the sites joined by an emulated wide area (linux
// backend; --wan-latency, --wan-rate). The same startSites the multi-facility tests use.
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { SECOND_FACILITY, type Sites, startSites } from "@merge/facility";
import { phobos } from "@merge/facility-model";
import { type PortalClient, registerSites } from "@merge/portal/client";
import { type Facility, formatQuantity, parseQuantity } from "@merge/xir";

export interface MoreFacilities {
  sites: Sites;
  /** Register the facilities and the interconnects with the portal (as administrator). */
  register(admin: PortalClient): Promise<void>;
  /** Lines for the start summary. */
  summary: string[];
  stop(): Promise<void>;
}

/** The extra facilities' names: deimos, then site3, site4, … (phobos's shape each). */
export function moreModels(count: number): Facility[] {
  return Array.from({ length: count - 1 }, (_, i) => phobos({ name: i === 0 ? SECOND_FACILITY : `site${i + 2}` }));
}

export async function startMoreFacilities(o: {
  data: string;
  backend: "linux" | "sim";
  count: number;
  demo: Facility;
  latency: string;
  rate: string;
  /** The wide area's prefix (the demo facility, started first, was told its site in it). */
  run?: string;
}): Promise<MoreFacilities> {
  const latencyNs = parseQuantity(o.latency, "ns", { what: "--wan-latency" });
  const rateBps = parseQuantity(o.rate, "bps", { what: "--wan-rate" });
  const sites = await startSites({
    dir: join(o.data, "sites"),
    models: moreModels(o.count),
    running: [o.demo],
    backend: o.backend,
    latencyNs,
    rateBps,
    withParent: true,
    ...(o.run ? { run: o.run } : {}),
  });
  // The portal's credentials for each, as `cog certs make` issued them.
  const creds = join(o.data, "portal", "facility-credentials");
  for (const f of sites.facilities) {
    mkdirSync(join(creds, f.name), { recursive: true, mode: 0o700 });
    for (const file of ["ca.pem", "portal.pem", "portal-key.pem"])
      copyFileSync(join(f.certs, file), join(creds, f.name, file));
  }
  const wan = sites.wan
    ? `wide area ${sites.wan.netns}: ${formatQuantity(latencyNs, "ns")} one way, ${formatQuantity(rateBps, "bps")}`
    : "no wide area (it needs the linux backend)";
  return {
    sites,
    register: (admin) =>
      registerSites(
        admin,
        sites.facilities.map((f) => ({
          name: f.name,
          endpoint: f.url,
          certificate: f.ca,
          model: f.model,
          description: "second demo facility",
        })),
        sites.interconnects,
      ),
    summary: [
      ...sites.facilities.map(
        (f) => `facility   ${f.name}: commander ${f.url}${f.site ? `, site ${f.site.netns} (${f.site.address})` : ""}`,
      ),
      `           ${wan}`,
      ...(o.backend === "linux"
        ? sites.facilities.map(
            (f) =>
              `           (${f.name}'s harbor also stays after a stop: 'npx cog host sweep --all --data-dir ${join(o.data, "sites", f.name, "backend")}')`,
          )
        : []),
    ],
    stop: () => sites.close(),
  };
}
