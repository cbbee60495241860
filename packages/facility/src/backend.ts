/**
 * The backend interface: what rex actions call to do real work on a facility.
 *
 * Every method is idempotent and means "bring this thing to the target state":
 * calling `linkCreate` for a link that already exists as specified succeeds and
 * changes nothing; `linkDestroy` for a link that is gone succeeds. Rex may call a
 * method again after a crash or a lost claim, so a method must never fail only
 * because an earlier call (complete or interrupted) already did some of its work.
 *
 * Inputs are the plain-data specs of a materialization plan (`@merge/materialize`,
 * which derives them from the realization and the experiment XIR and carries them
 * over the wire); a backend needs nothing else from the facility's internals.
 *
 * Implementations: `sim` (modeled durations, injectable failures) and `linux`
 * (network namespaces, veth, bridges, VXLAN, tc, dnsmasq).
 */

import type {
  EmulationSpec,
  GatewayEndSpec,
  InfranetEntry,
  InfranetSpec,
  InfrapodSpec,
  LinkSpec,
  MzId,
  NodeSetupResult,
  NodeSpec,
  PowerAction,
} from "@merge/materialize";

export type {
  EmulationParams,
  EmulationSpec,
  GatewayEndSpec,
  InfranetEntry,
  InfranetSpec,
  InfrapodSpec,
  LinkEndpointSpec,
  LinkSpec,
  MzId,
  NodeAction,
  NodeControlReport,
  NodeInterfaceSpec,
  NodeProfileReport,
  NodeSetupResult,
  NodeSpec,
  NodeState,
  PowerAction,
  WaypointSpec,
} from "@merge/materialize";

/** What `nodeSetup` / `nodeReset` resolve to: a backend that reports nothing keeps returning `Promise<void>`. */
// biome-ignore lint/suspicious/noConfusingVoidType: void is what such backends' methods resolve to.
export type NodeSetupOutcome = NodeSetupResult | undefined | void;

/** What `linkCreate` resolves to: an external link's gateway ends here (only public keys), one per peer. */
// biome-ignore lint/suspicious/noConfusingVoidType: void is what most backends' linkCreate resolves to.
export type LinkCreateOutcome = { gateways?: GatewayEndSpec[] } | undefined | void;

export interface ActionContext {
  /** Aborted when rex loses its claim on the action or shuts down; stop early, state stays consistent. */
  signal: AbortSignal;
  /** Progress messages for operators (never secrets). */
  log(message: string): void;
}

export type InfrapodService = "nex" | "foundry" | "moactld" | "etcd";

export interface InfrapodStatus {
  /** Address on the facility service network that automation uses to reach the infrapod. */
  serviceAddress: string;
  services: Partial<Record<InfrapodService, "up" | "down">>;
  /** This facility's gateway ends its infranet's routes to other facilities used (public parts only). */
  gateways?: GatewayEndSpec[];
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
  /**
   * A facility of many hosts: the resources this host puts in standby (absent:
   * all); the others' standby nodes are on other hosts, reached over the
   * infranet's `vteps`, and this host's infrapod serves them as its own.
   */
  standby?: string[];
  /** This host holds standby nodes only: the harbor's infrapod is on another host, reached over `infranet.vteps`. */
  podElsewhere?: boolean;
}

/** An experiment node of a materialization. */
export interface NodeRef {
  mzid: MzId;
  node: string;
}

export interface Backend {
  readonly name: string;
  /** Create the infrapod's network enclave (namespace, ceth0/ceth1, materialization bridge, VTEP). */
  infrapodEnclave(spec: InfrapodSpec, ctx: ActionContext): Promise<InfrapodStatus>;
  /** Start the infrapod's services (nex DHCP/DNS, foundry, moactld when emulating, etcd). */
  infrapodServices(spec: InfrapodSpec, ctx: ActionContext): Promise<InfrapodStatus>;
  /** Make the infranet's DHCP/DNS entries exactly these. */
  infrapodEntries(spec: InfrapodSpec, entries: InfranetEntry[], ctx: ActionContext): Promise<void>;
  /** Remove the infrapod, its services and its enclave. */
  infrapodDestroy(spec: InfrapodSpec, ctx: ActionContext): Promise<void>;

  /**
   * Many hosts: the infrapod's side of a node set up on another host (its
   * foundry configuration and DHCP/DNS entry when `present`, else their
   * removal). Backends of one host need not have it.
   */
  infrapodNode?(spec: NodeSpec, present: boolean, ctx: ActionContext): Promise<void>;

  /**
   * Many hosts: the gateway's side of routing other facilities' infranets
   * when the gateway is on another host than the infrapod (`spec.gatewayLink`
   * toward the infrapod's host, on its own link slot; one call per gateway
   * host, each with its peers): the tunnels toward the peers and the routes.
   * Returns this facility's gateway ends (public parts only).
   */
  infranetGateway?(spec: InfrapodSpec, ctx: ActionContext): Promise<GatewayEndSpec[]>;

  /**
   * Let the peer facilities' gateway ends of a materialization into its
   * tunnels here (what the portal hands over). `host` on each: the facility
   * host of this facility's gateway toward that peer (many hosts).
   */
  gatewayPeers?(mzid: MzId, peers: (GatewayEndSpec & { host?: string })[], ctx: ActionContext): Promise<void>;

  /** Ensure the harbor exists (facility start-up). */
  harborEnsure(spec: HarborSpec, ctx: ActionContext): Promise<void>;

  /**
   * Clean → Ready: image, configure (foundry), join the materialization's
   * infranet. A virtual node may report the profile it got (node status).
   */
  nodeSetup(spec: NodeSpec, ctx: ActionContext): Promise<NodeSetupOutcome>;
  /** Ready → Clean: leave the infranet, wipe, return to the harbor in imaging standby. */
  nodeRecycle(spec: NodeSpec, ctx: ActionContext): Promise<void>;
  /** Reimage with the node's image and reboot into it; stays in its materialization. */
  nodeReset(spec: NodeSpec, ctx: ActionContext): Promise<NodeSetupOutcome>;
  /**
   * Power a resource, or the one node it carries when `node` is given (a
   * hypervisor carries several virtual nodes; power control acts on one).
   * A node whose profile a power change renews (a VM's, measured again at
   * boot) reports it, as setup does.
   */
  nodePower(resource: string, action: PowerAction, ctx: ActionContext, node?: NodeRef): Promise<NodeSetupOutcome>;

  /**
   * Plumb the link's virtual network along its waypoints. An external link
   * reports this facility's gateway ends it used (public parts only).
   */
  linkCreate(spec: LinkSpec, ctx: ActionContext): Promise<LinkCreateOutcome>;
  linkDestroy(spec: LinkSpec, ctx: ActionContext): Promise<void>;

  /** Start emulating these links on the emulator. */
  emulationSetup(spec: EmulationSpec, ctx: ActionContext): Promise<void>;
  /** Change parameters of a running emulation (links not listed are unchanged). */
  emulationUpdate(spec: EmulationSpec, ctx: ActionContext): Promise<void>;
  emulationDestroy(spec: EmulationSpec, ctx: ActionContext): Promise<void>;

  /** Release anything the backend holds (processes, handles). */
  close(): Promise<void>;
}
