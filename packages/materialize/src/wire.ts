/**
 * Fragments and status names between their plain-data form (what the plan, the
 * driver and the backends use) and protobuf messages (what goes over gRPC).
 */
import { create } from "@bufbuild/protobuf";
import * as pb from "@merge/proto";
import type { EmulationValues } from "@merge/xir";
import { MergeError } from "@merge/xir/errors";
import type { Fragment } from "./fragment.ts";
import type {
  ActionState,
  EmulationParams,
  EmulationSpec,
  ExternalSpec,
  InfranetSpec,
  InfrapodSpec,
  LinkEndpointSpec,
  LinkSpec,
  MzStatus,
  NodeAction,
  NodeProfileReport,
  NodeSpec,
  NodeState,
  PowerAction,
} from "./spec.ts";

export class WireError extends MergeError<"plan"> {
  constructor(message: string, options?: ErrorOptions) {
    super("plan", "wire", message, options);
  }
}

/** The name a wire enum value has in `map` (name → value), if any. */
function nameOf<K extends string, V>(map: Record<K, V>, value: V): K | undefined {
  return (Object.keys(map) as K[]).find((k) => map[k] === value);
}

const opt = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } =>
  (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };

function netToPb(n: InfranetSpec): pb.InfranetSpec {
  return create(pb.InfranetSpecSchema, { vni: n.vni, subnet: n.subnet, gateway: n.gateway, hosts: n.hosts ?? [] });
}
function netFromPb(n: pb.InfranetSpec | undefined, where: string): InfranetSpec {
  if (!n) throw new WireError(`${where}: infranet is missing`);
  return { vni: n.vni, subnet: n.subnet, gateway: n.gateway, ...(n.hosts.length ? { hosts: [...n.hosts] } : {}) };
}

function nameResolutionFromPb(v: string, where: string): InfrapodSpec["nameResolution"] {
  if (v === "") return undefined;
  if (v === "experiment" || v === "infranet") return v;
  throw new WireError(`${where}: infrapod.name_resolution "${v}" is not one of experiment, infranet`);
}

function infrapodToPb(s: InfrapodSpec): pb.InfrapodSpec {
  return create(pb.InfrapodSpecSchema, {
    mzid: s.mzid,
    vindex: s.vindex,
    server: s.server,
    infranet: netToPb(s.infranet),
    emulation: s.emulation ?? "",
    nameResolution: s.nameResolution ?? "",
    host: s.host ?? "",
    peers: (s.peers ?? []).map((x) => create(pb.InfranetPeerSchema, x)),
    ...(s.accounts
      ? {
          accounts: create(pb.NodeAccountsSchema, {
            project: s.accounts.project,
            gid: s.accounts.gid,
            users: s.accounts.users.map((u) =>
              create(pb.NodeAccountSchema, { name: u.name, uid: u.uid, keys: u.keys }),
            ),
          }),
        }
      : {}),
  });
}
function infrapodFromPb(s: pb.InfrapodSpec | undefined, where: string): InfrapodSpec {
  if (!s) throw new WireError(`${where}: infrapod is missing`);
  return {
    mzid: s.mzid,
    vindex: s.vindex,
    server: s.server,
    infranet: netFromPb(s.infranet, where),
    ...opt("emulation", s.emulation || undefined),
    ...opt("nameResolution", nameResolutionFromPb(s.nameResolution, where)),
    ...opt("host", s.host || undefined),
    ...(s.peers.length
      ? {
          peers: s.peers.map((x) => ({
            peer: x.peer,
            subnet: x.subnet,
            gateway: x.gateway,
            address: x.address,
            peerAddress: x.peerAddress,
            rateBps: x.rateBps,
            ...opt("host", x.host || undefined),
          })),
        }
      : {}),
    ...opt(
      "accounts",
      s.accounts && {
        project: s.accounts.project,
        gid: s.accounts.gid,
        users: s.accounts.users.map((u) => ({ name: u.name, uid: u.uid, keys: [...u.keys] })),
      },
    ),
  };
}

