/**
 * The attach endpoint: how an XDC joins a materialization's infranet. One
 * WireGuard interface per materialization (`<prefix>a`) in its infrapod, one
 * peer per attached XDC. Each XDC gets an address of the infranet (the top of
 * its range downward, never a node's) routed to it over the tunnel; the
 * infrapod answers ARP for it on the infranet bridge (proxy ARP) and forwards,
 * so nodes reach the XDC as a neighbour and the XDC reaches every node, the
 * infrapod's dnsmasq included (`c0.infranet`).
 *
 * Underlay: the interface is made in the host's namespace and moved into the
 * infrapod (WireGuard's birth namespace), so its UDP socket listens on the
 * host's addresses while clear traffic exists only in the infrapod. An XDC
 * host does the same on its side, so on one machine the tunnel runs over
 * loopback and across machines over the facility host's address, with no
 * forwarding, NAT or extra veth in the host.
 *
 * The private key is made here (`<mz dir>/wireguard/`) and never leaves;
 * only the public key, port and address are returned. The peers are kept in
 * `<mz dir>/attach.json`, so detach and a restarted facility know them; the
 * sweep removes all of it with the materialization.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatIPv4, network, parseIPv4, parsePrefix, size } from "@merge/xir/ipv4";
import { check } from "./command.ts";
import { type Env, mzDir } from "./env.ts";
import { namesOf } from "./names.ts";
import type { InfranetPlan } from "./record.ts";
import { wgCreate, wgDown, wgKeyPair, wgListenPort, wgRemovePeer } from "./wireguard.ts";

/** The attach interface of a materialization (in its infrapod; ≤ 15 characters, unique on the host). */
export const attachIfname = (prefix: string): string => `${prefix}a`;

/** What an XDC (a peer) is given: its side of the tunnel. Public values only. */
export interface AttachGrant {
  /** The infrapod endpoint's public key. */
  publicKey: string;
  /** UDP port the endpoint listens on (on the facility host's addresses). */
  port: number;
  /** The XDC's infranet address with the infranet's prefix length, e.g. `172.30.255.254/16`. */
  address: string;
  /** The infranet, routed through the tunnel. */
  infranet: string;
  /** The infrapod's dnsmasq. */
  nameserver: string;
  /** Search domain: `c0` resolves as `c0.infranet` (the node's infranet address). */
  search: string;
}

interface AttachState {
  peers: Record<string, { publicKey: string; address: string }>;
}

const WG_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
const PEER_ID = /^[a-z][a-z0-9]{0,31}\.[a-z][a-z0-9]{0,31}$/;

const stateFile = (env: Env, prefix: string) => join(mzDir(env, prefix), "attach.json");

function readState(env: Env, prefix: string): AttachState {
  const f = stateFile(env, prefix);
  return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as AttachState) : { peers: {} };
}

function writeState(env: Env, prefix: string, s: AttachState): void {
  const f = stateFile(env, prefix);
  writeFileSync(`${f}.tmp`, JSON.stringify(s, null, 2));
  renameSync(`${f}.tmp`, f);
}

/** Infranet addresses the materialization's nodes hold (nex's hosts file: `<address> <node>.infranet`). */
function nodeAddresses(env: Env, prefix: string): Set<string> {
  const f = join(mzDir(env, prefix), "nex", "hosts");
  if (!existsSync(f)) return new Set();
  return new Set(
    readFileSync(f, "utf8")
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter((w) => w[1]?.endsWith(".infranet"))
      .map((w) => w[0] as string),
  );
}

/** The highest infranet host address nobody holds (nodes are numbered from the bottom). */
export function freeAttachAddress(infranet: InfranetPlan, taken: Set<string>): string {
  const c = parsePrefix(infranet.subnet);
  if (!c) throw new Error(`infranet subnet "${infranet.subnet}" is not an IPv4 prefix`);
  const base = network(c.addr, c.prefix);
  for (let h = size(c.prefix) - 2; h > 0; h--) {
    const a = formatIPv4(base + h);
    if (a !== infranet.gateway && !taken.has(a)) return a;
  }
  throw new Error(`infranet ${infranet.subnet} has no free address for an XDC`);
}

