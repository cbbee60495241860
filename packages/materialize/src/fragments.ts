/**
 * Realization + experiment → the fragments one facility must carry out (pure).
 * `plan.ts` calls this once per facility a realization touches when the portal
 * creates a materialization; the result is stored and sent to that facility's
 * commander.
 */
import {
  type Constraint,
  DIRECTIONAL_PROPS,
  type EmulationValues,
  type Experiment,
  type Facility,
  type Interconnect,
  type LinkEmulation,
  type NodeProfile,
  nodeProfile,
  type Realization,
  towardConstraints,
} from "@merge/xir";
import { MergeError } from "@merge/xir/errors";
import type { Fragment } from "./fragment.ts";
import type {
  EmulationParams,
  EmulationSpec,
  ExternalSpec,
  InfranetEntry,
  InfranetPeer,
  InfranetSpec,
  LinkEndpointSpec,
  LinkSpec,
  NodeSpec,
} from "./spec.ts";

/** The infranet is flat and private to a materialization, so every one can use the same subnet. */
export const INFRANET: Omit<InfranetSpec, "vni"> = { subnet: "172.30.0.0/16", gateway: "172.30.0.1" };

/** A realization that cannot be materialized as it stands (names what is missing). */
export class PlanError extends MergeError<"plan"> {
  constructor(message: string, options?: ErrorOptions) {
    super("plan", "invalid", message, options);
  }
}

/** How many facilities one materialization's infranets can span (each its own /16). */
export const MAX_INFRANETS = 15;

/** Second octet of the kth infranet of a materialization: 30 for the first, then 16, 17, … 29. */
function infranetOctet(k: number): number {
  if (!Number.isInteger(k) || k < 0 || k >= MAX_INFRANETS)
    throw new PlanError(`a materialization spans at most ${MAX_INFRANETS} facilities (infranet ${k + 1} asked for)`);
  return k === 0 ? 30 : 15 + k;
}

/**
 * The kth facility's infranet of a materialization (k: its place in the
 * realization's infranets): 172.30.0.0/16 for the first (and only, on one
 * facility), 172.16.0.0/16, 172.17.0.0/16, … for the others, so infranets
 * joined across facilities never overlap.
 */
export function infranetOf(k: number): Omit<InfranetSpec, "vni"> {
  if (k === 0) return INFRANET;
  const o = infranetOctet(k);
  return { subnet: `172.${o}.0.0/16`, gateway: `172.${o}.0.1` };
}

/** The nth node's infranet address on the kth infranet: .0.2 onwards (.1 is the infrapod). */
export function infranetAddress(n: number, k = 0): string {
  const v = n + 2;
  if (v > 65534) throw new PlanError(`infranet ${infranetOf(k).subnet} has no room for node ${n + 1}`);
  return `172.${infranetOctet(k)}.${v >> 8}.${v & 255}`;
}

