/**
 * The facility half of XIR: an operator's resource model, in the same property
 * language as experiments, and the resource internet that joins facilities.
 */
import type { Scalar } from "./constraint.ts";

export interface Facility {
  xir: "1.0";
  name: string;
  resources: Resource[];
  cables: Cable[];
  tags: TagPools;
  /**
   * What the model says of its hosts (the names its resources' `host` give),
   * beyond the resources on them: a shared host's NAT for control access to its
   * nodes. Absent: nothing more to say.
   */
  hosts?: Record<string, FacilityHost>;
}

export interface FacilityHost {
  /** Control access to this host's nodes from outside, through NAT on the host (a wide-area facility's shared host). */
  nat?: HostNat;
}

/**
 * A shared host's NAT: each node it carries gets `perNode` ports of
 * `first`…`last` on `address` (the host's public address, on the wide-area
 * side); the first of a node's ports is forwarded to its ssh (port 22), the
 * others to the same port numbers on the node. From outside:
 * `ssh -p <first> <user>@<address>`.
 */
export interface HostNat {
  address: string;
  first: number;
  last: number;
  perNode: number;
}

export type ResourceKind = "node" | "switch" | "emulator" | "infrapod-server" | "storage" | "gateway";
/** physical: a whole machine for one experiment node; virtual: a hypervisor hosting VMs. */
export type AllocMode = "physical" | "virtual";
export type NetworkRole = "infranet" | "xpnet" | "mgmt";
export type PortRole = NetworkRole | "gateway";

export interface Resource {
  /** Unique within its facility. */
  id: string;
  kind: ResourceKind;
  /** Testbed nodes: how they may be allocated. Empty for infrastructure. */
  alloc: AllocMode[];
  /**
   * Properties matched against experiment constraints: `proc.cores`,
   * `memory.capacity`, `disk.capacity`, `platform`, `gpu.model`, `gpu.count`,
   * `port.model` is per port.
   */
  props: Record<string, Scalar>;
  ports: Port[];
  switch?: SwitchInfo;
  /**
   * The facility host carrying this resource's data plane: the machine whose
   * host agent runs a testbed node's containers, a hypervisor's VMs, an
   * emulator's halves of links, an infrapod server's infrapods. Absent: the
   * facility's own machine (a facility of one host names none).
   */
  host?: string;
  /** A hypervisor (alloc includes `virtual`): what it offers virtual nodes. Absent: containers then VMs, no overcommit. */
  virt?: HypervisorInfo;
}

/**
 * What a hypervisor gives virtual nodes: the kinds it can make, in order of
 * preference (a node that does not say gets the first that satisfies it), and
 * how far it overcommits its cores and memory: virtual nodes may take up to
 * `proc.cores × cores` and `memory.capacity × memory` in all (ratios ≥ 1;
 * absent is 1, no overcommit). Disk is never overcommitted.
 */
export interface HypervisorInfo {
  kinds: ("vm" | "container")[];
  overcommit?: { cores?: number; memory?: number };
  /**
   * `one-per-experiment`: a shared host (ProtoGENI "version zero"): many
   * experiments, but at most one node of any one experiment, so an experiment's
   * links between its nodes are real paths between hosts. Absent: no such limit.
   */
  sharing?: "one-per-experiment";
}

export interface Port {
  /** Unique within its resource, e.g. `eth0`, `swp12`. */
  name: string;
  role: PortRole;
  /** Line rate, bits/s. */
  capacity: number;
  /** NIC model, e.g. `e1000e`, `mlx5`. */
  model?: string;
  mac?: string;
}

export interface SwitchInfo {
  layer: "leaf" | "fabric" | "spine";
  network: NetworkRole;
  /** Can terminate VXLAN (VTEP); otherwise VLAN only. */
  vxlan: boolean;
  /** VLAN ids are unique within a VLAN domain (a set of switches trunked together). */
  vlanDomain: string;
}

export interface PortRef {
  resource: string;
  port: string;
}

export interface Cable {
  id: string;
  ends: [PortRef, PortRef];
}

export interface TagRange {
  first: number;
  last: number;
}

export interface TagPools {
  /** VLAN id ranges per VLAN domain. */
  vlan: Record<string, TagRange[]>;
  /** VXLAN network identifier ranges for the facility. */
  vni: TagRange[];
}

/** All facilities a portal presides over, and the links between their gateways. */
export interface ResourceInternet {
  facilities: Facility[];
  interconnects: Interconnect[];
}

export interface Interconnect {
  id: string;
  a: FacilityPortRef;
  b: FacilityPortRef;
  /** bits/s */
  capacity: number;
  /** one-way, ns */
  latency: number;
  /** Shared with other traffic (rate-limited), rather than dedicated. */
  shared: boolean;
}

export interface FacilityPortRef extends PortRef {
  facility: string;
}