/**
 * Add (or confirm) the peer `id` with `publicKey`: the endpoint comes up with
 * the first peer. Idempotent: the same id keeps its address (a new key replaces the old one).
 */
export async function attachPeer(
  env: Env,
  prefix: string,
  infranet: InfranetPlan,
  peer: { id: string; publicKey: string },
): Promise<AttachGrant> {
  if (!PEER_ID.test(peer.id)) throw new Error(`peer id '${peer.id}': expected an XDC name (name.project)`);
  if (!WG_KEY.test(peer.publicKey))
    throw new Error("publicKey: expected a WireGuard public key (44 characters of base64 ending in '=')");
  const n = namesOf(prefix);
  const name = attachIfname(prefix);
  const c = parsePrefix(infranet.subnet);
  if (!c || parseIPv4(infranet.gateway) === undefined)
    throw new Error(`infranet ${infranet.subnet} (gateway ${infranet.gateway}) is not an IPv4 infranet`);
  const state = readState(env, prefix);
  const { keyFile, publicKey } = await wgKeyPair(join(mzDir(env, prefix), "wireguard"), name);
  await wgCreate(n.infrapod, name, "");
  const had = state.peers[peer.id];
  const taken = new Set([...nodeAddresses(env, prefix), ...Object.values(state.peers).map((p) => p.address)]);
  const address = had?.address ?? freeAttachAddress(infranet, taken);
  state.peers[peer.id] = { publicKey: peer.publicKey, address };
  writeState(env, prefix, state);
  // One visit to the infrapod's namespace for what iproute2 cannot batch (attach is a few short-lived
  // processes, each costing milliseconds on a loaded host): nodes ARP for the XDC on the infranet, the
  // infrapod answers and forwards to the tunnel; the key, the peer (a replaced key's peer removed).
  const wg = [
    `wg set ${name} private-key ${keyFile}`,
    ...(had && had.publicKey !== peer.publicKey ? [`peer ${had.publicKey} remove`] : []),
    `peer ${peer.publicKey} allowed-ips ${address}/32`,
  ].join(" ");
  await check("nsenter", [
    `--net=/run/netns/${n.infrapod}`,
    "--",
    "/bin/sh",
    "-ec",
    `echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv4/conf/ibr/proxy_arp; exec ${wg}`,
  ]);
  await env
    .ipIn(n.infrapod)
    .submit([
      `address replace ${infranet.gateway}/32 dev ${name}`,
      `link set ${name} mtu 1420 up`,
      `route replace ${address}/32 dev ${name}`,
    ]);
  return {
    publicKey,
    port: await listenPort(n.infrapod, name),
    address: `${address}/${c.prefix}`,
    infranet: `${formatIPv4(network(c.addr, c.prefix))}/${c.prefix}`,
    nameserver: infranet.gateway,
    search: "infranet",
  };
}

/** The port, once the interface has bound one (wireguard-go binds when it sees the link up). */
async function listenPort(netns: string, name: string): Promise<number> {
  const until = Date.now() + 5000;
  for (;;) {
    try {
      return await wgListenPort(netns, name);
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Remove the peer `id` (nothing if it is not attached); the endpoint goes with the last peer. */
export async function detachPeer(env: Env, prefix: string, id: string): Promise<boolean> {
  const state = readState(env, prefix);
  const had = state.peers[id];
  if (!had) return false;
  const n = namesOf(prefix);
  const name = attachIfname(prefix);
  delete state.peers[id];
  if (Object.keys(state.peers).length === 0) await wgDown(n.infrapod, name);
  else {
    await wgRemovePeer(n.infrapod, name, had.publicKey);
    await env.ipIn(n.infrapod).submit([`route del ${had.address}/32 dev ${name}`]);
  }
  writeState(env, prefix, state);
  return true;
}

/** The peers attached now (XDC ids). */
export function attachedPeers(env: Env, prefix: string): string[] {
  return Object.keys(readState(env, prefix).peers).sort();
}
