/**
 * A realization: an embedding of an experiment into the resource internet, plus
 * the resources it reserves. Produced by `@merge/realize`, consumed by the portal
 * (to show and to accept) and by facilities (to materialize).
 */
import type { AllocMode, PortRef } from "./facility.ts";

export interface Realization {
  xir: "1.0";
  /** Hierarchical name: `realization.experiment.project`. */
  id: string;
  /** Canonical hash of the experiment XIR that was realized. */
  experiment: string;
  nodes: NodeEmbedding[];
  links: LinkEmbedding[];
  /** One per facility the realization touches. */
  infranets: Infranet[];
}

export interface NodeEmbedding {
  node: string;
  facility: string;
  resource: string;
  mode: AllocMode;
  /** A virtual node: what the hypervisor makes of it (absent on older realizations: a container). */
  kind?: "vm" | "container";
  /**
   * What the node takes of its resource (all of it when physical: the
   * resource's `proc.cores`, `memory.capacity`, `disk.capacity`, 0 when absent).
   * A virtual node's `disk` is its root file system (`root`) plus the extra disk
   * its `disk.capacity` asks for, as in MergeTB.
   */
  alloc: { cores: number; memory: number; disk: number; root?: number };
  interfaces: InterfaceEmbedding[];
}

export interface InterfaceEmbedding {
  socket: number;
  /** Physical port on the resource carrying this interface. */
  port: string;
  /** Several interfaces multiplexed on one port (VLAN trunk / VXLAN); or a VM's virtual NIC. */
  virtual: boolean;
  vlan?: number;
  vni?: number;
  /** A VM's virtual NIC: the model the hypervisor emulates (`virtio`, `e1000`, ...) and its queues. */
  model?: string;
  queues?: number;
}

/**
 * One port a segment's traffic crosses. Consecutive waypoints on different
 * resources are joined by a cable (or, between gateways, an interconnect);
 * consecutive waypoints on one resource are the way in and out of a switch.
 * `vlan` is set where the traffic is VLAN-tagged (VLAN-only switches, trunked
 * node ports); `vni` where it is VXLAN-encapsulated (VTEP switches, hypervisors,
 * emulators, gateways).
 */
export interface Waypoint extends PortRef {
  facility: string;
  vlan?: number;
  vni?: number;
}

/** Emulation values of a link or of one direction of it. Absent: not shaped. */
export interface EmulationValues {
  /** bits/s */
  capacity?: number;
  /** one-way, ns */
  latency?: number;
  /** fraction 0..1 */
  loss?: number;
}

/**
 * A link's emulation. The link-level values apply in every direction; a
 * direction the model sets apart (socket `rx.*` constraints) is listed in
 * `toward`, by the node it leads to, and its values replace the link's for the
 * properties it names.
 */
export interface LinkEmulation extends EmulationValues {
  toward?: ({ node: string } & EmulationValues)[];
}

/** The values the emulator applies toward one endpoint's node: the link's, with that direction's in their place. */
export function emulationToward(e: LinkEmulation, node: string): EmulationValues {
  const { toward, ...link } = e;
  const { node: _, ...own } = toward?.find((t) => t.node === node) ?? { node };
  return { ...link, ...own };
}

export interface LinkSegment {
  /** The experiment endpoints this segment joins (a half-link joins one endpoint and the emulator). */
  endpoints: { node: string; socket: number }[];
  /** Ordered ports the segment's traffic crosses. */
  waypoints: Waypoint[];
}

/**
 * A link as realized. Every segment of a plain link belongs to one virtual
 * network (its tags are the link's); an emulated link is cut at the emulator:
 * each segment joins one endpoint to the emulator and is a virtual network of
 * its own, with its own tags, so traffic cannot bypass the emulator.
 *
 * Segment shapes: a plain point-to-point link has one segment from endpoint to
 * endpoint; a plain multipoint link has one segment per endpoint, all ending on
 * the same switch (the hub of the link's tree); two endpoints on one hypervisor
 * joined by a plain link get a segment with the single hypervisor port (the
 * hypervisor bridges them locally).
 */
export interface LinkEmbedding {
  link: string;
  segments: LinkSegment[];
  /** Set when the link is emulated: the emulator its halves meet at. */
  emulator?: { facility: string; resource: string };
  /** What the emulator applies (set when emulated): values that satisfy the link's constraints. */
  emulation?: LinkEmulation;
  /** True when the link crosses facilities through an interconnect. */
  external: boolean;
  /** bits/s reserved on every cable the link crosses, once per virtual network crossing it. */
  capacity: number;
}

export interface Infranet {
  facility: string;
  vni: number;
  infrapodServer: string;
}
