/**
 * Large heterogeneous facilities for tests and benchmarks, deterministic for a
 * seed. Layout (per network: xpnet and infranet):
 *
 *   spines (2, only when there is more than one pod; pure underlay)
 *     └ a fabric per pod of `racksPerPod` racks (VXLAN; a VLAN domain per pod)
 *         └ a leaf per rack (VLAN only), ~`rackSize` nodes under it
 *
 * plus an emulator per pod on its xpnet fabric, infrapod servers, storage and
 * gateways on the spines (or the single fabric), and a mgmt leaf per pod for
 * every switch's and server's management port. Node hardware comes from
 * `HARDWARE`: each rack has a primary class, a share of nodes is mixed in from
 * other classes, and `hypervisorShare` of all nodes are hypervisors drawn from
 * the hypervisor-capable classes.
 */
import { type Facility, gbps } from "@merge/xir";
import { FacilityBuilder, type SwitchHandle } from "./builder.ts";
import { HARDWARE, type HardwareClass, nodeSpec } from "./hardware.ts";
import { type Random, random } from "./random.ts";

export interface GenerateOptions {
  /** Number of testbed nodes. */
  nodes: number;
  /** Default `gen-<nodes>`. */
  name?: string;
  /** Default 1. */
  seed?: number;
  /** Nodes per rack when `racks` is not given; default 40. */
  rackSize?: number;
  /** Number of racks; nodes are spread evenly across them. */
  racks?: number;
  /** Racks under one fabric (a pod, one VLAN domain per network); default 16. */
  racksPerPod?: number;
  /** Share of nodes that are hypervisors (alloc virtual, or both); default 0.2. */
  hypervisorShare?: number;
  /** Share of nodes in a rack not of the rack's primary hardware class; default 0.2. */
  mixedShare?: number;
  /** Emulators per pod; default 1. */
  emulatorsPerPod?: number;
  /** Default one per 10,000 nodes (at least 1). */
  infrapodServers?: number;
  /** Default one per 25,000 nodes (at least 1). */
  storage?: number;
  /** Default 1. */
  gateways?: number;
  /** Inter-facility ports per gateway; default 2. */
  gatewayPorts?: number;
  /** Hardware classes to draw from; default `HARDWARE`. */
  classes?: readonly HardwareClass[];
  /** Give server/node ports MAC addresses; default false (less memory for big facilities). */
  macs?: boolean;
  /** Each xpnet leaf's trunks to its fabric; default 2 × 100 Gbit/s (a trunk-bound facility has less). */
  leafUplinks?: { count: number; capacity: number };
}

const SPINES = 2;

/**
 * A homogeneous testbed: `pcs` identical PCs (bare metal only, the `minnow`
 * class: two 1 Gbit/s experiment ports) spread evenly over `leaves` leaf
 * switches, each joined to one core (fabric) switch by one trunk of `trunk`
 * bits/s. Default: 1,000 PCs, 5 leaves of 200, 10 Gbit/s trunks — the shape
 * on which placement must account for the trunks.
 */
export function generateHomogeneousFacility(
  options: { pcs?: number; leaves?: number; trunk?: number; name?: string } = {},
): Facility {
  const pcs = options.pcs ?? 1000;
  const pc = HARDWARE.find((h) => h.name === "minnow")!;
  return generateFacility({
    nodes: pcs,
    name: options.name ?? `homog-${pcs}`,
    racks: options.leaves ?? 5,
    hypervisorShare: 0,
    mixedShare: 0,
    classes: [{ ...pc, hypervisor: false }],
    leafUplinks: { count: 1, capacity: options.trunk ?? gbps(10) },
  });
}

export function generateFacility(options: GenerateOptions): Facility {
  return generateFacilityBuilder(options).build({ validate: false });
}

