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
  /** What the node takes of its resource (all of it when physical). */
  alloc: { cores: number; memory: number; disk: number };
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
}

export interface Waypoint extends PortRef {
  facility: string;
  vlan?: number;
  vni?: number;
}

export interface LinkSegment {
  /** The experiment endpoints this segment joins (a half-link joins one endpoint and the emulator). */
  endpoints: { node: string; socket: number }[];
  /** Ordered ports the segment's traffic crosses. */
  waypoints: Waypoint[];
}

export interface LinkEmbedding {
  link: string;
  segments: LinkSegment[];
  /** Set when the link is emulated: the emulator its halves meet at. */
  emulator?: { facility: string; resource: string };
  /** True when the link crosses facilities through an interconnect. */
  external: boolean;
  /** bits/s reserved on every cable the link crosses. */
  capacity: number;
}

export interface Infranet {
  facility: string;
  vni: number;
  infrapodServer: string;
}
