/**
 * External links: an experiment link's part at this facility when it crosses
 * to another facility (the plan's `LinkSpec.external`). Each crossing is a
 * VXLAN segment (the interconnect's VNI) over the materialization's gateway
 * tunnel toward the peer facility (gateway.ts: one WireGuard tunnel per peer
 * per materialization, in the gateway namespace `<prefix>-g`, its socket in
 * the facility's site). What joins the segment here is as the plan says:
 *  - `node`: the endpoint's node interface is the tunnel itself;
 *  - `emulator`: the emulator's port for an endpoint at the peer is the
 *    tunnel, so the emulation sees the ports it always sees;
 *  - `bridge`: a LAN's bridge in the xpnet namespace, with this facility's
 *    endpoints' veths.
 * Endpoints at other facilities are never wired here (`LinkSpec.remote`).
 *
 * A facility of several hosts (`LinkSpec.span`): the tunnel lives on the
 * gateway resource's host (`ExternalSpec.host`, the agent given the site);
 * what joins a segment on another host (a node's interface, the emulator's
 * port) reaches it over the facility's own VXLAN fabric (vtep.ts), on the
 * crossing's VNI (this facility's tag of the gateway port): on the gateway's
 * host a bridge in the gateway namespace joins the wide-area segment and the
 * fabric's (a "hop"). A LAN's bridge is one per host, as for links across
 * hosts (span.ts), the gateway's host being one of them.
 *
 * Keys: each gateway end's private key is made here, in the materialization's
 * directory (swept with it), and only its `GatewayEnd` (public key, endpoint,
 * inner address) is reported, in the materialization's status; the portal
 * hands it to the peer (`gatewayPeersSet`).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { ExternalSpec, GatewayEndSpec, InfranetPeer, LinkSpec } from "@merge/materialize";
import { check, run } from "./command.ts";
import { type Env, ensureMzDir, mzDir } from "./env.ts";
import { type GatewayEnd, gatewayPeer, gatewayUp } from "./gateway.ts";
import { lanBridge, linkKey, linkPort, namesOf, socketIfname } from "./names.ts";
import { listNetns, missingNetns } from "./processes.ts";
import { spanCreate } from "./span.ts";
import { LAN_BRIDGE, switchingNamespaces } from "./switching.ts";
import { vethAdd } from "./veth.ts";
import { tunnelInto, VXLAN_PORT } from "./vtep.ts";
import { wgAllowedIps, wgPeer } from "./wireguard.ts";

/** The gateway namespace of a materialization. */
export const gatewayNetns = (prefix: string): string => `${prefix}-g`;

/** The tunnel toward `peer` (15 characters, unique on the host: wireguard-go's socket is named by it). */
export const gatewayIfname = (prefix: string, peer: string): string =>
  `${prefix}w${createHash("sha256").update(peer).digest("hex").slice(0, 6)}`;

const pending = new Map<string, Promise<GatewayEndSpec>>();

/**
 * This facility's end of the tunnel toward `x.peer` (idempotent; links of one
 * materialization made side by side share one bring-up).
 */
export function gatewayEnsure(
  env: Env,
  prefix: string,
  x: Pick<ExternalSpec, "peer" | "address" | "rateBps">,
): Promise<GatewayEndSpec> {
  const site = env.site;
  if (!site)
    return Promise.reject(
      new Error(
        `external link toward ${x.peer}: this facility has no site (start it with --site <netns> --site-address <address>)`,
      ),
    );
  const name = gatewayIfname(prefix, x.peer);
  const have = pending.get(name);
  if (have) return have;
  const p = (async (): Promise<GatewayEndSpec> => {
    await ensureMzDir(env, prefix);
    const end: GatewayEnd = await gatewayUp({
      site: site.netns,
      siteAddress: site.address,
      netns: gatewayNetns(prefix),
      name,
      keyDir: join(mzDir(env, prefix), "gateway"),
      address: x.address,
      ...(x.rateBps > 0 ? { rateBps: x.rateBps } : {}),
    });
    return { peer: x.peer, ...end };
  })();
  pending.set(name, p);
  return p.finally(() => pending.delete(name));
}

/**
 * Let the peers' ends in (idempotent): what the portal hands over from the
 * peers' status. Each peer is allowed its inner address and whatever this
 * facility routes to its tunnel (its infranet, `infranetPeersUp`): what is
 * behind a peer is this facility's own plan, not the peer's say.
 */
