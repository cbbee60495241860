/**
 * An independent checker for realizations. It shares nothing with the engine
 * but the XIR types and constraint semantics: it rebuilds its own view of the
 * resource internet from the facility models and verifies, for a set of
 * realizations held at the same time:
 *
 * - every node is embedded once, on a resource that allows the mode, and every
 *   node and socket constraint holds for what it got;
 * - every link is embedded, its segments have the right shape (one endpoint to
 *   endpoint path; a hub; or cut at an emulator when the link needs emulation),
 *   every path is contiguous along real cables and interconnects, transit only
 *   through switches and gateways, and the realized link meets its constraints,
 *   in each direction too: a direction an endpoint's socket sets apart (`rx.*`)
 *   must meet those constraints in place of the link's on the same property,
 *   with the emulator's values toward that endpoint;
 * - nothing is over-committed: bare metal used once, hypervisor slices within
 *   their base capacity, cable and interconnect capacity within line rate;
 * - tags: a VLAN id belongs to one virtual network per VLAN domain, a VNI to one
 *   per facility, every tag inside its pool;
 * - each facility with nodes has an infranet and an infrapod server.
 */
import {
  type Constraint,
  DEFAULT_VIRT_KINDS,
  DIRECTIONAL_PROPS,
  type Experiment,
  emulationToward,
  KIND_PROPS,
  kindProperty,
  matchableExperiment,
  needsEmulation,
  type Port,
  type Realization,
  type Resource,
  type ResourceInternet,
  type Scalar,
  satisfies,
  type TagRange,
  towardConstraints,
} from "@merge/xir";
import { vmRoom } from "./usage.ts";

export interface Violation {
  realization: string;
  message: string;
}

interface PortInfo {
  facility: string;
  resource: Resource;
  port: Port;
}

interface Wire {
  other: string;
  capacity: number;
  latency: number;
  interconnect: boolean;
  id: string;
}

const key = (f: string, r: string, p?: string) => (p === undefined ? `${f}\u0000${r}` : `${f}\u0000${r}\u0000${p}`);

interface View {
  resources: Map<string, Resource>;
  ports: Map<string, PortInfo>;
  wires: Map<string, Wire>;
  facilities: Map<string, ResourceInternet["facilities"][number]>;
}

/** The checker's own view of a resource internet, built once per internet object. */
const views = new WeakMap<ResourceInternet, View>();

function viewOf(internet: ResourceInternet): View {
  const cached = views.get(internet);
  if (cached) return cached;
  const resources = new Map<string, Resource>();
  const ports = new Map<string, PortInfo>();
  const wires = new Map<string, Wire>();
  const facilities = new Map(internet.facilities.map((f) => [f.name, f]));
  for (const f of internet.facilities) {
    for (const r of f.resources) {
      resources.set(key(f.name, r.id), r);
      for (const p of r.ports) ports.set(key(f.name, r.id, p.name), { facility: f.name, resource: r, port: p });
    }
    for (const c of f.cables) {
      const a = key(f.name, c.ends[0].resource, c.ends[0].port);
      const b = key(f.name, c.ends[1].resource, c.ends[1].port);
      const cap = Math.min(ports.get(a)?.port.capacity ?? 0, ports.get(b)?.port.capacity ?? 0);
      wires.set(a, { other: b, capacity: cap, latency: 0, interconnect: false, id: `${f.name}/${c.id}` });
      wires.set(b, { other: a, capacity: cap, latency: 0, interconnect: false, id: `${f.name}/${c.id}` });
    }
  }
  for (const ic of internet.interconnects) {
    const a = key(ic.a.facility, ic.a.resource, ic.a.port);
    const b = key(ic.b.facility, ic.b.resource, ic.b.port);
    wires.set(a, {
      other: b,
      capacity: ic.capacity,
      latency: ic.latency,
      interconnect: true,
      id: `interconnect ${ic.id}`,
    });
    wires.set(b, {
      other: a,
      capacity: ic.capacity,
      latency: ic.latency,
      interconnect: true,
      id: `interconnect ${ic.id}`,
    });
  }

  const view = { resources, ports, wires, facilities };
  views.set(internet, view);
  return view;
}

