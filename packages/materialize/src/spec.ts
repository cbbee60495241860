/**
 * What a materialization plan says to a facility, in plain data: the specs a
 * backend acts on (infrapod, infranet entries, nodes, links, emulations), in
 * base units (bits/s, ns one way, loss as a fraction, bytes). The facility's
 * backends take exactly these; `wire.ts` carries them over gRPC.
 */
import type { HostNat, LinkEmulation, NodeProfile } from "@merge/xir";

/**
 * Node states, driven by rex from current to target: Clean (in the harbor, imaging
 * standby) → Setup (being imaged/configured/joined) → Ready (in its materialization).
 * Recycling goes back through Setup to Clean.
 */
export type NodeState = "clean" | "setup" | "ready";

/** A materialization's id: `realization.experiment.project`. */
export type MzId = string;

/** The per-materialization management network joining its nodes and its infrapod. */
export interface InfranetSpec {
  /** VXLAN network identifier of the infranet (from the realization). */
  vni: number;
  /** IPv4 subnet in CIDR form, e.g. `172.30.0.0/16`. */
  subnet: string;
  /** The infrapod's address on the infranet (DHCP/DNS server, gateway), e.g. `172.30.0.1`. */
  gateway: string;
  /**
   * Every facility host the infranet spans, the infrapod's first (`""`: the
   * facility's own machine); absent when it is all on one host. Each host
   * joins it with a VXLAN tunnel endpoint on the infranet's VNI.
   */
  hosts?: string[];
  /**
   * The underlay addresses of the other hosts in `hosts`: filled in by the
   * facility when it routes a call to a host (from the hosts' registrations),
   * never planned.
   */
  vteps?: string[];
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
  /**
   * What a node's name resolves to in nex's DNS (the experiment's
   * `nameResolution` parameter): its first experiment address (absent, the
   * default) or its infranet address.
   */
  nameResolution?: "experiment" | "infranet";
  /** The facility host carrying the infrapod (its server's); absent: the facility's own machine. */
  host?: string;
  /**
   * The project's members as accounts on every node (foundry installs them;
   * nodes with sshd let them in with these keys). Public keys and ids only.
   */
  accounts?: NodeAccounts;
  /**
   * The other facilities' infranets of a materialization across facilities,
   * each routed over this materialization's gateway tunnel toward its facility
   * (absent: one facility, or no interconnect to the others).
   */
  peers?: InfranetPeer[];
  /**
   * On a gateway's host, when the infrapod is on another: the link toward the
   * infrapod's host. Filled in by the facility when it routes the call (never
   * planned).
   */
  gatewayLink?: GatewayLink;
  /**
   * On the infrapod's host: one link per other host carrying gateways, each
   * naming the peers routed through it; a peer in none has its gateway on
   * this host. Filled in by the facility when it routes the call.
   */
  gatewayLinks?: GatewayLink[];
}

/**
 * The infrapod and a gateway namespace its peers' infranets are routed
 * through, on different hosts: a VXLAN tunnel between the two.
 */
export interface GatewayLink {
  /** The other host's underlay address. */
  remote: string;
  /** The link's /30 of 169.254.0.0/24 (1, 2, …: one per gateway host; 0 is a gateway on the infrapod's own host). */
  slot: number;
  /** On the infrapod's side: the peers (facilities) routed through this gateway host. */
  peers?: string[];
}

/**
 * Another facility's infranet as this facility routes it: over the gateway
 * tunnel toward `peer` (the one external links use), on the interconnect's
 * gateway resource here.
 */
export interface InfranetPeer {
  /** The facility whose infranet it is. */
  peer: string;
  /** Its infranet, e.g. `172.16.0.0/16` (never overlapping this facility's). */
  subnet: string;
  /** This facility's gateway resource toward `peer`. */
  gateway: string;
  /** This facility's end of the tunnel, inside it. */
  address: string;
  /** The peer's inner address. */
  peerAddress: string;
  /** bits/s this facility sends into the tunnel (the gateway port's line rate); 0: unlimited. */
  rateBps: number;
  /** The facility host carrying the gateway resource (absent: the facility's own machine). */
  host?: string;
}

