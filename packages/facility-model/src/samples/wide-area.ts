/**
 * A wide-area facility of shared hosts (ProtoGENI "version zero"): machines at
 * sites far apart, each running a host agent the facility reaches over routed,
 * latent paths, each shared by many experiments but carrying at most one node
 * of any one experiment (`virt.sharing: "one-per-experiment"`), so an
 * experiment's links are real wide-area paths between hosts.
 *
 * One shared host per site (`s<i>` on host `site<i>`), containers only (a
 * shared host is a hypervisor: `alloc: virtual`). Site 0 is the home site: it
 * also carries the infrapod server and the emulator. The two switches stand for
 * the routed wide area itself, one per network: VXLAN-capable, so every link
 * between hosts (experiment or infranet) is a VXLAN tunnel over the routed
 * underlay between the hosts' agents, tagged with the realization's VNI.
 *
 * What a shared host really has free comes from its agent's measurements
 * (free memory, disk, cores), not only from these figures: the realization
 * engine places a node on a shared host only where both allow it. Nodes are
 * reached from outside through NAT on their host's address, a port range per
 * node: the model's `hosts.site<i>.nat` (option `nat`; docs/architecture.md
 * "wide-area facility").
 */
import { type Facility, gb, gbps, hostProblems, mbps } from "@merge/xir";
import { FacilityBuilder } from "../builder.ts";
import { serverNics } from "../hardware.ts";
import { spreadOverHosts } from "../hosts.ts";
import { FacilityModelError } from "../problem.ts";

export interface WideAreaOptions {
  /** Default `geni`. */
  name?: string;
  /** Sites, one shared host each (default 4, at least 2). */
  sites?: number;
  /** Each shared host's cores, memory and disk (default 8 cores, 16 GB, 200 GB). */
  cores?: number;
  memory?: number;
  disk?: number;
  /**
   * Control access through NAT on each shared host (`hosts.site<i>.nat`):
   * site i's public address is `addresses[i]`; every node there gets
   * `perNode` ports of `first`…`last` (default 20000-29999, 10 a node).
   * Absent: no NAT in the model (an agent's `--nat` may still give it).
   */
  nat?: { addresses: string[]; first?: number; last?: number; perNode?: number };
}

/** The NAT ports a wide-area facility gives out by default: 20000-29999, 10 a node. */
export const WIDE_AREA_NAT = { first: 20000, last: 29999, perNode: 10 } as const;

/** The host (agent) name of site `i`. */
export const wideAreaHost = (i: number): string => `site${i}`;

export function wideArea(options: WideAreaOptions = {}): Facility {
  const sites = options.sites ?? 4;
  if (!Number.isInteger(sites) || sites < 2)
    throw new Error(`wide-area facility: sites must be a whole number of at least 2, got ${sites}`);
  const f = new FacilityBuilder(options.name ?? "geni");
  const mgmt = f.switch("mgmt", { layer: "leaf", network: "mgmt", ports: sites + 4, capacity: gbps(1) });
  // The wide area: routed paths between sites, seen by the engine as one VXLAN-capable switch per network.
  const wanI = f.switch("wan-infranet", {
    layer: "leaf",
    network: "infranet",
    vxlan: true,
    ports: sites + 4,
    capacity: gbps(1),
    mgmt: true,
  });
  const wanX = f.switch("wan-xpnet", {
    layer: "leaf",
    network: "xpnet",
    vxlan: true,
    ports: 2 * sites + 4,
    capacity: gbps(1),
    mgmt: true,
  });
  f.manage(wanI, mgmt);
  f.manage(wanX, mgmt);
  for (let i = 0; i < sites; i++) {
    const s = f.node(`s${i}`, {
      cores: options.cores ?? 8,
      memory: options.memory ?? gb(16),
      disks: [options.disk ?? gb(200)],
      platform: "x86_64",
      hardware: "shared-host",
      alloc: "virtual",
      virt: { kinds: ["container"], sharing: "one-per-experiment" },
      nics: [
        { role: "infranet", capacity: mbps(100) },
        { role: "xpnet", capacity: gbps(1), ports: 2 },
      ],
    });
    for (const sw of [wanI, wanX, wanX]) f.connect(s, sw);
  }
  const ifr = f.infrapodServer("ifr0", {
    cores: 8,
    memory: gb(16),
    nics: serverNics("infranet", { capacity: gbps(1) }),
  });
  const emu = f.emulator("emu0", {
    cores: 8,
    memory: gb(16),
    nics: serverNics("xpnet", { capacity: gbps(1), ports: 2 }),
  });
  for (const sw of [mgmt, wanI]) f.connect(ifr, sw);
  for (const sw of [mgmt, wanX, wanX]) f.connect(emu, sw);
  f.vlans("infranet", { first: 100, last: 3999 });
  f.vlans("xpnet", { first: 100, last: 3999 });
  f.vnis({ first: 100, last: 65535 });
  // s<i> on site<i>; the infrapod server and the emulator at the home site (site0).
  const model = spreadOverHosts(
    f.build(),
    Array.from({ length: sites }, (_, i) => wideAreaHost(i)),
  );
  const nat = options.nat;
  if (!nat) return model;
  if (nat.addresses.length !== sites)
    throw new Error(
      `wide-area facility: nat.addresses has ${nat.addresses.length} addresses: expected one a site (${sites})`,
    );
  const ports = {
    first: nat.first ?? WIDE_AREA_NAT.first,
    last: nat.last ?? WIDE_AREA_NAT.last,
    perNode: nat.perNode ?? WIDE_AREA_NAT.perNode,
  };
  const withNat: Facility = {
    ...model,
    hosts: Object.fromEntries(nat.addresses.map((address, i) => [wideAreaHost(i), { nat: { address, ...ports } }])),
  };
  const bad = hostProblems(withNat);
  if (bad.length)
    throw new FacilityModelError(
      `facility ${withNat.name}`,
      bad.map((p) => ({ severity: "error", element: p.field, message: p.message })),
    );
  return withNat;
}
