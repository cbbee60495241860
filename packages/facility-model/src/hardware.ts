/**
 * Hardware classes: the kinds of testbed node samples and generated facilities
 * are made of. Several deliberately different classes (cores, memory, disks,
 * GPUs, NIC counts and speeds, platforms) so realization sees real heterogeneity
 * and scarcity.
 */
import { gb, gbps, tb } from "@merge/xir";
import type { NicSpec, NodeSpec } from "./builder.ts";

export interface HardwareClass {
  name: string;
  cores: number;
  memory: number;
  disks: readonly number[];
  gpus?: { model: string; count: number };
  platform: string;
  /** The infranet NIC (one port). */
  infranet: Omit<NicSpec, "role" | "ports">;
  /** Experiment-network NIC: its ports are the node's xpnet ports. */
  xpnet: Omit<NicSpec, "role">;
  /** May run as a hypervisor. */
  hypervisor: boolean;
  /** Relative share in generated facilities. */
  weight: number;
}

export const HARDWARE: readonly HardwareClass[] = [
  {
    name: "minnow",
    cores: 4,
    memory: gb(8),
    disks: [gb(256)],
    platform: "x86_64",
    infranet: { capacity: gbps(1), model: "e1000e" },
    xpnet: { capacity: gbps(1), model: "e1000e", ports: 2 },
    hypervisor: false,
    weight: 30,
  },
  {
    name: "r430",
    cores: 16,
    memory: gb(64),
    disks: [tb(1), tb(1)],
    platform: "x86_64",
    infranet: { capacity: gbps(1), model: "e1000e" },
    xpnet: { capacity: gbps(10), model: "i40e", ports: 4 },
    hypervisor: true,
    weight: 30,
  },
  {
    name: "r740",
    cores: 64,
    memory: gb(256),
    disks: [tb(2), tb(2), tb(2), tb(2)],
    platform: "x86_64",
    infranet: { capacity: gbps(10), model: "i40e" },
    xpnet: { capacity: gbps(25), model: "mlx5", ports: 2 },
    hypervisor: true,
    weight: 15,
  },
  {
    name: "dgx",
    cores: 32,
    memory: gb(512),
    disks: [tb(4), tb(4)],
    gpus: { model: "a100", count: 4 },
    platform: "x86_64",
    infranet: { capacity: gbps(10), model: "i40e" },
    xpnet: { capacity: gbps(100), model: "mlx5", ports: 2 },
    hypervisor: false,
    weight: 5,
  },
  {
    name: "altra",
    cores: 80,
    memory: gb(128),
    disks: [tb(1)],
    platform: "arm64",
    infranet: { capacity: gbps(1), model: "bnxt" },
    xpnet: { capacity: gbps(25), model: "bnxt", ports: 2 },
    hypervisor: true,
    weight: 10,
  },
  {
    name: "rpi4",
    cores: 4,
    memory: gb(4),
    disks: [gb(64)],
    platform: "rpi4",
    infranet: { capacity: gbps(1), model: "rtl8139" },
    xpnet: { capacity: gbps(1), model: "rtl8139", ports: 1 },
    hypervisor: false,
    weight: 10,
  },
];

export function hardwareClass(name: string): HardwareClass {
  const hw = HARDWARE.find((h) => h.name === name);
  if (!hw) throw new Error(`no hardware class ${name}; classes are ${HARDWARE.map((h) => h.name).join(", ")}`);
  return hw;
}

/** A node spec of this class: eth0 on the infranet, eth1.. on the xpnet. */
export function nodeSpec(hw: HardwareClass, extra: Partial<NodeSpec> = {}): NodeSpec {
  const spec: NodeSpec = {
    cores: hw.cores,
    memory: hw.memory,
    disks: hw.disks,
    platform: hw.platform,
    hardware: hw.name,
    nics: [
      { role: "infranet", ...hw.infranet },
      { role: "xpnet", ...hw.xpnet },
    ],
    ...extra,
  };
  if (hw.gpus) spec.gpus = hw.gpus;
  return spec;
}

/** A server's NICs: eth0 on the mgmt network (1 Gbps), then `nic` on its network (`role`). */
export function serverNics(role: NicSpec["role"], nic: Omit<NicSpec, "role">): NicSpec[] {
  return [
    { role: "mgmt", capacity: gbps(1) },
    { role, ...nic },
  ];
}
