/**
 * An XDC's WireGuard tunnel to a materialization's infranet. The interface
 * (`<prefix>a`) is made in the XDC host's namespace and moved into the XDC's
 * (WireGuard's birth namespace): its UDP socket uses the host's addresses,
 * so on one machine it reaches the facility's endpoint over loopback and
 * across machines over the network, while the XDC sees only a `wg` link with
 * its infranet address (the infranet routed over it). Name resolution goes to
 * the infrapod's dnsmasq with search domain `infranet`, so `ping c0` and
 * `ssh c0` reach the node's infranet address.
 *
 * The private key is made here, in the XDC's directory on the host (0600,
 * never inside the container, never sent): the portal gets the public key.
 */
import { join } from "node:path";
import { wgCreate, wgDown, wgKeyPair } from "@merge/facility/linux";
import { formatCidr, network, parseCidr } from "@merge/xir/ipv4";
import { rewriteInPlace } from "./accounts.ts";
import { netnsOf } from "./container.ts";
import { check, ipBatch } from "./run.ts";
import type { XdcAttachment } from "./wire.ts";

/** The XDC's WireGuard interface (unique on the host: the XDC's prefix). */
export const attachIfname = (prefix: string): string => `${prefix}a`;

const keyDir = (dir: string) => join(dir, "wireguard");

/** The XDC's public key (its key pair made on first use, the private half kept in its directory). */
export async function xdcPublicKey(prefix: string, dir: string): Promise<string> {
  return (await wgKeyPair(keyDir(dir), attachIfname(prefix))).publicKey;
}

/** Bring the tunnel up to `a` (replacing any tunnel to another endpoint) and point name resolution at it. */
export async function tunnelUp(prefix: string, dir: string, a: XdcAttachment, previous?: XdcAttachment): Promise<void> {
  const name = attachIfname(prefix);
  const ns = netnsOf(prefix);
  if (previous && (previous.publicKey !== a.publicKey || previous.address !== a.address)) await wgDown(ns, name);
  const { keyFile } = await wgKeyPair(keyDir(dir), name);
  await wgCreate(ns, name, "");
  // Key and peer in one `wg set`, address and link in one `ip -batch`: each process costs milliseconds.
  // The keepalive keeps the facility's side knowing where the XDC is (and NAT state fresh across machines).
  await check("nsenter", [
    `--net=/run/netns/${ns}`,
    "--",
    "wg",
    "set",
    name,
    "private-key",
    keyFile,
    "peer",
    a.publicKey,
    "endpoint",
    a.endpoint,
    "allowed-ips",
    infranetOf(a.address),
    "persistent-keepalive",
    "25",
  ]);
  await ipBatch([`address replace ${a.address} dev ${name}`, `link set ${name} mtu 1420 up`], false, ns);
  rewriteInPlace(
    join(dir, "etc", "resolv.conf"),
    `# ${a.materialization}: the infrapod's dnsmasq\nnameserver ${a.nameserver}\nsearch ${a.search}\noptions timeout:1 attempts:2\n`,
  );
}

/** Remove the tunnel and the name server it brought (nothing if there is none). */
export async function tunnelDown(prefix: string, dir: string): Promise<void> {
  await wgDown(netnsOf(prefix), attachIfname(prefix));
  rewriteInPlace(join(dir, "etc", "resolv.conf"), "");
}

/** `172.30.255.254/16` → `172.30.0.0/16`. */
export function infranetOf(address: string): string {
  const c = parseCidr(address);
  if (!c) throw new Error(`address '${address}' is not an IPv4 address with a prefix length`);
  return formatCidr(network(c.addr, c.prefix), c.prefix);
}