export async function gatewayPeersSet(prefix: string, peers: GatewayEndSpec[]): Promise<void> {
  const ns = gatewayNetns(prefix);
  if (!listNetns().includes(ns))
    throw new Error(`no gateway namespace ${ns}: no external link or infranet of it crosses from here`);
  for (const p of peers) {
    if (!/^[A-Za-z0-9+/]{42,43}=?$/.test(p.publicKey))
      throw new Error(`gateway peer ${p.peer}: publicKey is not a WireGuard key (44 base64 characters)`);
    if (!/^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/.test(p.endpoint))
      throw new Error(`gateway peer ${p.peer}: endpoint '${p.endpoint}' is not address:port`);
    const name = gatewayIfname(prefix, p.peer);
    await gatewayPeer(ns, name, p, await routedTo(ns, name));
    // Routes added while it was being let in (the infrapod's step, on another worker) are let through too.
    await allowRouted(ns, name);
  }
}

/**
 * Let whatever is routed to tunnel `name` through its peer: its allowed IPs widened to those routes
 * (idempotent; nothing is taken away). The portal hands this facility its peers' ends once the peers have
 * reported them, whatever this facility's own progress: they may come after its gateway is up but before
 * its infrapod's step routes the peer's infranet to the tunnel. Each side, once written, reads the other's
 * state, so whichever comes second completes it (a peer let in with only its inner address drops the
 * infranet's packets for good: nothing hands the ends over again).
 */
async function allowRouted(netns: string, name: string): Promise<void> {
  // `ip -j route` writes a host route without its /32; `wg show` with it.
  const routed = (await routedTo(netns, name)).map((r) => (r.includes("/") ? r : `${r}/32`));
  for (const [publicKey, have] of await wgAllowedIps(netns, name)) {
    const more = routed.filter((r) => !have.includes(r));
    // Only its allowed IPs (all of them: `wg set` replaces the list); endpoint and keepalive stay.
    if (more.length) await wgPeer(netns, name, { publicKey, allowedIps: [...have, ...more] });
  }
}

/** Prefixes routed to `dev` in `netns` other than its own subnet (`ip -j route`). */
async function routedTo(netns: string, dev: string): Promise<string[]> {
  const out = await check("ip", ["-n", netns, "-j", "route", "show", "dev", dev]);
  const routes = JSON.parse(out || "[]") as { dst: string; protocol?: string; scope?: string }[];
  return routes.filter((r) => r.protocol !== "kernel" && r.dst !== "default").map((r) => r.dst);
}

/**
 * The addresses of infrapod–gateway link `slot`, a /30 of 169.254.0.0/24 (the
 * tunnels' inner subnets are 169.254.S.0/24, S ≥ 1): slot 0 is the veth `gwy`
 * to a gateway namespace on the infrapod's own host, slots 1, 2, … the links
 * to gateway namespaces on other hosts, all on one tunnel `gwt` there.
 */
export function infranetLink(slot: number): { pod: string; gateway: string } {
  if (!Number.isInteger(slot) || slot < 0 || slot > 63)
    throw new Error(`infranet gateway link slot ${slot}: must be 0 to 63 (a /30 of 169.254.0.0/24)`);
  return { gateway: `169.254.0.${4 * slot + 1}`, pod: `169.254.0.${4 * slot + 2}` };
}

/**
 * UDP port of the infrapod–gateway link when they are on different hosts: its
 * VNI is the infranet's, kept apart from the infranet's own tunnels (VXLAN_PORT).
 */
export const GATEWAY_LINK_PORT = VXLAN_PORT + 1;

/** A peer's infranet in the infrapod: via which gateway address, on which device. */
interface PodRoute {
  subnet: string;
  via: string;
  dev: string;
}

/**
 * Route the other facilities' infranets from this one (idempotent): the
 * gateway's tunnel toward each peer (brought up here if no external link did
 * yet), a veth from the infrapod to the gateway namespace (link slot 0),
 * forwarding in both, and routes: in the infrapod each peer's infranet via
 * the gateway namespace (the nodes' default route is the infrapod); in the
 * gateway namespace this facility's infranet back via the infrapod and each
 * peer's into its tunnel. The peers' ends let that traffic in
 * (`gatewayPeersSet`). Returns this facility's ends, one per peer.
 */