export function generateFacilityBuilder(options: GenerateOptions): FacilityBuilder {
  const n = options.nodes;
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`generateFacility: nodes must be a whole number, got ${n}`);
  const rackSize = options.rackSize ?? 40;
  const racks = options.racks ?? Math.max(1, Math.ceil(n / rackSize));
  if (!Number.isInteger(racks) || racks < 1) throw new RangeError(`generateFacility: racks must be >= 1, got ${racks}`);
  const racksPerPod = options.racksPerPod ?? 16;
  const pods = Math.ceil(racks / racksPerPod);
  const hypervisorShare = options.hypervisorShare ?? 0.2;
  const mixedShare = options.mixedShare ?? 0.2;
  const emulatorsPerPod = options.emulatorsPerPod ?? 1;
  const infrapodServers = options.infrapodServers ?? Math.max(1, Math.ceil(n / 10_000));
  const storageServers = options.storage ?? Math.max(1, Math.ceil(n / 25_000));
  const gateways = options.gateways ?? 1;
  const gatewayPorts = options.gatewayPorts ?? 2;
  const classes = options.classes ?? HARDWARE;
  const leafUplinks = options.leafUplinks ?? { count: 2, capacity: gbps(100) };
  const capable = classes.filter((c) => c.hypervisor);
  if (hypervisorShare > 0 && capable.length === 0) {
    throw new RangeError("generateFacility: hypervisorShare > 0 but no hardware class can be a hypervisor");
  }
  const rng = random(options.seed ?? 1);
  const pick = weighted(classes);
  const pickCapable = capable.length ? weighted(capable) : pick;

  const f = new FacilityBuilder(options.name ?? `gen-${n}`, { macs: options.macs ?? false, cableIds: "serial" });
  const servers = infrapodServers + storageServers + gateways;
  const spined = pods > 1;

  // Spines (multi-pod only), one mgmt spine joining the pods' mgmt leaves.
  const spines = { xpnet: [] as SwitchHandle[], infranet: [] as SwitchHandle[] };
  let mspine: SwitchHandle | undefined;
  if (spined) {
    for (const [network, key] of [
      ["xpnet", "x"],
      ["infranet", "i"],
    ] as const) {
      for (let s = 0; s < SPINES; s++) {
        spines[network].push(
          f.switch(`${key}spine${s}`, {
            layer: "spine",
            network,
            ports: pods + servers,
            capacity: gbps(400),
            mgmt: true,
          }),
        );
      }
    }
    mspine = f.switch("mspine", {
      layer: "spine",
      network: "mgmt",
      ports: pods + 2 * SPINES + 3 * servers,
      capacity: gbps(10),
    });
    for (const s of [...spines.xpnet, ...spines.infranet]) f.manage(s, mspine);
  }

  let nodeIndex = 0;
  const perRack = Math.floor(n / racks);
  const extra = n % racks;
  let pod0: { xfab: SwitchHandle; ifab: SwitchHandle; mleaf: SwitchHandle } | undefined;
  for (let p = 0; p < pods; p++) {
    const firstRack = p * racksPerPod;
    const podRacks = Math.min(racksPerPod, racks - firstRack);
    const local = spined ? 0 : servers; // single pod: servers hang off its fabrics
    const emulators = emulatorsPerPod;
    const xfab = f.switch(`xfab${p}`, {
      layer: "fabric",
      network: "xpnet",
      vlanDomain: `xpnet-p${p}`,
      ports: podRacks * 2 + emulators * 2 + local,
      capacity: gbps(100),
      uplinks: spined ? { count: SPINES, capacity: gbps(400) } : undefined,
      mgmt: true,
    });
    const ifab = f.switch(`ifab${p}`, {
      layer: "fabric",
      network: "infranet",
      vlanDomain: `infranet-p${p}`,
      ports: podRacks * 2 + local,
      capacity: gbps(100),
      uplinks: spined ? { count: SPINES, capacity: gbps(400) } : undefined,
      mgmt: true,
    });
    const mleaf = f.switch(`mleaf${p}`, {
      layer: "leaf",
      network: "mgmt",
      vlanDomain: `mgmt-p${p}`,
      ports: podRacks * 2 + 2 + emulators + 3 * local,
      capacity: gbps(1),
      uplinks: spined ? { count: 1, capacity: gbps(10) } : undefined,
    });
    if (mspine) f.uplink(mleaf, mspine);
    f.manage(xfab, mleaf);
    f.manage(ifab, mleaf);
    if (spined) {
      for (const s of spines.xpnet) f.uplink(xfab, s);
      for (const s of spines.infranet) f.uplink(ifab, s);
    }
    f.vlans(`xpnet-p${p}`, { first: 2, last: 4094 });
    f.vlans(`infranet-p${p}`, { first: 2, last: 4094 });
    if (p === 0) pod0 = { xfab, ifab, mleaf };

    for (let e = 0; e < emulators; e++) {
      const emu = f.emulator(emulators === 1 ? `emu${p}` : `emu${p}-${e}`, {
        cores: 32,
        memory: 128 * 2 ** 30,
        nics: [
          { role: "mgmt", capacity: gbps(1) },
          { role: "xpnet", capacity: gbps(100), model: "mlx5", ports: 2 },
        ],
      });
      f.connect(emu, mleaf);
      f.connect(emu, xfab);
      f.connect(emu, xfab);
    }

    for (let r = firstRack; r < firstRack + podRacks; r++) {
      const count = perRack + (r < extra ? 1 : 0);
      const rack = `r${r}`;
      const primary = pick(rng);
      const specs: { id: string; hw: HardwareClass; alloc: "physical" | "virtual" | "both" }[] = new Array(count);
      let xpPorts = 0;
      for (let k = 0; k < count; k++) {
        let hw = primary;
        let alloc: "physical" | "virtual" | "both" = "physical";
        if (rng() < hypervisorShare) {
          hw = pickCapable(rng);
          alloc = rng() < 0.5 ? "both" : "virtual";
        } else if (rng() < mixedShare) {
          hw = pick(rng);
        }
        xpPorts += hw.xpnet.ports ?? 1;
        specs[k] = { id: `n${nodeIndex++}`, hw, alloc };
      }
      const ileaf = f.switch(`ileaf${r}`, {
        layer: "leaf",
        network: "infranet",
        vlanDomain: `infranet-p${p}`,
        ports: count,
        capacity: gbps(10),
        uplinks: { count: 2, capacity: gbps(100) },
        mgmt: true,
        rack,
      });
      const xleaf = f.switch(`xleaf${r}`, {
        layer: "leaf",
        network: "xpnet",
        vlanDomain: `xpnet-p${p}`,
        ports: xpPorts,
        capacity: gbps(100),
        uplinks: leafUplinks,
        mgmt: true,
        rack,
      });
      f.uplink(ileaf, ifab, 2);
      f.uplink(xleaf, xfab, leafUplinks.count);
      f.manage(ileaf, mleaf);
      f.manage(xleaf, mleaf);
      for (const s of specs) {
        const node = f.node(s.id, nodeSpec(s.hw, { alloc: s.alloc, rack }));
        f.connect(node, ileaf);
        const xp = s.hw.xpnet.ports ?? 1;
        for (let k = 0; k < xp; k++) f.connect(node, xleaf);
      }
    }
  }

  // Infrastructure servers: on the spines, or on the single pod's fabrics.
  const ispine = (i: number): SwitchHandle => (spined ? (spines.infranet[i % SPINES] as SwitchHandle) : pod0!.ifab);
  const xspine = (i: number): SwitchHandle => (spined ? (spines.xpnet[i % SPINES] as SwitchHandle) : pod0!.xfab);
  const mgmt = mspine ?? pod0!.mleaf;
  const infraNics = [
    { role: "mgmt" as const, capacity: gbps(1) },
    { role: "infranet" as const, capacity: gbps(100), model: "mlx5" },
  ];
  for (let i = 0; i < infrapodServers; i++) {
    const s = f.infrapodServer(`ifr${i}`, { cores: 64, memory: 256 * 2 ** 30, nics: infraNics });
    f.connect(s, mgmt);
    f.connect(s, ispine(i));
  }
  for (let i = 0; i < storageServers; i++) {
    const s = f.storage(`stor${i}`, { cores: 32, memory: 256 * 2 ** 30, disks: [2 ** 40 * 100], nics: infraNics });
    f.connect(s, mgmt);
    f.connect(s, ispine(i));
  }
  for (let i = 0; i < gateways; i++) {
    const g = f.gateway(`gw${i}`, {
      nics: [
        { role: "mgmt", capacity: gbps(1) },
        { role: "infranet", capacity: gbps(100) },
        { role: "xpnet", capacity: gbps(100) },
        { role: "gateway", capacity: gbps(100), ports: gatewayPorts },
      ],
    });
    f.connect(g, mgmt);
    f.connect(g, ispine(i));
    f.connect(g, xspine(i));
  }
  f.vnis({ first: 1000, last: 16_000_000 });
  return f;
}

/** Weighted choice among classes. */
function weighted(classes: readonly HardwareClass[]): (rng: Random) => HardwareClass {
  const total = classes.reduce((a, c) => a + c.weight, 0);
  const cumulative: number[] = [];
  let acc = 0;
  for (const c of classes) {
    acc += c.weight / total;
    cumulative.push(acc);
  }
  return (rng) => {
    const x = rng();
    for (let i = 0; i < classes.length; i++) if (x < (cumulative[i] as number)) return classes[i] as HardwareClass;
    return classes[classes.length - 1] as HardwareClass;
  };
}
