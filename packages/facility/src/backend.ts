/**
 * The backend interface: what rex actions call to do real work on a facility.
 *
 * Every method is idempotent and means "bring this thing to the target state":
 * calling `linkCreate` for a link that already exists as specified succeeds and
 * changes nothing; `linkDestroy` for a link that is gone succeeds. Rex may call a
 * method again after a crash or a lost claim, so a method must never fail only
 * because an earlier call (complete or interrupted) already did some of its work.
 *
 * Inputs are plain data derived from the realization and the experiment XIR (see
 * `materialization.ts`, which derives them, and `fragment.ts`, which carries them
 * over the wire); a backend needs nothing else from the facility's internals.
 *
 * Implementations: `sim` (modeled durations, injectable failures) and `linux`
 * (network namespaces, veth, bridges, VXLAN, tc, dnsmasq).
 */

import type { LinkEmulation } from "@merge/xir";

/**
 * Node states, driven by rex from current to target: Clean (in the harbor, imaging
 * standby) → Setup (being imaged/configured/joined) → Ready (in its materialization).
 * Recycling goes back through Setup to Clean.
 */
export type NodeState = "clean" | "setup" | "ready";

/** A materialization's id: `realization.experiment.project`. */
export type MzId = string;

export interface ActionContext {
  /** Aborted when rex loses its claim on the action or shuts down; stop early, state stays consistent. */
  signal: AbortSignal;
  /** Progress messages for operators (never secrets). */
  log(message: string): void;
}

/** The per-materialization management network joining its nodes and its infrapod. */
export interface InfranetSpec {
  /** VXLAN network identifier of the infranet (from the realization). */
  vni: number;
  /** IPv4 subnet in CIDR form, e.g. `172.30.0.0/16`. */
  subnet: string;
  /** The infrapod's address on the infranet (DHCP/DNS server, gateway), e.g. `172.30.0.1`. */
  gateway: string;
}

export interface InfrapodSpec {
  mzid: MzId;
  /**
   * Small integer unique among the facility's live materializations; names kernel
   * objects (`mzbr<vindex>`, `ifr<vindex>`) that cannot hold a full mzid.
   */
  vindex: number;
  /** The infrapod server resource hosting the infrapod. */
  server: string;
  infranet: InfranetSpec;
  /** Emulation id the infrapod's emulation control (moactld) accepts; absent when nothing is emulated. */
  emulation?: string;
}

export type InfrapodService = "nex" | "foundry" | "moactld" | "etcd";

export interface InfrapodStatus {
  /** Address on the facility service network that automation uses to reach the infrapod. */
  serviceAddress: string;
  services: Partial<Record<InfrapodService, "up" | "down">>;
}

/** One DHCP/DNS entry on the infranet (nex). */
export interface InfranetEntry {
  /** Experiment node name; resolves in DNS. */
  name: string;
  /** MAC of the node's infranet interface. */
  mac: string;
  /** IPv4 address (no prefix length). */
  address: string;
}

export interface NodeInterfaceSpec {
  /** Experiment socket index. */
  socket: number;
  /** Physical port on the resource. */
  port: string;
  mac?: string;
  /** Experiment addresses in CIDR form. */
  addrs: string[];
  /** Several interfaces multiplexed on one port, or a VM's virtual NIC. */
  virtual: boolean;
  vlan?: number;
  vni?: number;
}

export interface NodeSpec {
  mzid: MzId;
  /** Facility resource id (a machine, or the hypervisor for a VM). */
  resource: string;
  /** Experiment node name (hostname). */
  node: string;
  mode: "physical" | "virtual";
  /** OS image; the facility default when absent. */
  image?: string;
  alloc: { cores: number; memory: number; disk: number };
  infranet: InfranetSpec & {
    /** The node's infranet address (no prefix length). */
    address: string;
    /** The resource's infranet port. */
    port: string;
    mac?: string;
  };
  interfaces: NodeInterfaceSpec[];
  routes: { dest: string; gateway: string; socket: number }[];
}

/**
 * The facility-wide holding materialization for unallocated nodes
 * (`main.harbor.<facility>`): its infrapod, and every testbed node that
 * carries no experiment node waiting there in imaging standby.
 */
export interface HarborSpec {
  /** `main.harbor.<facility>`. */
  name: string;
  infranet: InfranetSpec;
  /** The infrapod server hosting the harbor's infrapod. */
  server: string;
  /** The testbed nodes it holds when unallocated, each with its harbor infranet address and MAC. */
  resources: { id: string; address: string; mac: string }[];
}

