/**
 * A 2-rack mid-size facility of 40 nodes: rack 1 holds 20 r430s (6 of them dual
 * personality), rack 2 holds 10 minnows, 6 r740 hypervisors and 4 GPU nodes.
 * Each rack has a VXLAN-capable xpnet leaf and infranet leaf (their own VLAN
 * domain); leaves uplink to an xpnet spine and an infranet spine, where the
 * emulator, infrapod server, storage server and gateway hang.
 */
import { type Facility, gbps } from "@merge/xir";
import { FacilityBuilder, type SwitchHandle } from "../builder.ts";
import { hardwareClass, nodeSpec, serverNics } from "../hardware.ts";

export interface TwoRackOptions {
  /** Default `tworack`. */
  name?: string;
}

export function twoRackBuilder(options: TwoRackOptions = {}): FacilityBuilder {
  const f = new FacilityBuilder(options.name ?? "tworack");
  const mleaf = f.switch("mleaf", { layer: "leaf", network: "mgmt", ports: 24, capacity: gbps(1) });
  const xspine = f.switch("xspine", { layer: "spine", network: "xpnet", ports: 16, capacity: gbps(100), mgmt: true });
  const ispine = f.switch("ispine", {
    layer: "spine",
    network: "infranet",
    ports: 16,
    capacity: gbps(100),
    mgmt: true,
  });
  f.manage(xspine, mleaf);
  f.manage(ispine, mleaf);

  const racks: { xleaf: SwitchHandle; ileaf: SwitchHandle; nodes: ["both" | "virtual" | "physical", string][] }[] = [];
  const rack1 = Array.from({ length: 20 }, (_, i) => [i < 6 ? "both" : "physical", "r430"] as const);
  const rack2 = [
    ...Array.from({ length: 10 }, () => ["physical", "minnow"] as const),
    ...Array.from({ length: 6 }, () => ["virtual", "r740"] as const),
    ...Array.from({ length: 4 }, () => ["physical", "dgx"] as const),
  ];
  for (const [r, nodes] of [rack1, rack2].entries()) {
    const rack = `r${r + 1}`;
    // A rack's leaf of one network: VXLAN-capable, its own VLAN domain, two 100G uplinks.
    const leaf = (network: "xpnet" | "infranet", ports: number, capacity: number) =>
      f.switch(`${network[0]}leaf${r + 1}`, {
        layer: "leaf",
        network,
        vxlan: true,
        mgmt: true,
        rack,
        vlanDomain: `${network}-${rack}`,
        uplinks: { count: 2, capacity: gbps(100) },
        ports,
        capacity,
      });
    const xleaf = leaf("xpnet", 96, gbps(100));
    const ileaf = leaf("infranet", 24, gbps(10));
    f.uplink(xleaf, xspine, 2);
    f.uplink(ileaf, ispine, 2);
    f.manage(xleaf, mleaf);
    f.manage(ileaf, mleaf);
    f.vlans(`xpnet-${rack}`, { first: 100, last: 3999 });
    f.vlans(`infranet-${rack}`, { first: 100, last: 3999 });
    racks.push({ xleaf, ileaf, nodes: nodes.map(([a, h]) => [a, h]) });
  }
  let i = 0;
  for (const { xleaf, ileaf, nodes } of racks) {
    for (const [alloc, hw] of nodes) {
      const cls = hardwareClass(hw);
      const n = f.node(`n${i++}`, nodeSpec(cls, { alloc, rack: ileaf.resource.props.rack as string }));
      f.connect(n, ileaf);
      for (let k = 0; k < (cls.xpnet.ports ?? 1); k++) f.connect(n, xleaf);
    }
  }

  const mgmtAnd = (role: "infranet" | "xpnet", ports = 1) =>
    serverNics(role, { capacity: gbps(100), model: "mlx5", ports });
  const ifr = f.infrapodServer("ifr0", { cores: 32, memory: 128 * 2 ** 30, nics: mgmtAnd("infranet") });
  const stor = f.storage("stor0", {
    cores: 32,
    memory: 128 * 2 ** 30,
    disks: [2 ** 40 * 50],
    nics: mgmtAnd("infranet"),
  });
  const emu = f.emulator("emu0", { cores: 32, memory: 64 * 2 ** 30, nics: mgmtAnd("xpnet", 2) });
  const gw = f.gateway("gw0", {
    nics: [
      ...mgmtAnd("infranet"),
      { role: "xpnet", capacity: gbps(100) },
      { role: "gateway", capacity: gbps(10), ports: 2 },
    ],
  });
  for (const s of [ifr, stor, emu, gw]) f.connect(s, mleaf);
  f.connect(ifr, ispine);
  f.connect(stor, ispine);
  f.connect(emu, xspine);
  f.connect(emu, xspine);
  f.connect(gw, ispine);
  f.connect(gw, xspine);
  f.vnis({ first: 1000, last: 99_999 });
  return f;
}

export function twoRack(options: TwoRackOptions = {}): Facility {
  return twoRackBuilder(options).build();
}