/** A project's members as node accounts: the portal's uids (a user's group has their uid) and the project's gid. */
export interface NodeAccounts {
  project: string;
  gid: number;
  users: { name: string; uid: number; keys: string[] }[];
}

/** One DHCP/DNS entry on the infranet (nex). */
export interface InfranetEntry {
  /** Experiment node name; resolves in DNS. */
  name: string;
  /** MAC of the node's infranet interface. */
  mac: string;
  /** IPv4 address (no prefix length). */
  address: string;
  /**
   * A node at another facility of the materialization (DNS only: its name
   * resolves at every facility, its DHCP stays at its own): that facility.
   */
  facility?: string;
  /** Its first experiment address (what its name resolves to unless resolution is by infranet). */
  experiment?: string;
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
  /** A VM's NIC model (`virtio`, `e1000`, ...), as realized. */
  model?: string;
}

export interface NodeSpec {
  mzid: MzId;
  /** Facility resource id (a machine, or the hypervisor for a VM). */
  resource: string;
  /** Experiment node name (hostname). */
  node: string;
  mode: "physical" | "virtual";
  /** A virtual node: what the hypervisor makes of it (absent: a container). */
  kind?: "vm" | "container";
  /** A virtual node's profile settings from the model (`cpu.share`, `clock.dilation`); absent: none asked. */
  profile?: NodeProfile;
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
  /** The facility host carrying the node (its resource's); absent: the facility's own machine. */
  host?: string;
  /**
   * The host's NAT for control access, from the facility's model
   * (`hosts.<host>.nat`): added by the facility when it hands the node to the
   * host's agent, never by the plan (a host agent's own `--nat` overrides it).
   */
  nat?: HostNat;
  /**
   * On a node's recycle when its whole materialization goes and the infrapod's teardown sweeps every host of it
   * after: the node itself still goes (and its resource back to the harbor), but what it shares with the other
   * nodes (its infrapod entry, the last node's infranet switch) is left to that sweep.
   */
  sweptAfter?: boolean;
}

/** Time dilation as asked and as measured (the facility's linux data plane, dilation.ts). */
export interface DilationReport {
  /** What the model asked (`clock.dilation`). */
  asked: number;
  /** Host wall seconds per guest second, measured over `windowS` once the governor settled. */
  achieved: number;
  /** Host seconds per guest second had the host given the whole cap: (CPU time / cap) per guest second. */
  ofCpu: number;
  /** QEMU's `-icount shift`: each guest instruction is 2^shift ns of guest time. */
  shift: number;
  /** The CPU quota it runs under, in host cores. */
  cap: number;
  /** Guest seconds per host CPU second at this shift, as measured. */
  rate: number;
  /** The share of its cap the QEMU process got while measured (below 1: the host was short of CPU). */
  obtained: number;
  windowS: number;
  /** Relative error of `achieved` from the reading's round trips. */
  error: number;
}

/** What a virtual node actually got, as the facility set it up: reported in the node's status. */
export interface NodeProfileReport {
  kind: "vm" | "container";
  /** A VM: kvm | tcg. */
  accel?: "kvm" | "tcg";
  cores?: number;
  memoryMiB?: number;
  /** Host CPU bandwidth in cores (the cgroup quota per 100 ms period); absent: not capped. */
  cpuCap?: number;
  /** A VM's NICs: the host-side name and the model QEMU emulates. */
  nics?: { ifname: string; model: string }[];
  dilation?: DilationReport;
}

/**
 * How a node on a shared host is reached from outside, through its host's NAT
 * (a wide-area facility): `ssh -p <ssh> <address>`; ports `first`…`last` of the
 * host's address are forwarded to the node (`first` to its port 22, the others
 * to the same port numbers).
 */
export interface NodeControlReport {
  address: string;
  first: number;
  last: number;
  ssh: number;
}

/** What setting a node up reports (a backend's `nodeSetup` / `nodeReset`). */
export interface NodeSetupResult {
  profile?: NodeProfileReport;
  control?: NodeControlReport;
}

