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
import type { LinkEndpointSpec, LinkSpec } from "../backend.ts";
import type { Env } from "./env.ts";
import { lanBridge, linkKey, linkPort, namesOf, socketIfname } from "./names.ts";
import { listNetns, missingNetns } from "./processes.ts";
import { LAN_BRIDGE, switchingNamespaces } from "./switching.ts";
import { vethAdd } from "./veth.ts";
import { segmentVni, type Tunnel, tunnelsInto } from "./vtep.ts";

const hostOf = (e: LinkEndpointSpec): string => e.host ?? "";

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

/** The lines adding whichever of these namespaces do not exist yet. */
function netnsLines(names: string[]): string[] {
  return missingNetns(names).map((n) => `netns add ${n}`);
}

/**
 * Wire this host's part of a link spanning hosts (idempotent). Three rounds of
 * batches whatever the link: the host's (namespaces, bridges, veths, tunnels
 * made in place), then each namespace's (ports on bridges, up), then the
 * tunnels' flooding entries: on a busy agent each round waits for the batch
 * before it, so rounds, not lines, are what a link costs.
 */
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
  const host: string[] = [];
  const inNs = new Map<string, string[]>();
  const set = (ns: string, ...lines: string[]) => inNs.set(ns, [...(inNs.get(ns) ?? []), ...lines]);
  const tunnels: Tunnel[] = [];
  // A bridge made in its namespace (the emulator's, the xpnet's) from the host's batch, after the namespaces.
  const bridgeIn = (ns: string, bridge: string) => {
    host.push(`link add name ${bridge} netns ${ns} type bridge ${LAN_BRIDGE}`);
    set(ns, `link set dev ${bridge} up`);
  };
  if (spec.emulator) {
    const emuHost = spec.emulatorHost ?? "";
    const atEmu = emuHost === here;
    if (atEmu) await switchingNamespaces(env, [n.emulator]);
    host.push(...netnsLines(mine.map((e) => n.node(e.node))));
    const bridge = lanBridge(spec.link);
    if (atEmu && bridgeEmulated) bridgeIn(n.emulator, bridge);
    for (const [k, e] of spec.endpoints.entries()) {
      if (remote.has(k)) continue;
      const local = hostOf(e) === here;
      const port = linkPort(spec.link, k);
      if (local && atEmu) {
        host.push(
          vethAdd(`name ${socketIfname(e.socket)} netns ${n.node(e.node)}`, `name ${port} netns ${n.emulator}`),
        );
        set(n.emulator, bridgeEmulated ? `link set dev ${port} master ${bridge} up` : `link set dev ${port} up`);
      } else if (local) {
        tunnels.push({
          vni: vniOf(spec, e),
          netns: n.node(e.node),
          inside: socketIfname(e.socket),
          remotes: [under(emuHost)],
        });
      } else if (atEmu) {
        tunnels.push({
          vni: vniOf(spec, e),
          netns: n.emulator,
          inside: port,
          remotes: [under(hostOf(e))],
          ...(bridgeEmulated ? { master: bridge } : {}),
        });
      }
    }
  } else {
    const others = [...new Set(spec.endpoints.map(hostOf))].filter((h) => h !== here);
    const vni = vniOf(spec, spec.endpoints[0] as LinkEndpointSpec);
    if (spec.endpoints.length === 2) {
      host.push(...netnsLines(mine.map((e) => n.node(e.node))));
      for (const e of mine)
        tunnels.push({ vni, netns: n.node(e.node), inside: socketIfname(e.socket), remotes: others.map(under) });
    } else {
      const bridge = lanBridge(spec.link);
      await switchingNamespaces(env, [n.xpnet]);
      host.push(...netnsLines(mine.map((e) => n.node(e.node))));
      bridgeIn(n.xpnet, bridge);
      for (const [k, e] of spec.endpoints.entries()) {
        if (hostOf(e) !== here) continue;
        const port = linkPort(spec.link, k);
        host.push(vethAdd(`name ${socketIfname(e.socket)} netns ${n.node(e.node)}`, `name ${port} netns ${n.xpnet}`));
        set(n.xpnet, `link set dev ${port} master ${bridge} up`);
      }
      tunnels.push({
        vni,
        netns: n.xpnet,
        inside: `${linkKey(spec.link)}t`,
        remotes: others.map(under),
        master: bridge,
      });
    }
  }
  // The bridges come up (and take their ports) with the tunnels' round, in the same namespaces' batches.
  await tunnelsInto(env, tunnels, host, [...inNs]);
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
