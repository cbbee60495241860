/**
 * VXLAN tunnel endpoints: how a materialization's networks span hosts. A
 * VXLAN device is made in the host's own network namespace (where its UDP
 * socket stays, on the underlay) and then moved into the namespace that uses
 * it: the infrapod's (or, on a host without the infrapod, an infranet switch
 * namespace of the same name), a node's (its experiment interface is the
 * tunnel), the emulator's, the xpnet's. Flooding is head-end replication: an
 * all-zeros FDB entry per remote VTEP (`bridge fdb append`), the addresses the
 * facility gives from its hosts' registrations; unicast MACs are learned.
 *
 * MTU: the underlay carries the overhead. Tunnels are made with MTU 1500, so
 * nodes keep the usual 1500 on every interface; the underlay must carry 1550
 * (VXLAN over IPv4 adds 50 bytes). The test fabric is set to 1550; on a fabric
 * that cannot, the kernel fragments the outer packets (correct, but slower).
 */
import { run } from "./command.ts";
import type { Env } from "./env.ts";

export const VXLAN_PORT = 4789;
/** MTU of every tunnel: the experiment's and the infranet's own. */
export const TUNNEL_MTU = 1500;
/** Underlay MTU a tunnel needs to carry a full 1500-byte frame unfragmented. */
export const UNDERLAY_MTU = TUNNEL_MTU + 50;

/**
 * VNI of an experiment network segment: its VXLAN tag when the realization
 * gave one; a VLAN tag maps above 2^23, out of the way of VNI pools.
 */
export function segmentVni(tag: { vni?: number; vlan?: number }): number | undefined {
  if (tag.vni !== undefined) return tag.vni;
  if (tag.vlan !== undefined) return 2 ** 23 + tag.vlan;
  return undefined;
}

/**
 * A tunnel `name` (≤ 15 characters, unique on the host) on `vni`, moved into
 * `netns` as `inside` (renamed there), its flooding sent to `remotes`.
 * Idempotent: an existing device is kept and its FDB entries are ensured.
 */
export async function tunnelInto(
  env: Pick<Env, "ip" | "ipIn" | "bridgeIn">,
  o: {
    name: string;
    vni: number;
    netns: string;
    inside: string;
    remotes: string[];
    master?: string;
    mac?: string;
    /** Namespace whose routes carry the tunnel (its UDP socket stays there); default the host's. */
    underlay?: string;
    /** The tunnel's MTU (default TUNNEL_MTU). */
    mtu?: number;
    /** UDP port (default VXLAN_PORT); another port keeps a VNI apart from the same VNI's tunnels on VXLAN_PORT. */
    port?: number;
  },
): Promise<void> {
  const inNs = env.ipIn(o.netns);
  const have = await run("ip", ["-n", o.netns, "link", "show", o.inside]);
  if (have.code !== 0) {
    await (o.underlay ? env.ipIn(o.underlay) : env.ip).submit(
      [
        `link add name ${o.name} mtu ${o.mtu ?? TUNNEL_MTU} ${o.mac ? `address ${o.mac} ` : ""}type vxlan id ${o.vni} dstport ${o.port ?? VXLAN_PORT}`,
        `link set dev ${o.name} netns ${o.netns}`,
      ],
      { tolerant: false },
    );
    await inNs.submit([
      `link set dev ${o.name} name ${o.inside}`,
      ...(o.master ? [`link set dev ${o.inside} master ${o.master}`] : []),
      `link set dev ${o.inside} up`,
    ]);
  }
  // One batch for the remotes (with whatever else is asked of the namespace meanwhile); an entry that exists is kept.
  await env
    .bridgeIn(o.netns)
    .submit(o.remotes.map((r) => `fdb append 00:00:00:00:00:00 dev ${o.inside} dst ${r}`))
    .catch((e: Error) => {
      throw new Error(`fdb entries for ${o.inside} in ${o.netns} toward ${o.remotes.join(", ")}: ${e.message}`);
    });
}

/** The infranet's tunnel in the namespace holding its bridge `ibr` (the infrapod's, or a host's infranet switch). */
export async function infranetJoin(
  env: Env,
  prefix: string,
  netns: string,
  vni: number,
  vteps: string[],
): Promise<void> {
  await tunnelInto(env, { name: `${prefix}vi`, vni, netns, inside: "vxi", remotes: vteps, master: "ibr" });
}