export function checkRealizations(
  internet: ResourceInternet,
  held: readonly { experiment: Experiment; realization: Realization }[],
): Violation[] {
  const out: Violation[] = [];
  const { resources, ports, wires, facilities } = viewOf(internet);
  const physicalUse = new Map<string, string>();
  const vmUse = new Map<string, { cores: number; memory: number; disk: number; owners: string[] }>();
  const wireUse = new Map<string, number>();
  const vlanOwner = new Map<string, string>();
  const vniOwner = new Map<string, string>();

  const claimTag = (owners: Map<string, string>, k: string, vn: string, what: string, rid: string) => {
    const prev = owners.get(k);
    if (prev !== undefined && prev !== vn)
      out.push({ realization: rid, message: `${what} is used by ${prev} and by ${vn}` });
    else owners.set(k, vn);
  };
  const inPool = (ranges: readonly TagRange[] | undefined, t: number) =>
    (ranges ?? []).some((r) => t >= r.first && t <= r.last);

  for (const { experiment: asked, realization: rz } of held) {
    const x = matchableExperiment(asked);
    const rid = rz.id;
    const bad = (message: string) => out.push({ realization: rid, message });
    const embedded = new Map(rz.nodes.map((n) => [n.node, n]));
    if (embedded.size !== rz.nodes.length) bad("a node is embedded twice");
    const ifacePort = new Map<string, { key: string; capacity: number; virtual: boolean; vm: boolean }>();
    /** `node\u0000socket` → that socket's constraints on its link's direction toward it. */
    const towardOf = new Map<string, Constraint[]>();
    for (const n of x.nodes) {
      const e = embedded.get(n.name);
      if (!e) {
        bad(`node ${n.name} is not embedded`);
        continue;
      }
      const res = resources.get(key(e.facility, e.resource));
      if (res?.kind !== "node") {
        bad(`node ${n.name}: ${e.facility}/${e.resource} is not a testbed node`);
        continue;
      }
      if (!res.alloc.includes(e.mode)) bad(`node ${n.name}: ${e.resource} does not allow ${e.mode} allocation`);
      if (e.mode === "virtual" && !(res.virt?.kinds ?? DEFAULT_VIRT_KINDS).includes(e.kind ?? "container"))
        bad(`node ${n.name}: ${e.resource} does not make ${e.kind ?? "container"}s`);
      const rk = key(e.facility, e.resource);
      const lookup = (prop: string): Scalar | undefined => {
        if (prop === "host") return res.id;
        if (prop === "facility") return e.facility;
        if (KIND_PROPS.has(prop)) return kindProperty(e.mode === "physical" ? "metal" : (e.kind ?? "container"), prop);
        if (e.mode === "virtual") {
          if (prop === "proc.cores") return e.alloc.cores;
          if (prop === "memory.capacity") return e.alloc.memory;
          // The extra disk beyond the root file system, as the model asks it.
          if (prop === "disk.capacity") return e.alloc.disk - (e.alloc.root ?? 0);
        }
        return res.props[prop];
      };
      for (const c of n.constraints)
        if (!satisfies(lookup(c.prop), c)) bad(`node ${n.name}: ${show(c)} not met by ${e.resource}`);
      if (e.mode === "physical") {
        const prev = physicalUse.get(rk);
        if (prev) bad(`node ${n.name}: ${e.resource} is already held by ${prev}`);
        physicalUse.set(rk, `${rid}:${n.name}`);
      } else {
        const u = vmUse.get(rk) ?? { cores: 0, memory: 0, disk: 0, owners: [] };
        u.cores += e.alloc.cores;
        u.memory += e.alloc.memory;
        u.disk += e.alloc.disk;
        u.owners.push(`${rid}:${n.name}`);
        vmUse.set(rk, u);
      }
      const perPort = new Map<string, number>();
      for (const s of n.sockets) {
        const ifs = e.interfaces.filter((i) => i.socket === s.index);
        if (ifs.length !== 1) {
          bad(`node ${n.name}: socket ${s.index} has ${ifs.length} interfaces`);
          continue;
        }
        const i = ifs[0]!;
        const pk = key(e.facility, e.resource, i.port);
        const pi = ports.get(pk);
        if (pi?.port.role !== "xpnet") {
          bad(`node ${n.name}: socket ${s.index} is on ${i.port}, not an experiment port of ${e.resource}`);
          continue;
        }
        const plook = (prop: string): Scalar | undefined => {
          if (!prop.startsWith("port.")) return undefined;
          const field = prop.slice(5);
          if (e.mode === "virtual" && field === "model") return i.model;
          if (e.mode === "virtual" && field === "queues") return i.queues;
          const v = (pi.port as unknown as Record<string, unknown>)[field];
          return typeof v === "number" || typeof v === "string" || typeof v === "boolean" ? v : undefined;
        };
        for (const c of s.constraints) {
          if (c.prop.startsWith("rx.")) continue; // the link's direction toward this socket: checked at the link
          if (!satisfies(plook(c.prop), c))
            bad(`node ${n.name} socket ${s.index}: ${show(c)} not met by port ${i.port}`);
        }
        towardOf.set(`${n.name}\u0000${s.index}`, towardConstraints(s));
        perPort.set(i.port, (perPort.get(i.port) ?? 0) + 1);
        if (e.mode === "virtual" && !i.virtual) bad(`node ${n.name}: a virtual machine's interface must be virtual`);
        ifacePort.set(`${n.name}\u0000${s.index}`, {
          key: pk,
          capacity: pi.port.capacity,
          virtual: i.virtual,
          vm: e.mode === "virtual",
        });
      }
      for (const i of e.interfaces) {
        if ((perPort.get(i.port) ?? 0) > 1 && !i.virtual)
          bad(`node ${n.name}: port ${i.port} is shared but socket ${i.socket} is not virtual`);
      }
    }
    for (const e of rz.nodes)
      if (!x.nodes.some((n) => n.name === e.node)) bad(`node ${e.node} is not in the experiment`);

    const linksByName = new Map(rz.links.map((l) => [l.link, l]));
    for (const l of x.links) {
      const le = linksByName.get(l.name);
      if (!le) {
        bad(`link ${l.name} is not embedded`);
        continue;
      }
      const say = (m: string) => bad(`link ${l.name}: ${m}`);
      const ends = l.endpoints.map((ep) => ({ ep, iface: ifacePort.get(`${ep.node}\u0000${ep.socket}`) }));
      if (ends.some((e) => !e.iface)) continue;
      const lineRate = Math.min(...ends.map((e) => e.iface!.capacity));
      const toward = l.endpoints.map((ep) => ({
        node: ep.node,
        constraints: towardOf.get(`${ep.node}\u0000${ep.socket}`) ?? [],
      }));
      const emulated = needsEmulation(
        l,
        lineRate,
        toward.map((t) => t.constraints),
      );
      if (emulated !== (le.emulator !== undefined)) {
        say(emulated ? "needs emulation but has no emulator" : "has an emulator it does not need");
        continue;
      }
      // Shape.
      const startOf = (node: string, socket: number) => ifacePort.get(`${node}\u0000${socket}`)!.key;
      const covered = new Set<string>();
      for (const seg of le.segments) {
        if (!seg.waypoints.length) say("a segment has no waypoints");
        for (const ep of seg.endpoints) covered.add(`${ep.node}\u0000${ep.socket}`);
      }
      if (
        covered.size !== l.endpoints.length ||
        l.endpoints.some((ep) => !covered.has(`${ep.node}\u0000${ep.socket}`))
      ) {
        say("its segments do not cover exactly its endpoints");
        continue;
      }
      const wk = (w: { facility: string; resource: string; port: string }) => key(w.facility, w.resource, w.port);
      if (emulated) {
        const emu = le.emulator!;
        const er = resources.get(key(emu.facility, emu.resource));
        if (er?.kind !== "emulator") say(`${emu.resource} is not an emulator`);
        if (le.segments.length !== l.endpoints.length) say("an emulated link needs one segment per endpoint");
        for (const seg of le.segments) {
          const last = seg.waypoints[seg.waypoints.length - 1];
          if (seg.endpoints.length !== 1)
            say("an emulated segment joins more than one endpoint: traffic could bypass the emulator");
          if (!last || last.facility !== emu.facility || last.resource !== emu.resource)
            say("a segment does not end at the emulator");
        }
      } else if (l.endpoints.length === 2) {
        const seg = le.segments[0]!;
        if (le.segments.length !== 1 || seg.endpoints.length !== 2)
          say("a point-to-point link needs one segment joining both endpoints");
        const [a, b] = seg.endpoints;
        const last = seg.waypoints[seg.waypoints.length - 1];
        if (a && b && last && wk(last) !== startOf(b.node, b.socket))
          say(`its path does not end at ${b.node}'s interface`);
      } else {
        const hubs = new Set(
          le.segments.map((s) => {
            const w = s.waypoints[s.waypoints.length - 1];
            return w ? key(w.facility, w.resource) : "";
          }),
        );
        if (hubs.size !== 1) say("a multipoint link's segments do not meet at one switch");
        const hub = resources.get([...hubs][0] ?? "");
        if (hub?.kind !== "switch") say("a multipoint link's hub is not a switch");
        if (le.segments.some((s) => s.endpoints.length !== 1)) say("a multipoint segment must start at one endpoint");
      }
      // Contiguity, realized properties, capacity.
      let rate = lineRate;
      let external = false;
      const segLatency: number[] = [];
      const vnWires: Set<string>[] = emulated ? le.segments.map(() => new Set()) : [new Set()];
      le.segments.forEach((seg, si) => {
        const ep = seg.endpoints[0]!;
        if (seg.waypoints[0] && wk(seg.waypoints[0]) !== startOf(ep.node, ep.socket))
          say(`a segment does not start at ${ep.node}'s interface`);
        let lat = 0;
        for (let i = 0; i + 1 < seg.waypoints.length; i++) {
          const a = seg.waypoints[i]!;
          const b = seg.waypoints[i + 1]!;
          const ak = wk(a);
          const bk = wk(b);
          if (!ports.has(ak) || !ports.has(bk)) {
            say(`waypoint ${a.resource}:${a.port} or ${b.resource}:${b.port} does not exist`);
            continue;
          }
          if (a.facility === b.facility && a.resource === b.resource) {
            const r = resources.get(key(a.facility, a.resource))!;
            if (r.kind !== "switch" && r.kind !== "gateway")
              say(`its path transits ${a.resource}, which is not a switch`);
            if (a.port === b.port) say(`its path enters and leaves ${a.resource} by one port`);
            continue;
          }
          const w = wires.get(ak);
          if (!w || w.other !== bk) {
            say(`no cable joins ${a.resource}:${a.port} and ${b.resource}:${b.port}`);
            continue;
          }
          const role = (k: string) => ports.get(k)!.port.role;
          if (!["xpnet", "gateway"].includes(role(ak)) || !["xpnet", "gateway"].includes(role(bk)))
            say(`${w.id} is not on the experiment network`);
          rate = Math.min(rate, w.capacity);
          if (w.interconnect) {
            external = true;
            lat += w.latency;
          }
          vnWires[emulated ? si : 0]!.add(w.id);
        }
        segLatency.push(lat);
      });
      for (const set of vnWires) for (const id of set) wireUse.set(id, (wireUse.get(id) ?? 0) + le.capacity);
      if (external !== le.external)
        say(`is marked external=${le.external} but ${external ? "crosses" : "does not cross"} an interconnect`);
      segLatency.sort((p, q) => q - p);
      const base = segLatency.length === 1 ? segLatency[0]! : segLatency[0]! + segLatency[1]!;
      const em = le.emulation ?? {};
      if (!emulated && le.emulation !== undefined) say("has emulation values but is not emulated");
      const realizedWith = (v: { capacity?: number; latency?: number; loss?: number }): Record<string, Scalar> => {
        if (v.latency !== undefined && v.latency < base) say("emulated latency is below the path's own latency");
        if (v.capacity !== undefined && v.capacity > rate) say("emulated capacity is above the path's line rate");
        if (v.loss !== undefined && !(v.loss >= 0 && v.loss <= 1)) say("emulated loss is not a fraction");
        return {
          capacity: v.capacity ?? rate,
          latency: v.latency ?? base,
          loss: v.loss ?? 0,
          external,
          layer: 2,
          kind: "ethernet",
        };
      };
      const { toward: _, ...own } = em;
      const realized = realizedWith(own);
      for (const c of l.constraints)
        if (!satisfies(realized[c.prop], c)) say(`${show(c)} not met (realized: ${String(realized[c.prop])})`);
      // Each direction: toward an endpoint, its socket's rx.* constraints replace the link's on the same property.
      const named = new Set<string>();
      for (const t of em.toward ?? []) {
        if (!l.endpoints.some((ep) => ep.node === t.node)) say(`emulation toward ${t.node}: not an endpoint's node`);
        if (named.has(t.node)) say(`emulation toward ${t.node} is given twice`);
        named.add(t.node);
      }
      for (const t of toward) {
        if (!t.constraints.length && !named.has(t.node)) continue; // the link's values, checked above
        const dirValues = realizedWith(emulationToward(em, t.node));
        const replaced = new Set(t.constraints.map((c) => c.prop));
        for (const c of l.constraints) {
          if (replaced.has(c.prop) || !(DIRECTIONAL_PROPS as readonly string[]).includes(c.prop)) continue;
          if (!satisfies(dirValues[c.prop], c))
            say(`toward ${t.node}: ${show(c)} not met (realized: ${String(dirValues[c.prop])})`);
        }
        for (const c of t.constraints) {
          if (!satisfies(dirValues[c.prop], c))
            say(`toward ${t.node}: rx.${show(c)} not met (realized: ${String(dirValues[c.prop])})`);
        }
      }
      const demand = Math.max(demandOf(l.constraints), ...toward.map((t) => demandOf(t.constraints)));
      if (le.capacity < demand) say(`reserves ${le.capacity} bit/s, less than its capacity constraints ask`);
      // Tags.
      le.segments.forEach((seg, si) => {
        const vn = emulated ? `${rid}/${l.name}/${si}` : `${rid}/${l.name}`;
        for (const w of seg.waypoints) {
          const r = resources.get(key(w.facility, w.resource));
          if (!r) continue;
          if (w.vlan !== undefined) {
            let sw: Resource | undefined = r;
            if (r.kind !== "switch") {
              const wire = wires.get(wk(w));
              const other = wire ? ports.get(wire.other) : undefined;
              sw = other?.resource;
            }
            const domain = sw?.switch?.vlanDomain;
            if (domain === undefined) say(`VLAN ${w.vlan} on ${w.resource}:${w.port} is in no VLAN domain`);
            else {
              claimTag(
                vlanOwner,
                `${w.facility}\u0000${domain}\u0000${w.vlan}`,
                vn,
                `VLAN ${w.vlan} in ${w.facility}/${domain}`,
                rid,
              );
              if (!inPool(facilities.get(w.facility)?.tags.vlan[domain], w.vlan))
                say(`VLAN ${w.vlan} is outside the pool of ${w.facility}/${domain}`);
            }
          }
          if (w.vni !== undefined) {
            claimTag(vniOwner, `${w.facility}\u0000${w.vni}`, vn, `VNI ${w.vni} in ${w.facility}`, rid);
            if (!inPool(facilities.get(w.facility)?.tags.vni, w.vni))
              say(`VNI ${w.vni} is outside the pool of ${w.facility}`);
          }
        }
      });
    }
    for (const le of rz.links)
      if (!x.links.some((l) => l.name === le.link)) bad(`link ${le.link} is not in the experiment`);

    const touched = new Set(rz.nodes.map((n) => n.facility));
    for (const f of touched) {
      const inf = rz.infranets.filter((i) => i.facility === f);
      if (inf.length !== 1) {
        bad(`facility ${f} has ${inf.length} infranets`);
        continue;
      }
      const i = inf[0]!;
      if (resources.get(key(f, i.infrapodServer))?.kind !== "infrapod-server")
        bad(`${i.infrapodServer} is not an infrapod server`);
      claimTag(vniOwner, `${f}\u0000${i.vni}`, `${rid}/infranet`, `VNI ${i.vni} in ${f}`, rid);
      if (!inPool(facilities.get(f)?.tags.vni, i.vni)) bad(`infranet VNI ${i.vni} is outside the pool of ${f}`);
    }
  }

  for (const [rk, u] of vmUse) {
    const r = resources.get(rk)!;
    if (physicalUse.has(rk))
      out.push({ realization: u.owners[0]!.split(":")[0]!, message: `${r.id} hosts VMs and a bare-metal node` });
    if (r.virt?.sharing === "one-per-experiment") {
      const byRealization = new Map<string, string[]>();
      for (const o of u.owners) {
        const [rid, node] = o.split(":") as [string, string];
        byRealization.set(rid, [...(byRealization.get(rid) ?? []), node]);
      }
      for (const [rid, names] of byRealization)
        if (names.length > 1)
          out.push({ realization: rid, message: `${r.id} takes one node per experiment, not ${names.join(", ")}` });
    }
    const room = vmRoom(r);
    for (const [k, prop, used] of [
      [0, "proc.cores", u.cores],
      [1, "memory.capacity", u.memory],
      [2, "disk.capacity", u.disk],
    ] as const) {
      const base = room[k];
      if (used > base) {
        out.push({
          realization: u.owners[0]!.split(":")[0]!,
          message: `${r.id}: VMs take ${used} ${prop} of ${String(base)}`,
        });
      }
    }
  }
  const caps = new Map<string, number>();
  for (const w of wires.values()) caps.set(w.id, w.capacity);
  for (const [id, used] of wireUse) {
    if (used > caps.get(id)!)
      out.push({ realization: "*", message: `${id}: ${used} bit/s reserved on ${caps.get(id)} bit/s` });
  }
  return out;
}

function show(c: Constraint): string {
  return `${c.prop} ${c.op} ${JSON.stringify(c.value)}`;
}

/**
 * The least a set of capacity constraints (a link's, or a direction's) lets it
 * carry: what must be reserved, since every virtual network of a link carries
 * every direction.
 */
function demandOf(constraints: readonly Constraint[]): number {
  let least = 0;
  for (const c of constraints) {
    if (c.prop !== "capacity" || typeof c.value !== "number") continue;
    if (c.op === ">=" || c.op === "==") least = Math.max(least, c.value);
    if (c.op === ">") least = Math.max(least, c.value);
  }
  return least;
}
