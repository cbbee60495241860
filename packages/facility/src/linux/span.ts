/**
 * Experiment links spanning hosts. Each host wires only its part: its own
 * endpoints, and its ends of VXLAN tunnels (vtep.ts) to the link's other
 * hosts, on the VNI of the segment's realization tag:
 *  - point-to-point, not emulated: the node's interface is the tunnel itself
 *    (made in the host's namespace, moved into the node's), straight to the
 *    other endpoint's host;
 *  - multipoint, not emulated: a bridge in the host's xpnet namespace joins
 *    its endpoints' veths and one tunnel flooding to every other host;
 *  - emulated: each endpoint's segment reaches the emulator's host: an
 *    endpoint there is a veth as on one host; one elsewhere is a tunnel from
 *    its node's interface to a port of the same name (`linkPort`) in the
 *    emulator namespace, so the emulation sees the ports it always sees.
 */
import { createHash } from "node:crypto";
import type { LinkEndpointSpec, LinkSpec } from "../backend.ts";
import type { Env } from "./env.ts";
import { lanBridge, linkKey, linkPort, namesOf, socketIfname } from "./names.ts";
import { listNetns } from "./processes.ts";
import { segmentVni, tunnelInto } from "./vtep.ts";

const hostOf = (e: LinkEndpointSpec): string => e.host ?? "";

/** Host-namespace name of a tunnel before it moves (unique on the host: prefix + 7). */
function tunnelName(prefix: string, link: string, part: string): string {
  return `${prefix}t${createHash("sha256").update(`${link}/${part}`).digest("hex").slice(0, 6)}`;
}

/**
 * The VNI of an endpoint's segment: its interface's tag (trunk and VM ports
 * carry one), else the tag its segment has on the switch ports it crosses (a
 * bare-metal node's access port carries none; the leaf's port does). Every
 * host of the link reads the same spec, so each picks the same VNI.
 */
function vniOf(spec: LinkSpec, e: LinkEndpointSpec): number {
  const seg = spec.segments.find((s) => s.endpoints.some((x) => x.node === e.node && x.socket === e.socket));
  const tagged = seg?.waypoints.find((w) => w.vni !== undefined) ?? seg?.waypoints.find((w) => w.vlan !== undefined);
  const v = segmentVni(e) ?? (tagged && segmentVni(tagged));
  if (v === undefined)
    throw new Error(
      `link ${spec.link}: endpoint ${e.node}.${e.socket} has no VLAN or VXLAN tag in the realization, so it cannot cross hosts`,
    );
  return v;
}

async function ensureNetns(env: Env, names: string[]): Promise<void> {
  const have = new Set(listNetns());
  const add = [...new Set(names)].filter((n) => !have.has(n)).map((n) => `netns add ${n}`);
  await env.ip.submit(add);
}