function nodeToPb(n: NodeSpec): pb.NodeSpec {
  return create(pb.NodeSpecSchema, {
    mzid: n.mzid,
    resource: n.resource,
    node: n.node,
    mode: n.mode,
    kind: n.kind ?? "",
    image: n.image ?? "",
    alloc: n.alloc,
    infranet: {
      net: netToPb(n.infranet),
      address: n.infranet.address,
      port: n.infranet.port,
      mac: n.infranet.mac ?? "",
    },
    interfaces: n.interfaces.map((i) => ({
      socket: i.socket,
      port: i.port,
      mac: i.mac ?? "",
      addrs: i.addrs,
      virtual: i.virtual,
      ...opt("vlan", i.vlan),
      ...opt("vni", i.vni),
      model: i.model ?? "",
    })),
    routes: n.routes,
    host: n.host ?? "",
    cpuShare: n.profile?.cpuShare ?? 0,
    clockDilation: n.profile?.clockDilation ?? 0,
  });
}
function nodeFromPb(n: pb.NodeSpec | undefined, where: string): NodeSpec {
  if (!n) throw new WireError(`${where}: node spec is missing`);
  if (n.mode !== "physical" && n.mode !== "virtual") {
    throw new WireError(`${where}: node mode '${n.mode}' is not 'physical' or 'virtual'`);
  }
  if (!n.infranet) throw new WireError(`${where}: node infranet is missing`);
  return {
    mzid: n.mzid,
    resource: n.resource,
    node: n.node,
    mode: n.mode,
    ...opt("kind", kindFromPb(n.kind, where)),
    ...opt("image", n.image || undefined),
    alloc: { cores: n.alloc?.cores ?? 0, memory: n.alloc?.memory ?? 0, disk: n.alloc?.disk ?? 0 },
    infranet: {
      ...netFromPb(n.infranet.net, where),
      address: n.infranet.address,
      port: n.infranet.port,
      ...opt("mac", n.infranet.mac || undefined),
    },
    interfaces: n.interfaces.map((i) => ({
      socket: i.socket,
      port: i.port,
      ...opt("mac", i.mac || undefined),
      addrs: i.addrs,
      virtual: i.virtual,
      ...opt("vlan", i.vlan),
      ...opt("vni", i.vni),
      ...opt("model", i.model || undefined),
    })),
    routes: n.routes.map((r) => ({ dest: r.dest, gateway: r.gateway, socket: r.socket })),
    ...opt("host", n.host || undefined),
    ...opt("profile", profileFromPb(n)),
  };
}

function profileFromPb(n: pb.NodeSpec): NodeSpec["profile"] {
  const p: NonNullable<NodeSpec["profile"]> = {};
  if (n.cpuShare > 0) p.cpuShare = n.cpuShare;
  if (n.clockDilation > 0) p.clockDilation = n.clockDilation;
  return Object.keys(p).length ? p : undefined;
}

function kindFromPb(kind: string, where: string): NodeSpec["kind"] {
  if (kind === "") return undefined;
  if (kind === "vm" || kind === "container") return kind;
  throw new WireError(`${where}: node kind '${kind}' is not 'vm' or 'container'`);
}

function endpointToPb(e: LinkEndpointSpec): pb.LinkEndpoint {
  return create(pb.LinkEndpointSchema, e);
}
function endpointFromPb(e: pb.LinkEndpoint): LinkEndpointSpec {
  return {
    node: e.node,
    socket: e.socket,
    resource: e.resource,
    port: e.port,
    ...opt("vlan", e.vlan),
    ...opt("vni", e.vni),
    ...opt("host", e.host || undefined),
  };
}

function linkToPb(l: LinkSpec): pb.LinkSpec {
  return create(pb.LinkSpecSchema, {
    mzid: l.mzid,
    vindex: l.vindex,
    link: l.link,
    kind: l.kind,
    endpoints: l.endpoints.map(endpointToPb),
    segments: l.segments.map((s) => ({ endpoints: s.endpoints, waypoints: s.waypoints })),
    emulator: l.emulator ?? "",
    capacity: l.capacity,
    emulatorHost: l.emulatorHost ?? "",
    external: (l.external ?? []).map((x) => create(pb.ExternalSegmentSchema, x)),
    remote: l.remote ?? [],
  });
}

function externalFromPb(x: pb.ExternalSegment, where: string): ExternalSpec {
  if (x.end !== "node" && x.end !== "emulator" && x.end !== "bridge")
    throw new WireError(`${where}: external.end '${x.end}' is not one of node, emulator, bridge`);
  return {
    peer: x.peer,
    vni: x.vni,
    gateway: x.gateway,
    address: x.address,
    peerAddress: x.peerAddress,
    rateBps: x.rateBps,
    end: x.end,
    ...opt("endpoint", x.endpoint),
    ...opt("host", x.host || undefined),
  };
}

