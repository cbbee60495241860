/**
 * A materialization's gateway toward the other facilities it spans: one
 * WireGuard tunnel per peer facility, and the experiment's external links as
 * VXLAN segments over it (VNI per link, from the realization's tags).
 *
 * The tunnel's UDP socket lives in the facility's site (its wide-area address,
 * linux/wan.ts on one machine; the gateway's uplink on a real one); the
 * interface itself is moved into the materialization's gateway namespace
 * (`<prefix>gw`), so every materialization has its own inner addresses and
 * routes, and sweeping the prefix removes the tunnel with the namespace
 * (wireguard-go exits when its device goes). The listen port is the
 * kernel's choice: `gatewayUp` reports the endpoint the peer must call.
 *
 * Keys: the private key is made in the facility's own directory and never
 * leaves it (wireguard.ts); what travels, through the portal, is
 * `GatewayEnd`: public key, endpoint and inner address.
 *
 * MTU: WireGuard carries 1600 (the wide area 1700), VXLAN inside it 1500, so
 * nodes keep 1500-byte frames end to end.
 */
import { check, run } from "./command.ts";
import type { Env } from "./env.ts";
import { listNetns } from "./processes.ts";
import { switchingOnly } from "./switching.ts";
import { tunnelInto } from "./vtep.ts";
import { wgCreate, wgDown, wgKeyPair, wgPeer } from "./wireguard.ts";

/** WireGuard's MTU on the gateway: a VXLAN frame of 1550 fits. */
export const GATEWAY_MTU = 1600;

/** What one facility's gateway hands the portal for its peer: nothing secret. */
export interface GatewayEnd {
  publicKey: string;
  /** `address:port` on the wide area. */
  endpoint: string;
  /** The tunnel's inner address (the VXLAN underlay), e.g. `169.254.77.1`. */
  address: string;
}

export interface GatewayOptions {
  /** The facility's site namespace (the tunnel's socket stays there). */
  site: string;
  /** The site's wide-area address (the endpoint the peer calls). */
  siteAddress: string;
  /** The materialization's gateway namespace (made if missing). */
  netns: string;
  /** Interface name, unique on the host (wireguard-go's sockets share one directory): the prefix + `w<k>`. */
  name: string;
  /** The facility's directory for the private key (0600, made once). */
  keyDir: string;
  /** Inner address of this end (`/24` is added). */
  address: string;
  /** bits/s this facility sends into the wide area on this tunnel (tbf); absent: unlimited. */
  rateBps?: number;
}

/** Bring up this facility's end (idempotent); returns what the peer needs. */
export async function gatewayUp(o: GatewayOptions): Promise<GatewayEnd> {
  const { keyFile, publicKey } = await wgKeyPair(o.keyDir, o.name);
  if (!listNetns().includes(o.netns)) {
    await check("ip", ["netns", "add", o.netns]);
    await switchingOnly(o.netns);
    await check("ip", ["-n", o.netns, "link", "set", "lo", "up"]);
  }
  if ((await run("ip", ["-n", o.netns, "link", "show", o.name])).code !== 0) {
    await wgCreate(o.site, o.name);
    await check("ip", ["-n", o.site, "link", "set", o.name, "netns", o.netns]);
  }
  const wg = (args: string[]) => check("nsenter", [`--net=/run/netns/${o.netns}`, "--", "wg", ...args]);
  await wg(["set", o.name, "private-key", keyFile]);
  await check("ip", ["-n", o.netns, "address", "replace", `${o.address}/24`, "dev", o.name]);
  await check("ip", ["-n", o.netns, "link", "set", o.name, "mtu", String(GATEWAY_MTU), "up"]);
  if (o.rateBps !== undefined) {
    const burst = Math.max(3200, Math.ceil(o.rateBps / 8 / 250));
    await check("tc", [
      "-n",
      o.netns,
      "qdisc",
      "replace",
      "dev",
      o.name,
      "root",
      "tbf",
      "rate",
      `${Math.round(o.rateBps)}bit`,
      "burst",
      String(burst),
      "latency",
      "50ms",
    ]);
  }
  const port = Number((await wg(["show", o.name, "listen-port"])).trim());
  if (!Number.isInteger(port) || port <= 0) throw new Error(`gateway ${o.name}: no listen port (got '${port}')`);
  return { publicKey, endpoint: `${o.siteAddress}:${port}`, address: o.address };
}

/**
 * Let the peer facility's end in (idempotent: a changed endpoint is updated),
 * with `behind`, the prefixes routed to it (its infranet) beside its inner address.
 */
export async function gatewayPeer(netns: string, name: string, peer: GatewayEnd, behind: string[] = []): Promise<void> {
  await wgPeer(netns, name, {
    publicKey: peer.publicKey,
    endpoint: peer.endpoint,
    allowedIps: [`${peer.address}/32`, ...behind],
    // Both ends call out and in; a keepalive holds state on any NAT between them.
    keepalive: 25,
  });
}

/**
 * Wait until the peer's end answers through the tunnel (the first packet starts WireGuard's
 * handshake, so segments made afterwards do not lose their first frames to it). Throws after `ms`.
 */
export async function gatewayReady(netns: string, peer: GatewayEnd, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await run("ip", ["netns", "exec", netns, "ping", "-c", "1", "-W", "1", peer.address]);
    if (r.code === 0) return;
    if (Date.now() > end) {
      // What the tunnel saw (public parts only: `wg show … dump` would print the private key).
      const seen = await Promise.all(
        ["endpoints", "latest-handshakes", "transfer"].map(async (what) =>
          (await run("ip", ["netns", "exec", netns, "wg", "show", "all", what])).stdout.trim().replaceAll("\t", " "),
        ),
      );
      throw new Error(
        `gateway in ${netns}: the peer ${peer.address} (${peer.endpoint}) does not answer through the tunnel after ${ms} ms (${seen.join("; ")})`,
      );
    }
  }
}

/**
 * An external link's segment at this facility: a VXLAN tunnel on `vni` whose
 * socket is in the gateway namespace `gw`, flooding to the peer's inner
 * address, made in `netns` as `inside` (a node's interface, or a port of a
 * bridge when `master` is given).
 */
export function externalSegment(
  env: Pick<Env, "ip" | "ipIn" | "bridgeIn">,
  o: { gw: string; vni: number; peer: string; netns: string; inside: string; master?: string },
): Promise<void> {
  return tunnelInto(env, {
    vni: o.vni,
    netns: o.netns,
    inside: o.inside,
    remotes: [o.peer],
    underlay: o.gw,
    ...(o.master ? { master: o.master } : {}),
  });
}

/** Remove the tunnel and the gateway namespace (idempotent). */
export async function gatewayDown(netns: string, name: string): Promise<void> {
  await wgDown(netns, name);
  if (listNetns().includes(netns)) await run("ip", ["netns", "del", netns]);
}
