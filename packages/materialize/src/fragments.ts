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
  InfranetEntry,
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

export function fragmentsFor(rlz: Realization, xp: Experiment, facility: Facility): Fragment[] {
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
  const infrapod = {
    mzid,
    vindex: 0,
    server: infranet.infrapodServer,
    infranet: net,
    ...(emulated ? { emulation: mzid } : {}),
    ...(xp.parameters.nameResolution === "infranet" ? { nameResolution: "infranet" as const } : {}),
    ...hostOf(infranet.infrapodServer),
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
      ...(le.emulator ? { emulator: le.emulator.resource } : {}),
      capacity: le.capacity,
      ...(le.emulator && resources.get(le.emulator.resource)?.host
        ? { emulatorHost: resources.get(le.emulator.resource)?.host }
        : {}),
    };
    const first = link.segments.flatMap((s) => s.waypoints)[0];
    fragments.push({
      resource: le.emulator?.resource ?? first?.resource ?? endpoints[0]!.resource,
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
      emu.links.push({ link: le.link, endpoints, params: emulationParams(le, xl, xp) });
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