export async function infranetPeersUp(
  env: Env,
  prefix: string,
  subnet: string,
  peers: InfranetPeer[],
): Promise<GatewayEndSpec[]> {
  const ends: GatewayEndSpec[] = [];
  for (const p of peers) ends.push(await gatewayEnsure(env, prefix, p));
  const pod = namesOf(prefix).infrapod;
  const gw = gatewayNetns(prefix);
  const link = infranetLink(0);
  if ((await run("ip", ["-n", pod, "link", "show", "gwy"])).code !== 0) {
    await env
      .ipIn(pod)
      .submit([vethAdd("name gwy", `name pod netns ${gw}`), `addr add ${link.pod}/30 dev gwy`, "link set dev gwy up"], {
        tolerant: false,
      });
    await env.ipIn(gw).submit([`addr add ${link.gateway}/30 dev pod`, "link set dev pod up"], { tolerant: false });
  }
  await podRoutes(
    env,
    prefix,
    peers.map((p) => ({ subnet: p.subnet, via: link.gateway, dev: "gwy" })),
  );
  await gatewayRoutes(env, prefix, subnet, peers, link.pod);
  return ends;
}

/**
 * The infrapod's side of the gateway namespaces on other hosts (idempotent):
 * `gwt`, one VXLAN tunnel on the infranet's VNI (GATEWAY_LINK_PORT) flooding
 * to every such host, with the infrapod's address of each link's /30, then
 * forwarding and each peer's route via its gateway host's address.
 */
export async function infranetPodSide(
  env: Env,
  prefix: string,
  vni: number,
  links: { remote: string; slot: number; peers: InfranetPeer[] }[],
): Promise<void> {
  const pod = namesOf(prefix).infrapod;
  await tunnelInto(env, {
    vni,
    netns: pod,
    inside: "gwt",
    remotes: links.map((l) => l.remote),
    port: GATEWAY_LINK_PORT,
  });
  await env.ipIn(pod).submit(
    links.map((l) => `addr replace ${infranetLink(l.slot).pod}/30 dev gwt`),
    { tolerant: false },
  );
  await podRoutes(
    env,
    prefix,
    links.flatMap((l) => l.peers.map((p) => ({ subnet: p.subnet, via: infranetLink(l.slot).gateway, dev: "gwt" }))),
  );
}

/**
 * The gateway's side when the infrapod is on another host (at underlay
 * address `remote`): the tunnels toward the peers, `pod` as a VXLAN tunnel to
 * the infrapod's host (link `slot`), forwarding and routes. Returns this
 * facility's ends.
 */
export async function infranetGatewaySide(
  env: Env,
  prefix: string,
  net: { subnet: string; vni: number },
  peers: InfranetPeer[],
  link: { remote: string; slot: number },
): Promise<GatewayEndSpec[]> {
  const ends: GatewayEndSpec[] = [];
  for (const p of peers) ends.push(await gatewayEnsure(env, prefix, p));
  const gw = gatewayNetns(prefix);
  const at = infranetLink(link.slot);
  if ((await run("ip", ["-n", gw, "link", "show", "pod"])).code !== 0) {
    await tunnelInto(env, { vni: net.vni, netns: gw, inside: "pod", remotes: [link.remote], port: GATEWAY_LINK_PORT });
    await env.ipIn(gw).submit([`addr add ${at.gateway}/30 dev pod`], { tolerant: false });
  }
  await gatewayRoutes(env, prefix, net.subnet, peers, at.pod);
  return ends;
}