/** Wire this host's part of a link spanning hosts (idempotent). */
export async function spanCreate(env: Env, prefix: string, spec: LinkSpec, bridgeEmulated: boolean): Promise<void> {
  const span = spec.span;
  if (!span) throw new Error(`link ${spec.link}: not a link across hosts`);
  const here = span.local;
  const n = namesOf(prefix);
  const under = (h: string) => {
    const u = span.underlays[h];
    if (!u) throw new Error(`link ${spec.link}: no underlay address for host '${h || "(the facility's own)"}'`);
    return u;
  };
  // Endpoints at other facilities (an external link's) are wired there: their crossings reach this one (external.ts).
  const remote = new Set(spec.remote ?? []);
  const mine = spec.endpoints.filter((e, k) => hostOf(e) === here && !remote.has(k));
  if (spec.emulator) {
    const emuHost = spec.emulatorHost ?? "";
    const atEmu = emuHost === here;
    await ensureNetns(env, [...mine.map((e) => n.node(e.node)), ...(atEmu ? [n.emulator] : [])]);
    const bridge = lanBridge(spec.link);
    if (atEmu && bridgeEmulated)
      await env.ipIn(n.emulator).submit([`link add name ${bridge} type bridge`, `link set dev ${bridge} up`]);
    const host: string[] = [];
    const emu: string[] = [];
    for (const [k, e] of spec.endpoints.entries()) {
      if (remote.has(k)) continue;
      const local = hostOf(e) === here;
      const port = linkPort(spec.link, k);
      if (local && atEmu) {
        host.push(
          `link add name ${socketIfname(e.socket)} netns ${n.node(e.node)} type veth peer name ${port} netns ${n.emulator}`,
        );
        emu.push(bridgeEmulated ? `link set dev ${port} master ${bridge} up` : `link set dev ${port} up`);
      } else if (local) {
        await tunnelInto(env, {
          name: tunnelName(prefix, spec.link, String(k)),
          vni: vniOf(spec, e),
          netns: n.node(e.node),
          inside: socketIfname(e.socket),
          remotes: [under(emuHost)],
        });
      } else if (atEmu) {
        await tunnelInto(env, {
          name: tunnelName(prefix, spec.link, String(k)),
          vni: vniOf(spec, e),
          netns: n.emulator,
          inside: port,
          remotes: [under(hostOf(e))],
          ...(bridgeEmulated ? { master: bridge } : {}),
        });
      }
    }
    await env.ip.submit(host);
    await env.ipIn(n.emulator).submit(emu);
    return;
  }
  const others = [...new Set(spec.endpoints.map(hostOf))].filter((h) => h !== here);
  const vni = vniOf(spec, spec.endpoints[0] as LinkEndpointSpec);
  if (spec.endpoints.length === 2) {
    for (const e of mine) {
      await ensureNetns(env, [n.node(e.node)]);
      await tunnelInto(env, {
        name: tunnelName(prefix, spec.link, "p2p"),
        vni,
        netns: n.node(e.node),
        inside: socketIfname(e.socket),
        remotes: others.map(under),
      });
    }
    return;
  }
  const bridge = lanBridge(spec.link);
  await ensureNetns(env, [n.xpnet, ...mine.map((e) => n.node(e.node))]);
  await env.ipIn(n.xpnet).submit([`link add name ${bridge} type bridge`, `link set dev ${bridge} up`]);
  const host: string[] = [];
  const xp: string[] = [];
  for (const [k, e] of spec.endpoints.entries()) {
    if (hostOf(e) !== here) continue;
    const port = linkPort(spec.link, k);
    host.push(
      `link add name ${socketIfname(e.socket)} netns ${n.node(e.node)} type veth peer name ${port} netns ${n.xpnet}`,
    );
    xp.push(`link set dev ${port} master ${bridge} up`);
  }
  await env.ip.submit(host);
  await env.ipIn(n.xpnet).submit(xp);
  await tunnelInto(env, {
    name: tunnelName(prefix, spec.link, "lan"),
    vni,
    netns: n.xpnet,
    inside: `${linkKey(spec.link)}t`,
    remotes: others.map(under),
    master: bridge,
  });
}

/** Remove this host's part of a link spanning hosts (idempotent). */
export async function spanDestroy(env: Env, prefix: string, spec: LinkSpec): Promise<void> {
  const here = spec.span?.local ?? "";
  const n = namesOf(prefix);
  const have = new Set(listNetns());
  const byNs = new Map<string, string[]>();
  const add = (ns: string, line: string) => {
    if (!have.has(ns)) return;
    byNs.set(ns, [...(byNs.get(ns) ?? []), line]);
  };
  for (const [k, e] of spec.endpoints.entries()) {
    if (hostOf(e) === here) add(n.node(e.node), `link del ${socketIfname(e.socket)}`);
    add(n.emulator, `link del ${linkPort(spec.link, k)}`);
  }
  add(n.emulator, `link del ${lanBridge(spec.link)}`);
  add(n.xpnet, `link del ${lanBridge(spec.link)}`);
  add(n.xpnet, `link del ${linkKey(spec.link)}t`);
  await Promise.all([...byNs].map(([ns, lines]) => env.ipIn(ns).submit(lines, { absentOk: true })));
}