function linkFromPb(l: pb.LinkSpec | undefined, where: string): LinkSpec {
  if (!l) throw new WireError(`${where}: link spec is missing`);
  if (l.kind !== "p2p" && l.kind !== "multipoint") {
    throw new WireError(`${where}: link kind '${l.kind}' is not 'p2p' or 'multipoint'`);
  }
  return {
    mzid: l.mzid,
    vindex: l.vindex,
    link: l.link,
    kind: l.kind,
    endpoints: l.endpoints.map(endpointFromPb),
    segments: l.segments.map((s) => ({
      endpoints: s.endpoints.map((e) => ({ node: e.node, socket: e.socket })),
      waypoints: s.waypoints.map((w) => ({
        resource: w.resource,
        port: w.port,
        ...opt("vlan", w.vlan),
        ...opt("vni", w.vni),
      })),
    })),
    ...opt("emulator", l.emulator || undefined),
    capacity: l.capacity,
    ...opt("emulatorHost", l.emulatorHost || undefined),
    ...(l.external.length
      ? { external: l.external.map((x, i) => externalFromPb(x, `${where}: link.external[${i}]`)) }
      : {}),
    ...(l.remote.length ? { remote: [...l.remote] } : {}),
  };
}

function emulationToPb(e: EmulationSpec): pb.EmulationSpec {
  return create(pb.EmulationSpecSchema, {
    mzid: e.mzid,
    vindex: e.vindex,
    emulation: e.emulation,
    emulator: e.emulator,
    host: e.host ?? "",
    links: e.links.map((l) => ({
      link: l.link,
      endpoints: l.endpoints.map(endpointToPb),
      params: emulationParamsToPb(l.params),
    })),
  });
}
function emulationFromPb(e: pb.EmulationSpec | undefined, where: string): EmulationSpec {
  if (!e) throw new WireError(`${where}: emulation spec is missing`);
  return {
    mzid: e.mzid,
    vindex: e.vindex,
    emulation: e.emulation,
    emulator: e.emulator,
    ...opt("host", e.host || undefined),
    links: e.links.map((l) => ({
      link: l.link,
      endpoints: l.endpoints.map(endpointFromPb),
      params: emulationParamsFromPb(l.params),
    })),
  };
}

const POWER: Record<PowerAction, pb.PowerAction> = {
  on: pb.PowerAction.ON,
  off: pb.PowerAction.OFF,
  cycle: pb.PowerAction.CYCLE,
  "soft-cycle": pb.PowerAction.SOFT_CYCLE,
};

export function fragmentToPb(f: Fragment): pb.Fragment {
  const op = ((): pb.Fragment["op"] => {
    switch (f.op) {
      case "infrapod.setup":
        return {
          case: "infrapodSetup",
          value: create(pb.InfrapodSetupSchema, { infrapod: infrapodToPb(f.infrapod), entries: f.entries }),
        };
      case "node.setup":
        return { case: "nodeSetup", value: nodeToPb(f.node) };
      case "node.recycle":
        return { case: "nodeRecycle", value: nodeToPb(f.node) };
      case "node.reset":
        return { case: "nodeReset", value: nodeToPb(f.node) };
      case "node.power":
        return { case: "nodePower", value: create(pb.NodePowerSchema, { action: POWER[f.power] }) };
      case "link.create":
        return { case: "linkCreate", value: linkToPb(f.link) };
      case "link.destroy":
        return { case: "linkDestroy", value: linkToPb(f.link) };
      case "emulation.setup":
        return { case: "emulationSetup", value: emulationToPb(f.emulation) };
    }
  })();
  return create(pb.FragmentSchema, { resource: f.resource, op });
}

/** Throws WireError naming the fragment (`fragments[i]`) and the field that is wrong. */
export function fragmentFromPb(f: pb.Fragment, index: number): Fragment {
  const where = `fragments[${index}] (resource '${f.resource}')`;
  if (!f.resource) throw new WireError(`${where}: resource is empty`);
  const resource = f.resource;
  switch (f.op.case) {
    case "infrapodSetup":
      return {
        resource,
        op: "infrapod.setup",
        infrapod: infrapodFromPb(f.op.value.infrapod, where),
        entries: f.op.value.entries.map((e) => ({
          name: e.name,
          mac: e.mac,
          address: e.address,
          ...opt("facility", e.facility || undefined),
          ...opt("experiment", e.experiment || undefined),
        })),
      };
    case "nodeSetup":
      return { resource, op: "node.setup", node: nodeFromPb(f.op.value, where) };
    case "nodeRecycle":
      return { resource, op: "node.recycle", node: nodeFromPb(f.op.value, where) };
    case "nodeReset":
      return { resource, op: "node.reset", node: nodeFromPb(f.op.value, where) };
    case "nodePower": {
      const action = f.op.value.action;
      const power = nameOf(POWER, action);
      if (!power) throw new WireError(`${where}: power action is unspecified (on, off, cycle or soft-cycle)`);
      return { resource, op: "node.power", power };
    }
    case "linkCreate":
      return { resource, op: "link.create", link: linkFromPb(f.op.value, where) };
    case "linkDestroy":
      return { resource, op: "link.destroy", link: linkFromPb(f.op.value, where) };
    case "emulationSetup":
      return { resource, op: "emulation.setup", emulation: emulationFromPb(f.op.value, where) };
    default:
      throw new WireError(
        `${where}: no operation (one of infrapod_setup, node_setup, node_recycle, node_reset, node_power, link_create, link_destroy, emulation_setup)`,
      );
  }
}