/** A stable locally administered MAC for a port without one in the resource model. */
export function syntheticMac(resource: string, port: string): string {
  let h = 2166136261;
  for (const ch of `${resource}/${port}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  const b = [0x02, 0x4d, (h >>> 24) & 255, (h >>> 16) & 255, (h >>> 8) & 255, h & 255];
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** The value a property is held to (`==`, `<=`, `<`), if any. */
function heldTo(constraints: readonly Constraint[], prop: string): number | undefined {
  const c = constraints.find((k) => k.prop === prop && ["==", "<=", "<"].includes(k.op));
  return typeof c?.value === "number" ? c.value : undefined;
}

function valuesOf(constraints: readonly Constraint[]): EmulationValues {
  const e: EmulationValues = {};
  for (const prop of DIRECTIONAL_PROPS) {
    const v = heldTo(constraints, prop);
    if (v !== undefined) e[prop] = v;
  }
  return e;
}

/**
 * Emulation the link's constraints ask for, if any (latency, loss, or a
 * capacity limit), on the link or on one direction of it (an endpoint
 * socket's `rx.*` constraints): the values they hold it to, read plainly.
 */
export function linkEmulation(
  link: Experiment["links"][number],
  xp: Pick<Experiment, "nodes">,
): EmulationParams | undefined {
  const e: EmulationParams = valuesOf(link.constraints);
  const directions = link.endpoints.flatMap((ep) => {
    const s = xp.nodes.find((n) => n.name === ep.node)?.sockets.find((x) => x.index === ep.socket);
    const own = { node: ep.node, ...valuesOf(s ? towardConstraints(s) : []) };
    return Object.keys(own).length > 1 ? [own] : [];
  });
  if (directions.length) e.toward = directions;
  return Object.keys(e).length > 0 ? e : undefined;
}

/**
 * What a link's emulator applies: the values the realization chose for it and
 * its directions. A realization recorded without them (older records) falls
 * back to the values its constraints hold the link to.
 */
function emulationParams(
  le: Realization["links"][number],
  xl: Experiment["links"][number],
  xp: Experiment,
): EmulationParams {
  return le.emulation ?? linkEmulation(xl, xp) ?? {};
}

/**
 * Inner addresses of the gateway tunnel between the facilities at places `k`
 * and `p` of the realization's infranets: `169.254.S.(k+1)` and `.(p+1)`, S
 * one per pair, so one materialization's tunnels to several peers never share
 * a subnet in its gateway namespace.
 */
export function gatewayAddresses(k: number, p: number): { address: string; peerAddress: string } {
  const [lo, hi] = k < p ? [k, p] : [p, k];
  const s = 1 + lo * MAX_INFRANETS + hi;
  return { address: `169.254.${s}.${k + 1}`, peerAddress: `169.254.${s}.${p + 1}` };
}

/**
 * The one-way latency the wide area already gives a link: per segment the
 * interconnects it crosses, then (as the realization engine counts it) the
 * two slowest segments, since a frame crosses at most two half-links.
 */
export function wideAreaLatency(le: Realization["links"][number], interconnects: readonly Interconnect[]): number {
  const lat = le.segments.map((s) => {
    let sum = 0;
    for (let i = 0; i + 1 < s.waypoints.length; i++) {
      const a = s.waypoints[i]!;
      const b = s.waypoints[i + 1]!;
      if (a.facility === b.facility) continue;
      const at = (e: Interconnect["a"], w: typeof a) =>
        e.facility === w.facility && e.resource === w.resource && e.port === w.port;
      const ic = interconnects.find((x) => (at(x.a, a) && at(x.b, b)) || (at(x.a, b) && at(x.b, a)));
      sum += ic?.latency ?? 0;
    }
    return sum;
  });
  lat.sort((p, q) => q - p);
  return (lat[0] ?? 0) + (lat[1] ?? 0);
}

/**
 * What the emulator adds: the realized values less the wide area's latency,
 * which the link's latency already counts (never below 0).
 */
export function lessWideArea(e: LinkEmulation, wan: number): LinkEmulation {
  if (wan <= 0) return e;
  const less = <T extends { latency?: number }>(v: T): T =>
    v.latency === undefined ? v : { ...v, latency: Math.max(0, v.latency - wan) };
  return { ...less(e), ...(e.toward ? { toward: e.toward.map(less) } : {}) };
}

/**
 * An external link's crossings of the wide area that `facility` (at place `k`
 * of the infranets) carries, and which of its endpoints are elsewhere.
 */
function externalOf(
  rlz: Realization,
  le: Realization["links"][number],
  xl: Experiment["links"][number],
  facility: Facility,
  k: number,
): { external: ExternalSpec[]; remote: number[] } {
  const facilityOf = (node: string) => rlz.nodes.find((n) => n.node === node)?.facility;
  const remote = xl.endpoints.flatMap((ep, i) => (facilityOf(ep.node) === facility.name ? [] : [i]));
  const external: ExternalSpec[] = [];
  if (!le.external) return { external, remote };
  const emulator = le.emulator?.facility;
  for (const s of le.segments) {
    for (let i = 0; i + 1 < s.waypoints.length; i++) {
      const a = s.waypoints[i]!;
      const b = s.waypoints[i + 1]!;
      if (a.facility === b.facility || (a.facility !== facility.name && b.facility !== facility.name)) continue;
      const [here, there] = a.facility === facility.name ? [a, b] : [b, a];
      const vni = here.vni ?? there.vni;
      if (vni === undefined)
        throw new PlanError(
          `realization ${rlz.id}: link '${le.link}' crosses ${here.resource}/${here.port} toward ${there.facility} without a VNI`,
        );
      const gateway = facility.resources.find((r) => r.id === here.resource);
      const port = gateway?.ports.find((p) => p.name === here.port);
      const base = {
        peer: there.facility,
        vni,
        gateway: here.resource,
        ...(gateway?.host ? { host: gateway.host } : {}),
        ...gatewayAddresses(
          k,
          rlz.infranets.findIndex((x) => x.facility === there.facility),
        ),
        rateBps: port?.capacity ?? 0,
      };
      const ends = s.endpoints.map((e) => xl.endpoints.findIndex((x) => x.node === e.node && x.socket === e.socket));
      if (emulator === undefined && xl.endpoints.length > 2) {
        if (!external.some((x) => x.end === "bridge" && x.peer === base.peer && x.vni === vni))
          external.push({ ...base, end: "bridge" });
        continue;
      }
      const atEmulator = emulator === facility.name;
      for (const e of ends) {
        if (e < 0) continue;
        if (atEmulator && remote.includes(e)) external.push({ ...base, end: "emulator", endpoint: e });
        if (!atEmulator && !remote.includes(e)) external.push({ ...base, end: "node", endpoint: e });
      }
    }
  }
  return { external, remote };
}

/**
 * The nodes of the materialization at the other facilities, as DNS entries
 * here: each with the infranet address its own facility gives it and its
 * first experiment address, so every node's name resolves at every facility.
 */
function entriesElsewhere(rlz: Realization, xp: Experiment, here: string): InfranetEntry[] {
  const out: InfranetEntry[] = [];
  for (const [k, net] of rlz.infranets.entries()) {
    if (net.facility === here) continue;
    rlz.nodes
      .filter((n) => n.facility === net.facility)
      .forEach((n, i) => {
        const sockets = [...(xp.nodes.find((x) => x.name === n.node)?.sockets ?? [])].sort((a, b) => a.index - b.index);
        const experiment = sockets.find((s) => s.addrs.length)?.addrs[0]?.split("/")[0];
        out.push({
          name: n.node,
          mac: "",
          address: infranetAddress(i, k),
          facility: net.facility,
          ...(experiment ? { experiment } : {}),
        });
      });
  }
  return out;
}

/**
 * The other facilities' infranets `facility` (at place `k`) routes over its
 * gateway tunnels: each peer it has an interconnect with, on that
 * interconnect's gateway port here (the first, when several join them).
 */
export function infranetPeers(
  rlz: Realization,
  facility: Facility,
  k: number,
  interconnects: readonly Interconnect[],
): InfranetPeer[] {
  const out: InfranetPeer[] = [];
  for (const [p, net] of rlz.infranets.entries()) {
    if (p === k) continue;
    const ic = interconnects.find(
      (x) =>
        (x.a.facility === facility.name && x.b.facility === net.facility) ||
        (x.b.facility === facility.name && x.a.facility === net.facility),
    );
    if (!ic) continue;
    const here = ic.a.facility === facility.name ? ic.a : ic.b;
    const gateway = facility.resources.find((r) => r.id === here.resource);
    const port = gateway?.ports.find((q) => q.name === here.port);
    out.push({
      peer: net.facility,
      subnet: infranetOf(p).subnet,
      gateway: here.resource,
      ...gatewayAddresses(k, p),
      rateBps: port?.capacity ?? 0,
      ...(gateway?.host ? { host: gateway.host } : {}),
    });
  }
  return out;
}

export function fragmentsFor(
  rlz: Realization,
  xp: Experiment,
  facility: Facility,
  interconnects: readonly Interconnect[] = [],
): Fragment[] {
  const mzid = rlz.id;
  const k = rlz.infranets.findIndex((i) => i.facility === facility.name);
  const infranet = rlz.infranets[k];
  if (!infranet) {
    throw new PlanError(`realization ${mzid} has no infranet on facility '${facility.name}'`);
  }
  const resources = new Map(facility.resources.map((r) => [r.id, r]));
  /** Which facility host carries a resource (absent: the facility's own machine). */
  const hostOf = (id: string): { host?: string } => {
    const h = resources.get(id)?.host;
    return h ? { host: h } : {};
  };
  const xpNodes = new Map(xp.nodes.map((n) => [n.name, n]));
  // The hosts the infranet spans: the infrapod's, then its nodes', each once.
  const spans = [
    ...new Set([
      resources.get(infranet.infrapodServer)?.host ?? "",
      ...rlz.nodes.filter((n) => n.facility === facility.name).map((n) => resources.get(n.resource)?.host ?? ""),
    ]),
  ];
  const net: InfranetSpec = { vni: infranet.vni, ...infranetOf(k), ...(spans.length > 1 ? { hosts: spans } : {}) };
  const emulated = rlz.links.some((l) => l.emulator?.facility === facility.name);
  const peers = infranetPeers(rlz, facility, k, interconnects);
  const infrapod = {
    mzid,
    vindex: 0,
    server: infranet.infrapodServer,
    infranet: net,
    ...(emulated ? { emulation: mzid } : {}),
    ...(xp.parameters.nameResolution === "infranet" ? { nameResolution: "infranet" as const } : {}),
    ...hostOf(infranet.infrapodServer),
    ...(peers.length ? { peers } : {}),
  };

  const fragments: Fragment[] = [];
  const entries: InfranetEntry[] = [];
  const nodeSpecs: Fragment[] = [];
  const embedded = rlz.nodes.filter((n) => n.facility === facility.name);
  embedded.forEach((emb, i) => {
    const res = resources.get(emb.resource);
    if (!res) {
      throw new PlanError(
        `realization ${mzid}: node '${emb.node}' is on resource '${emb.resource}', which facility '${facility.name}' does not have`,
      );
    }
    const xn = xpNodes.get(emb.node);
    if (!xn) throw new PlanError(`realization ${mzid}: node '${emb.node}' is not in the experiment`);
    const ifr = res.ports.find((p) => p.role === "infranet") ?? res.ports[0];
    if (!ifr) throw new PlanError(`resource '${res.id}' has no ports; it cannot join the infranet`);
    const address = infranetAddress(i, k);
    const mac = ifr.mac ?? syntheticMac(res.id, ifr.name);
    entries.push({ name: emb.node, mac, address });
    const node: NodeSpec = {
      mzid,
      resource: emb.resource,
      node: emb.node,
      mode: emb.mode,
      ...(emb.kind ? { kind: emb.kind } : {}),
      ...profileOf(emb.mode, xn.constraints),
      ...(xn.image ? { image: xn.image } : {}),
      alloc: { cores: emb.alloc.cores, memory: emb.alloc.memory, disk: emb.alloc.disk },
      infranet: { ...net, address, port: ifr.name, mac },
      interfaces: emb.interfaces.map((ie) => ({
        socket: ie.socket,
        port: ie.port,
        addrs: xn.sockets.find((s) => s.index === ie.socket)?.addrs ?? [],
        virtual: ie.virtual,
        ...(ie.vlan !== undefined ? { vlan: ie.vlan } : {}),
        ...(ie.vni !== undefined ? { vni: ie.vni } : {}),
        ...(ie.model !== undefined ? { model: ie.model } : {}),
        ...(resources.get(emb.resource)?.ports.find((p) => p.name === ie.port)?.mac
          ? { mac: resources.get(emb.resource)?.ports.find((p) => p.name === ie.port)?.mac }
          : {}),
      })),
      routes: xn.routes ?? [],
      ...hostOf(emb.resource),
    };
    nodeSpecs.push({ resource: emb.resource, op: "node.setup", node });
  });
  entries.push(...entriesElsewhere(rlz, xp, facility.name));
  fragments.push({ resource: infranet.infrapodServer, op: "infrapod.setup", infrapod, entries });

  const byNode = new Map(rlz.nodes.map((n) => [n.node, n]));
  const xpLinks = new Map(xp.links.map((l) => [l.name, l]));
  const emulations = new Map<string, EmulationSpec>();
  for (const le of rlz.links) {
    const touches =
      le.segments.some((s) => s.waypoints.some((w) => w.facility === facility.name)) ||
      le.segments.some((s) => s.endpoints.some((e) => byNode.get(e.node)?.facility === facility.name));
    if (!touches) continue;
    const xl = xpLinks.get(le.link);
    if (!xl) throw new PlanError(`realization ${mzid}: link '${le.link}' is not in the experiment`);
    const endpoints: LinkEndpointSpec[] = xl.endpoints.map((ep) => {
      const emb = byNode.get(ep.node);
      const ie = emb?.interfaces.find((i) => i.socket === ep.socket);
      if (!emb || !ie) {
        throw new PlanError(
          `realization ${mzid}: link '${le.link}' endpoint ${ep.node}.${ep.socket} has no embedded interface`,
        );
      }
      return {
        node: ep.node,
        socket: ep.socket,
        resource: emb.resource,
        port: ie.port,
        ...(ie.vlan !== undefined ? { vlan: ie.vlan } : {}),
        ...(ie.vni !== undefined ? { vni: ie.vni } : {}),
        ...hostOf(emb.resource),
      };
    });
    const { external, remote } = externalOf(rlz, le, xl, facility, k);
    // An external link's emulator is at one facility: the others only carry their endpoints to it.
    const emulatorHere = le.emulator && le.emulator.facility === facility.name ? le.emulator : undefined;
    const link: LinkSpec = {
      mzid,
      vindex: 0,
      link: le.link,
      kind: endpoints.length === 2 ? "p2p" : "multipoint",
      endpoints,
      segments: le.segments.map((s) => ({
        endpoints: s.endpoints,
        waypoints: s.waypoints
          .filter((w) => w.facility === facility.name)
          .map((w) => ({
            resource: w.resource,
            port: w.port,
            ...(w.vlan !== undefined ? { vlan: w.vlan } : {}),
            ...(w.vni !== undefined ? { vni: w.vni } : {}),
          })),
      })),
      ...(emulatorHere ? { emulator: emulatorHere.resource } : {}),
      capacity: le.capacity,
      ...(emulatorHere && resources.get(emulatorHere.resource)?.host
        ? { emulatorHost: resources.get(emulatorHere.resource)?.host }
        : {}),
      ...(external.length ? { external } : {}),
      ...(remote.length ? { remote } : {}),
    };
    const first = link.segments.flatMap((s) => s.waypoints)[0];
    fragments.push({
      resource: emulatorHere?.resource ?? external[0]?.gateway ?? first?.resource ?? endpoints[0]!.resource,
      op: "link.create",
      link,
    });
    if (le.emulator && le.emulator.facility === facility.name) {
      const id = `${mzid}/${le.emulator.resource}`;
      // One emulation per emulator: its id is the emulator's (two emulators must not share one id).
      const emu = emulations.get(id) ?? {
        mzid,
        vindex: 0,
        emulation: le.emulator.resource,
        emulator: le.emulator.resource,
        ...hostOf(le.emulator.resource),
        links: [],
      };
      const params = emulationParams(le, xl, xp);
      emu.links.push({
        link: le.link,
        endpoints,
        params: le.external ? lessWideArea(params, wideAreaLatency(le, interconnects)) : params,
      });
      emulations.set(id, emu);
    }
  }
  for (const emu of emulations.values()) {
    fragments.push({ resource: emu.emulator, op: "emulation.setup", emulation: emu });
  }
  fragments.push(...nodeSpecs);
  return fragments;
}

/** A virtual node's profile settings, as the model asked them (bare metal has its whole machine). */
function profileOf(mode: "physical" | "virtual", constraints: readonly Constraint[]): { profile?: NodeProfile } {
  const profile = nodeProfile(constraints);
  return mode === "virtual" && Object.keys(profile).length ? { profile } : {};
}