export type PowerAction = "on" | "off" | "cycle" | "soft-cycle";

/**
 * What a user may do to a materialized node: power it, or reimage it (wipe its
 * disk back to its image and boot it, as fresh as at materialize; the backend's
 * `nodeReset`). Reimage is a reboot mode, as in Merge, not a power state.
 */
export type NodeAction = PowerAction | "reimage";

export interface LinkEndpointSpec {
  node: string;
  socket: number;
  resource: string;
  port: string;
  vlan?: number;
  vni?: number;
  /** The facility host carrying the endpoint's node; absent: the facility's own machine. */
  host?: string;
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
  /** The emulator's facility host, when emulated; absent: the facility's own machine. */
  emulatorHost?: string;
  /**
   * A link spanning hosts, as the facility routes it to one of them (never
   * planned): `local` is the host this call wires (`""`: the facility's own
   * machine), `underlays` every host of the link's underlay address.
   */
  span?: { local: string; underlays: Record<string, string> };
  /**
   * The link's crossings of the wide area as this facility carries them (an
   * external link): each a VXLAN segment over this materialization's gateway
   * tunnel toward the peer facility. Absent: the link stays in the facility.
   */
  external?: ExternalSpec[];
  /** Indices into `endpoints` of the endpoints at other facilities (wired there, never here). */
  remote?: number[];
  /**
   * On a link's teardown when its whole materialization goes and the infrapod's teardown comes after and sweeps
   * every host of it: what the link made in this facility may be left to that sweep, which deletes namespaces
   * with everything in them at once rather than one interface at a time (never set for an external link).
   */
  sweptAfter?: boolean;
}

/**
 * One crossing of the wide area by an external link, at one facility: what it
 * joins here to the VXLAN segment (VNI: the interconnect's tag in the
 * realization) over the gateway tunnel toward `peer`.
 */
export interface ExternalSpec {
  /** The facility at the other end of the tunnel. */
  peer: string;
  /** VNI across the wide area, the same at both ends. */
  vni: number;
  /** This facility's gateway resource. */
  gateway: string;
  /** This facility's end of the tunnel, inside it (the VXLAN underlay), e.g. `169.254.1.1`. */
  address: string;
  /** The peer's inner address. */
  peerAddress: string;
  /** bits/s this facility sends into the tunnel: the gateway port's line rate in the facility model. */
  rateBps: number;
  /**
   * What joins the segment here: endpoint `endpoint`'s node interface
   * (`node`), the emulator's port for endpoint `endpoint` (`emulator`, the
   * endpoint being at the peer), or the link's bridge (`bridge`, a LAN).
   */
  end: "node" | "emulator" | "bridge";
  endpoint?: number;
  /**
   * The facility host carrying the gateway resource, where the tunnel lives
   * (absent: the facility's own machine); what joins the segment on another
   * host reaches it over the facility's VXLAN fabric.
   */
  host?: string;
}

/**
 * What a facility's gateway hands the portal for one peer of a
 * materialization: nothing secret (the private key stays where it was made).
 */
export interface GatewayEndSpec {
  /** The facility at the other end. */
  peer: string;
  publicKey: string;
  /** `address:port` on the wide area. */
  endpoint: string;
  /** Inner address of this end. */
  address: string;
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
  /** The emulator's facility host; absent: the facility's own machine. */
  host?: string;
  links: { link: string; endpoints: LinkEndpointSpec[]; params: EmulationParams }[];
  /**
   * On its teardown when the whole materialization goes (as `LinkSpec.sweptAfter`): the infrapod's sweep of
   * every host ends the emulator's processes and deletes its namespace, qdiscs and all. Stopping it first raced
   * the nodes' recycles for the kernel's netlink lock (seconds, while their namespaces went) and lost their
   * veths under it.
   */
  sweptAfter?: boolean;
}

/** pending: waiting or running; complete: done (by rex or by hand); error: stops its task until cleared. */
export type ActionState = "pending" | "complete" | "error";

/** A materialization's status on a facility, derived from its actions (never stored). */
export type MzStatus = "incoming" | "materializing" | "active" | "error" | "dematerializing" | "dematerialized";