export const MZ_STATUS: Record<MzStatus, pb.MzStatus> = {
  incoming: pb.MzStatus.INCOMING,
  materializing: pb.MzStatus.MATERIALIZING,
  active: pb.MzStatus.ACTIVE,
  error: pb.MzStatus.ERROR,
  dematerializing: pb.MzStatus.DEMATERIALIZING,
  dematerialized: pb.MzStatus.DEMATERIALIZED,
};
export function mzStatusName(s: pb.MzStatus): MzStatus | "unspecified" {
  return nameOf(MZ_STATUS, s) ?? "unspecified";
}
export const NODE_STATE: Record<NodeState, pb.NodeState> = {
  clean: pb.NodeState.CLEAN,
  setup: pb.NodeState.SETUP,
  ready: pb.NodeState.READY,
};
export function nodeStateName(s: pb.NodeState): NodeState | "unknown" {
  return nameOf(NODE_STATE, s) ?? "unknown";
}
export const ACTION_STATE: Record<ActionState, pb.ActionState> = {
  pending: pb.ActionState.PENDING,
  complete: pb.ActionState.COMPLETE,
  error: pb.ActionState.ERROR,
};
export function actionStateName(s: pb.ActionState): ActionState | "unknown" {
  return nameOf(ACTION_STATE, s) ?? "unknown";
}

/** Emulation values present in `p` (an absent field stays absent on the wire: unconstrained). */
function valuesOf(p: EmulationValues | undefined): EmulationValues {
  return { ...opt("capacity", p?.capacity), ...opt("latency", p?.latency), ...opt("loss", p?.loss) };
}

export function emulationParamsToPb(p: EmulationParams): pb.EmulationParams {
  return create(pb.EmulationParamsSchema, {
    ...valuesOf(p),
    toward: (p.toward ?? []).map((t) => ({ node: t.node, ...valuesOf(t) })),
  });
}

export function emulationParamsFromPb(p: pb.EmulationParams | undefined): EmulationParams {
  const out: EmulationParams = valuesOf(p);
  if (p?.toward.length) out.toward = p.toward.map((t) => ({ node: t.node, ...valuesOf(t) }));
  return out;
}

/** A virtual node's profile in its status. */
export function nodeProfileToPb(p: NodeProfileReport): pb.NodeProfile {
  return create(pb.NodeProfileSchema, {
    kind: p.kind,
    accel: p.accel ?? "",
    cores: p.cores ?? 0,
    memoryMib: BigInt(p.memoryMiB ?? 0),
    cpuCap: p.cpuCap ?? 0,
    nics: p.nics ?? [],
    ...(p.dilation ? { dilation: p.dilation } : {}),
  });
}

/** A status's node profile in plain data; absent or of no known kind: undefined. */
export function nodeProfileFromPb(p: pb.NodeProfile | undefined): NodeProfileReport | undefined {
  if (!p || (p.kind !== "vm" && p.kind !== "container")) return undefined;
  const d = p.dilation;
  return {
    kind: p.kind,
    ...opt("accel", p.accel === "kvm" || p.accel === "tcg" ? p.accel : undefined),
    ...opt("cores", p.cores || undefined),
    ...opt("memoryMiB", Number(p.memoryMib) || undefined),
    ...opt("cpuCap", p.cpuCap || undefined),
    ...(p.nics.length ? { nics: p.nics.map((n) => ({ ifname: n.ifname, model: n.model })) } : {}),
    ...(d
      ? {
          dilation: {
            asked: d.asked,
            achieved: d.achieved,
            ofCpu: d.ofCpu,
            shift: d.shift,
            cap: d.cap,
            rate: d.rate,
            obtained: d.obtained,
            windowS: d.windowS,
            error: d.error,
          },
        }
      : {}),
  };
}

const NODE_ACTION: Record<NodeAction, pb.PowerAction> = { ...POWER, reimage: pb.PowerAction.REIMAGE };

/** A node request's action (power, or reimage) on the wire. */
export function powerActionToPb(a: NodeAction): pb.PowerAction {
  return NODE_ACTION[a];
}
export function powerActionFromPb(a: pb.PowerAction): NodeAction | undefined {
  return nameOf(NODE_ACTION, a);
}