export type PowerAction = "on" | "off" | "cycle" | "soft-cycle";

/**
 * What a user may do to a materialized node: power it, or reimage it (wipe its
 * disk back to its image and boot it, as fresh as at materialize; the backend's
 * `nodeReset`). Reimage is a reboot mode, as in Merge, not a power state.
 */
export type NodeAction = PowerAction | "reimage";

/** An experiment node of a materialization. */
export interface NodeRef {
  mzid: MzId;
  node: string;
}

export interface LinkEndpointSpec {
  node: string;
  socket: number;
  resource: string;
  port: string;
  vlan?: number;
  vni?: number;
}

export interface LinkSpec {
  mzid: MzId;
  vindex: number;
  /** Experiment link name. */
  link: string;
  /** point-to-point (2 endpoints) or multipoint (2+) */
  kind: "p2p" | "multipoint";
  endpoints: LinkEndpointSpec[];
  /** Ordered switch hops with their tags, per segment (half-links when emulated). */
  segments: { endpoints: { node: string; socket: number }[]; waypoints: WaypointSpec[] }[];
  /** Present when the link runs through an emulator. */
  emulator?: string;
  /** bits/s reserved. */
  capacity: number;
}

export interface WaypointSpec {
  resource: string;
  port: string;
  vlan?: number;
  vni?: number;
}

/**
 * A link's emulation in base units (bits/s, ns one way, fraction): the link's
 * values, which every direction gets, and the directions set apart (`toward`
 * a node) with their own. Absent fields are unconstrained. See `@merge/xir`'s
 * `LinkEmulation` and `emulationToward`.
 */
export type EmulationParams = LinkEmulation;

export interface EmulationSpec {
  mzid: MzId;
  vindex: number;
  /** Emulation id (per materialization). */
  emulation: string;
  /** Emulator resource. */
  emulator: string;
  links: { link: string; endpoints: LinkEndpointSpec[]; params: EmulationParams }[];
}

export interface Backend {
  readonly name: string;
  /** Create the infrapod's network enclave (namespace, ceth0/ceth1, materialization bridge, VTEP). */
  infrapodCreate(spec: InfrapodSpec, ctx: ActionContext): Promise<InfrapodStatus>;
  /** Start the infrapod's services (nex DHCP/DNS, foundry, moactld when emulating, etcd). */
  infrapodServices(spec: InfrapodSpec, ctx: ActionContext): Promise<InfrapodStatus>;
  /** Make the infranet's DHCP/DNS entries exactly these. */
  infranetEntries(spec: InfrapodSpec, entries: InfranetEntry[], ctx: ActionContext): Promise<void>;
  /** Remove the infrapod, its services and its enclave. */
  infrapodDestroy(spec: InfrapodSpec, ctx: ActionContext): Promise<void>;

  /** Ensure the harbor exists (facility start-up). */
  harborEnsure(spec: HarborSpec, ctx: ActionContext): Promise<void>;

  /** Clean → Ready: image, configure (foundry), join the materialization's infranet. */
  nodeSetup(spec: NodeSpec, ctx: ActionContext): Promise<void>;
  /** Ready → Clean: leave the infranet, wipe, return to the harbor in imaging standby. */
  nodeRecycle(spec: NodeSpec, ctx: ActionContext): Promise<void>;
  /** Reimage with the node's image and reboot into it; stays in its materialization. */
  nodeReset(spec: NodeSpec, ctx: ActionContext): Promise<void>;
  /**
   * Power a resource, or the one node it carries when `node` is given (a
   * hypervisor carries several virtual nodes; power control acts on one).
   */
  nodePower(resource: string, action: PowerAction, ctx: ActionContext, node?: NodeRef): Promise<void>;

  /** Plumb the link's virtual network along its waypoints. */
  linkCreate(spec: LinkSpec, ctx: ActionContext): Promise<void>;
  linkDestroy(spec: LinkSpec, ctx: ActionContext): Promise<void>;

  /** Start emulating these links on the emulator. */
  emulationCreate(spec: EmulationSpec, ctx: ActionContext): Promise<void>;
  /** Change parameters of a running emulation (links not listed are unchanged). */
  emulationUpdate(spec: EmulationSpec, ctx: ActionContext): Promise<void>;
  emulationDestroy(spec: EmulationSpec, ctx: ActionContext): Promise<void>;

  /** Release anything the backend holds (processes, handles). */
  close(): Promise<void>;
}
