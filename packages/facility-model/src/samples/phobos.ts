/**
 * phobos: the small facility the demo runs on. Four testbed nodes (three can
 * host VMs, so a 25-node LAN fits), an infrapod server, a storage server, a
 * network emulator and a gateway, on one mgmt, one infranet and one xpnet leaf.
 *
 *   mleaf (mgmt)   : bmc of every node, eth0 of every server and switch
 *   ileaf (infranet): eth0 of n0..n3, ifr0, stor0, gw0
 *   xleaf (xpnet)  : eth1, eth2 of n0..n3, emu0 eth1..eth2, gw0
 */
import { type Facility, gb, gbps, tb } from "@merge/xir";
import { FacilityBuilder } from "../builder.ts";
import { serverNics } from "../hardware.ts";

export interface PhobosOptions {
  /** Default `phobos`; a second phobos-like facility needs another name (and MACs follow it). */
  name?: string;
  /** Include the gateway `gw0` for inter-facility links; default true. */
  gateway?: boolean;
  /** How many gateways, `gw0`, `gw1`, …; default 1 (0 when `gateway` is false). */
  gateways?: number;
  /** Inter-facility ports of each gateway; default 2. */
  gatewayPorts?: number;
}

export function phobosBuilder(options: PhobosOptions = {}): FacilityBuilder {
  const name = options.name ?? "phobos";
  const f = new FacilityBuilder(name);
  const mleaf = f.switch("mleaf", { layer: "leaf", network: "mgmt", ports: 24, capacity: gbps(1) });
  const ileaf = f.switch("ileaf", {
    layer: "leaf",
    network: "infranet",
    vxlan: true,
    ports: 16,
    capacity: gbps(10),
    mgmt: true,
  });
  const xleaf = f.switch("xleaf", {
    layer: "leaf",
    network: "xpnet",
    vxlan: false,
    ports: 16,
    capacity: gbps(10),
    mgmt: true,
  });
  f.manage(ileaf, mleaf);
  f.manage(xleaf, mleaf);

  // n0, n1: dual personality; n2: hypervisor only; n3: bare metal only.
  const alloc = ["both", "both", "virtual", "physical"] as const;
  for (let i = 0; i < 4; i++) {
    const n = f.node(`n${i}`, {
      cores: 32,
      memory: gb(128),
      disks: [tb(1)],
      platform: "x86_64",
      hardware: "phobos-node",
      alloc: alloc[i],
      ports: [{ name: "bmc", role: "mgmt", capacity: gbps(1) }],
      nics: [
        { role: "infranet", capacity: gbps(1), model: "e1000e" },
        { role: "xpnet", capacity: gbps(10), model: "i40e", ports: 2 },
      ],
    });
    f.cable(n.port("bmc"), mleaf.downlink());
    for (const sw of [ileaf, xleaf, xleaf]) f.connect(n, sw);
  }

  const ifr = f.infrapodServer("ifr0", {
    cores: 16,
    memory: gb(64),
    disks: [tb(1)],
    nics: serverNics("infranet", { capacity: gbps(10), model: "i40e" }),
  });
  const stor = f.storage("stor0", {
    cores: 16,
    memory: gb(64),
    disks: [tb(8), tb(8)],
    nics: serverNics("infranet", { capacity: gbps(10), model: "i40e" }),
  });
  const emu = f.emulator("emu0", {
    cores: 16,
    memory: gb(32),
    nics: serverNics("xpnet", { capacity: gbps(10), model: "mlx5", ports: 2 }),
  });
  for (const server of [ifr, stor]) {
    f.connect(server, mleaf);
    f.connect(server, ileaf);
  }
  for (const sw of [mleaf, xleaf, xleaf]) f.connect(emu, sw);

  const gateways = options.gateway === false ? 0 : (options.gateways ?? 1);
  for (let i = 0; i < gateways; i++) {
    const gw = f.gateway(`gw${i}`, {
      nics: [
        { role: "mgmt", capacity: gbps(1) },
        { role: "infranet", capacity: gbps(10) },
        { role: "xpnet", capacity: gbps(10) },
        { role: "gateway", capacity: gbps(10), ports: options.gatewayPorts ?? 2 },
      ],
    });
    for (const sw of [mleaf, ileaf, xleaf]) f.connect(gw, sw);
  }

  f.vlans("infranet", { first: 100, last: 3999 });
  f.vlans("xpnet", { first: 100, last: 3999 });
  f.vnis({ first: 100, last: 65535 });
  return f;
}

export function phobos(options: PhobosOptions = {}): Facility {
  return phobosBuilder(options).build();
}
