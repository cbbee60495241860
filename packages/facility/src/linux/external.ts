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
import { listNetns } from "./processes.ts";
import { tunnelInto } from "./vtep.ts";

/** The gateway namespace of a materialization. */
export const gatewayNetns = (prefix: string): string => `${prefix}-g`;

/** The tunnel toward `peer` (15 characters, unique on the host: wireguard-go's socket is named by it). */
export const gatewayIfname = (prefix: string, peer: string): string =>
  `${prefix}w${createHash("sha256").update(peer).digest("hex").slice(0, 6)}`;

/** A VXLAN device's name before it moves (unique on the host). */
function tunnelName(prefix: string, link: string, part: string): string {
  return `${prefix}z${createHash("sha256").update(`${link}/${part}`).digest("hex").slice(0, 6)}`;
}

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
  }
}

/** Prefixes routed to `dev` in `netns` other than its own subnet (`ip -j route`). */
async function routedTo(netns: string, dev: string): Promise<string[]> {
  const out = await check("ip", ["-n", netns, "-j", "route", "show", "dev", dev]);
  const routes = JSON.parse(out || "[]") as { dst: string; protocol?: string; scope?: string }[];
  return routes.filter((r) => r.protocol !== "kernel" && r.dst !== "default").map((r) => r.dst);
}

/** The veth joining the infrapod to the gateway namespace: `gwy` in the infrapod, `pod` in the gateway's. */
export const INFRANET_LINK = { pod: "169.254.0.2", gateway: "169.254.0.1" } as const;

/**
 * Route the other facilities' infranets from this one (idempotent): the
 * gateway's tunnel toward each peer (brought up here if no external link did
 * yet), a veth from the infrapod to the gateway namespace (169.254.0.0/30;
 * tunnels' inner subnets are 169.254.S.0/24, S ≥ 1), forwarding in both, and
 * routes: in the infrapod each peer's infranet via the gateway namespace (the
 * nodes' default route is the infrapod); in the gateway namespace this
 * facility's infranet back via the infrapod and each peer's into its tunnel.
 * The peers' ends let that traffic in (`gatewayPeersSet`). Returns this
 * facility's ends, one per peer.
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
  if ((await run("ip", ["-n", pod, "link", "show", "gwy"])).code !== 0) {
    await env
      .ipIn(pod)
      .submit(
        [
          `link add name gwy type veth peer name pod netns ${gw}`,
          `addr add ${INFRANET_LINK.pod}/30 dev gwy`,
          "link set dev gwy up",
        ],
        { tolerant: false },
      );
    await env
      .ipIn(gw)
      .submit([`addr add ${INFRANET_LINK.gateway}/30 dev pod`, "link set dev pod up"], { tolerant: false });
  }
  for (const ns of [pod, gw]) await check("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await env.ipIn(pod).submit(
    peers.map((p) => `route replace ${p.subnet} via ${INFRANET_LINK.gateway} dev gwy`),
    { tolerant: false },
  );
  await env
    .ipIn(gw)
    .submit(
      [
        `route replace ${subnet} via ${INFRANET_LINK.pod} dev pod`,
        ...peers.map((p) => `route replace ${p.subnet} dev ${gatewayIfname(prefix, p.peer)}`),
      ],
      { tolerant: false },
    );
  return ends;
}

async function ensureNetns(env: Env, names: string[]): Promise<void> {
  const have = new Set(listNetns());
  await env.ip.submit([...new Set(names)].filter((n) => !have.has(n)).map((n) => `netns add ${n}`));
}

/**
 * Wire this facility's part of an external link (idempotent). Returns this
 * facility's gateway ends it used, one per peer.
 */
export async function externalCreate(
  env: Env,
  prefix: string,
  spec: LinkSpec,
  bridgeEmulated: boolean,
): Promise<GatewayEndSpec[]> {
  const crossings = spec.external ?? [];
  const n = namesOf(prefix);
  const remote = new Set(spec.remote ?? []);
  const local = spec.endpoints.flatMap((e, k) => (remote.has(k) ? [] : [{ e, k }]));
  const ends = new Map<string, GatewayEndSpec>();
  for (const x of crossings) if (!ends.has(x.peer)) ends.set(x.peer, await gatewayEnsure(env, prefix, x));
  const gw = gatewayNetns(prefix);
  const tunnel = (x: ExternalSpec, part: string, netns: string, inside: string, master?: string) =>
    tunnelInto(env, {
      name: tunnelName(prefix, spec.link, part),
      vni: x.vni,
      netns,
      inside,
      remotes: [x.peerAddress],
      underlay: gw,
      ...(master ? { master } : {}),
    });
  const bridged = spec.emulator ? bridgeEmulated : spec.endpoints.length > 2;
  const side = spec.emulator ? n.emulator : n.xpnet;
  const bridge = lanBridge(spec.link);
  const viaSide = spec.emulator !== undefined || spec.endpoints.length > 2;
  await ensureNetns(env, [...local.map(({ e }) => n.node(e.node)), ...(viaSide ? [side] : [])]);
  if (viaSide && bridged)
    await env.ipIn(side).submit([`link add name ${bridge} type bridge`, `link set dev ${bridge} up`]);
  // Endpoints here that do not cross: a veth to the emulator or the LAN's bridge, as on one facility.
  const crossingHere = new Set(crossings.filter((x) => x.end === "node").map((x) => x.endpoint));
  const host: string[] = [];
  const inSide: string[] = [];
  if (viaSide)
    for (const { e, k } of local) {
      if (crossingHere.has(k)) continue;
      const port = linkPort(spec.link, k);
      host.push(
        `link add name ${socketIfname(e.socket)} netns ${n.node(e.node)} type veth peer name ${port} netns ${side}`,
      );
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
  for (const [i] of (spec.external ?? []).entries()) add(n.xpnet, `link del ${linkKey(spec.link)}t${i}`);
  add(n.emulator, `link del ${lanBridge(spec.link)}`);
  add(n.xpnet, `link del ${lanBridge(spec.link)}`);
  await Promise.all([...byNs].map(([ns, lines]) => env.ipIn(ns).submit(lines, { absentOk: true })));
}