/** In the infrapod: forwarding, each peer's infranet via its gateway namespace. */
async function podRoutes(env: Env, prefix: string, routes: PodRoute[]): Promise<void> {
  const pod = namesOf(prefix).infrapod;
  await check("ip", ["netns", "exec", pod, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await env.ipIn(pod).submit(
    routes.map((r) => `route replace ${r.subnet} via ${r.via} dev ${r.dev}`),
    { tolerant: false },
  );
}

/** In the gateway namespace: forwarding, this facility's infranet via the infrapod (at `pod`), each peer's into its tunnel. */
async function gatewayRoutes(
  env: Env,
  prefix: string,
  subnet: string,
  peers: InfranetPeer[],
  pod: string,
): Promise<void> {
  const gw = gatewayNetns(prefix);
  await check("ip", ["netns", "exec", gw, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await env
    .ipIn(gw)
    .submit(
      [
        `route replace ${subnet} via ${pod} dev pod`,
        ...peers.map((p) => `route replace ${p.subnet} dev ${gatewayIfname(prefix, p.peer)}`),
      ],
      { tolerant: false },
    );
  // A peer let in before these routes existed is let through to them now (`allowRouted`).
  for (const p of peers) await allowRouted(gw, gatewayIfname(prefix, p.peer));
}

async function ensureNetns(env: Env, names: string[]): Promise<void> {
  await env.ip.submit(missingNetns(names).map((n) => `netns add ${n}`));
}

/**
 * Wire this facility's part of an external link (idempotent). Returns this
 * facility's gateway ends it used, one per peer.
 */
/**
 * The wide-area segment of crossing `x` of `link`: a VXLAN device over the gateway's tunnel toward the
 * peer facility, on the crossing's VNI, moved into `netns` as `inside` (a port of `master` if given).
 */
function wideAreaSegment(
  env: Env,
  prefix: string,
  link: string,
  x: ExternalSpec,
  at: { part: string; netns: string; inside: string; master?: string | undefined },
): Promise<void> {
  return tunnelInto(env, {
    vni: x.vni,
    netns: at.netns,
    inside: at.inside,
    remotes: [x.peerAddress],
    underlay: gatewayNetns(prefix),
    ...(at.master ? { master: at.master } : {}),
  });
}

export async function externalCreate(
  env: Env,
  prefix: string,
  spec: LinkSpec,
  bridgeEmulated: boolean,
): Promise<GatewayEndSpec[]> {
  if (spec.span) return externalSpanCreate(env, prefix, spec, bridgeEmulated);
  const crossings = spec.external ?? [];
  const n = namesOf(prefix);
  const remote = new Set(spec.remote ?? []);
  const local = spec.endpoints.flatMap((e, k) => (remote.has(k) ? [] : [{ e, k }]));
  const ends = new Map<string, GatewayEndSpec>();
  for (const x of crossings) if (!ends.has(x.peer)) ends.set(x.peer, await gatewayEnsure(env, prefix, x));
  const tunnel = (x: ExternalSpec, part: string, netns: string, inside: string, master?: string) =>
    wideAreaSegment(env, prefix, spec.link, x, { part, netns, inside, master });
  const bridged = spec.emulator ? bridgeEmulated : spec.endpoints.length > 2;
  const side = spec.emulator ? n.emulator : n.xpnet;
  const bridge = lanBridge(spec.link);
  const viaSide = spec.emulator !== undefined || spec.endpoints.length > 2;
  if (viaSide) await switchingNamespaces(env, [side]);
  await ensureNetns(
    env,
    local.map(({ e }) => n.node(e.node)),
  );
  if (viaSide && bridged)
    await env.ipIn(side).submit([`link add name ${bridge} type bridge ${LAN_BRIDGE}`, `link set dev ${bridge} up`]);
  // Endpoints here that do not cross: a veth to the emulator or the LAN's bridge, as on one facility.
  const crossingHere = new Set(crossings.filter((x) => x.end === "node").map((x) => x.endpoint));
  const host: string[] = [];
  const inSide: string[] = [];
  if (viaSide)
    for (const { e, k } of local) {
      if (crossingHere.has(k)) continue;
      const port = linkPort(spec.link, k);
      host.push(vethAdd(`name ${socketIfname(e.socket)} netns ${n.node(e.node)}`, `name ${port} netns ${side}`));
      inSide.push(bridged ? `link set dev ${port} master ${bridge} up` : `link set dev ${port} up`);
    }
  await env.ip.submit(host);
  await env.ipIn(side).submit(inSide);
  for (const [i, x] of crossings.entries()) {
    const e = x.endpoint === undefined ? undefined : spec.endpoints[x.endpoint];
    if (x.end === "node") {
      if (!e) throw new Error(`link ${spec.link}: external[${i}] (node) names no endpoint`);
      await tunnel(x, `n${x.endpoint}`, n.node(e.node), socketIfname(e.socket));
    } else if (x.end === "emulator") {
      if (x.endpoint === undefined) throw new Error(`link ${spec.link}: external[${i}] (emulator) names no endpoint`);
      await tunnel(x, `e${x.endpoint}`, n.emulator, linkPort(spec.link, x.endpoint), bridged ? bridge : undefined);
    } else {
      await tunnel(x, `b${x.peer}/${x.vni}`, n.xpnet, `${linkKey(spec.link)}t${i}`, bridge);
    }
  }
  return [...ends.values()];
}

/** Names in the gateway namespace of a hop: the bridge, the wide-area segment's port, the fabric's port. */
function hopNames(link: string, k: number | string): { bridge: string; wan: string; fabric: string } {
  const key = linkKey(link);
  return { bridge: `${key}h${k}`, wan: `${key}w${k}`, fabric: `${key}f${k}` };
}

/**
 * This host's part of an external link on a facility of several hosts (see
 * the module's comment): `spec.span.local` is this host.
 */
async function externalSpanCreate(
  env: Env,
  prefix: string,
  spec: LinkSpec,
  bridgeEmulated: boolean,
): Promise<GatewayEndSpec[]> {
  const span = spec.span;
  if (!span) throw new Error(`link ${spec.link}: not a link across hosts`);
  const here = (h: string | undefined) => (h ?? "") === span.local;
  const under = (h: string | undefined) => {
    const u = span.underlays[h ?? ""];
    if (!u) throw new Error(`link ${spec.link}: no underlay address for host '${h || "(the facility's own)"}'`);
    return u;
  };
  const crossings = spec.external ?? [];
  const n = namesOf(prefix);
  const gw = gatewayNetns(prefix);
  const remote = new Set(spec.remote ?? []);
  const ends = new Map<string, GatewayEndSpec>();
  for (const x of crossings)
    if (here(x.host) && !ends.has(x.peer)) ends.set(x.peer, await gatewayEnsure(env, prefix, x));
  // The wide-area segment of crossing `i`, moved into `netns` as `inside`.
  const wan = (x: ExternalSpec, part: string, netns: string, inside: string, master?: string) =>
    wideAreaSegment(env, prefix, spec.link, x, { part, netns, inside, master });
  // The fabric's segment of a crossing toward the host at `far`, on the crossing's VNI.
  const fabric = (x: ExternalSpec, part: string, netns: string, inside: string, far: string, master?: string) =>
    tunnelInto(env, {
      vni: x.vni,
      netns,
      inside,
      remotes: [far],
      ...(master ? { master } : {}),
    });
  // On the gateway's host, for what joins crossing `x` on the host at `far`: both segments on one bridge.
  const hop = async (x: ExternalSpec, k: number | string, far: string) => {
    const h = hopNames(spec.link, k);
    await env.ipIn(gw).submit([`link add name ${h.bridge} type bridge ${LAN_BRIDGE}`, `link set dev ${h.bridge} up`]);
    await wan(x, `h${k}`, gw, h.wan, h.bridge);
    await fabric(x, `h${k}`, gw, h.fabric, far, h.bridge);
  };

  if (spec.emulator) {
    // This facility's endpoints to the emulator, across hosts as any emulated link (span.ts); then each
    // crossing: the emulator's port for an endpoint at the peer is the wide-area segment, or reaches it.
    await spanCreate(env, prefix, spec, bridgeEmulated);
    const emuHost = spec.emulatorHost ?? "";
    const master = bridgeEmulated ? lanBridge(spec.link) : undefined;
    for (const [i, x] of crossings.entries()) {
      if (x.end !== "emulator" || x.endpoint === undefined)
        throw new Error(`link ${spec.link}: external[${i}] is not the emulator's port of an endpoint`);
      const port = linkPort(spec.link, x.endpoint);
      if (here(x.host) && here(emuHost)) await wan(x, `e${x.endpoint}`, n.emulator, port, master);
      else if (here(x.host)) await hop(x, `e${x.endpoint}`, under(emuHost));
      else if (here(emuHost)) await fabric(x, `e${x.endpoint}`, n.emulator, port, under(x.host), master);
    }
    return [...ends.values()];
  }

  const local = spec.endpoints.flatMap((e, k) => (remote.has(k) ? [] : [{ e, k }]));
  const bridging = crossings.filter((x) => x.end === "bridge");
  const first = bridging[0];
  if (first) {
    // A LAN: a bridge on each host with endpoints or a gateway of it, joined over the fabric on the
    // crossings' VNI (this facility's one tag of the link); the wide-area segments on the gateways' hosts.
    const hosts = new Set([...local.map(({ e }) => e.host ?? ""), ...bridging.map((x) => x.host ?? "")]);
    const mine = local.filter(({ e }) => here(e.host));
    await switchingNamespaces(env, [n.xpnet]);
    await ensureNetns(
      env,
      mine.map(({ e }) => n.node(e.node)),
    );
    const bridge = lanBridge(spec.link);
    await env.ipIn(n.xpnet).submit([`link add name ${bridge} type bridge ${LAN_BRIDGE}`, `link set dev ${bridge} up`]);
    await env.ip.submit(
      mine.map(({ e, k }) =>
        vethAdd(
          `name ${socketIfname(e.socket)} netns ${n.node(e.node)}`,
          `name ${linkPort(spec.link, k)} netns ${n.xpnet}`,
        ),
      ),
    );
    await env.ipIn(n.xpnet).submit(mine.map(({ k }) => `link set dev ${linkPort(spec.link, k)} master ${bridge} up`));
    const others = [...hosts].filter((h) => !here(h));
    if (others.length)
      await tunnelInto(env, {
        vni: first.vni,
        netns: n.xpnet,
        inside: `${linkKey(spec.link)}t`,
        remotes: others.map(under),
        master: bridge,
      });
    for (const [i, x] of crossings.entries())
      if (x.end === "bridge" && here(x.host))
        await wan(x, `b${x.peer}/${x.vni}`, n.xpnet, `${linkKey(spec.link)}t${i}`, bridge);
    return [...ends.values()];
  }

  // Each endpoint here crosses on its own: its node's interface is the wide-area segment, or reaches it.
  for (const [i, x] of crossings.entries()) {
    const e = x.endpoint === undefined ? undefined : spec.endpoints[x.endpoint];
    if (x.end !== "node" || !e) throw new Error(`link ${spec.link}: external[${i}] is not an endpoint's interface`);
    const at = e.host ?? "";
    if (here(at)) await ensureNetns(env, [n.node(e.node)]);
    if (here(at) && here(x.host)) await wan(x, `n${x.endpoint}`, n.node(e.node), socketIfname(e.socket));
    else if (here(x.host)) await hop(x, `n${x.endpoint}`, under(at));
    else if (here(at)) await fabric(x, `n${x.endpoint}`, n.node(e.node), socketIfname(e.socket), under(x.host));
  }
  return [...ends.values()];
}

/** Remove this facility's part of an external link (idempotent); the gateway goes with the materialization. */
export async function externalDestroy(env: Env, prefix: string, spec: LinkSpec): Promise<void> {
  const n = namesOf(prefix);
  const have = new Set(listNetns());
  const remote = new Set(spec.remote ?? []);
  const byNs = new Map<string, string[]>();
  const add = (ns: string, line: string) => {
    if (have.has(ns)) byNs.set(ns, [...(byNs.get(ns) ?? []), line]);
  };
  for (const [k, e] of spec.endpoints.entries()) {
    if (!remote.has(k)) add(n.node(e.node), `link del ${socketIfname(e.socket)}`);
    add(n.emulator, `link del ${linkPort(spec.link, k)}`);
  }
  for (const [i, x] of (spec.external ?? []).entries()) {
    add(n.xpnet, `link del ${linkKey(spec.link)}t${i}`);
    if (x.end === "bridge") continue;
    // A hop on the gateway's host (several hosts): its bridge and both segments.
    const h = hopNames(spec.link, `${x.end === "emulator" ? "e" : "n"}${x.endpoint}`);
    for (const dev of [h.wan, h.fabric, h.bridge]) add(gatewayNetns(prefix), `link del ${dev}`);
  }
  add(n.xpnet, `link del ${linkKey(spec.link)}t`);
  add(n.emulator, `link del ${lanBridge(spec.link)}`);
  add(n.xpnet, `link del ${lanBridge(spec.link)}`);
  await Promise.all([...byNs].map(([ns, lines]) => env.ipIn(ns).submit(lines, { absentOk: true })));
}
