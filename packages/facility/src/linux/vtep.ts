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
import { createHash } from "node:crypto";
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

export interface Tunnel {
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
}

/**
 * The tunnel's name in the namespace it is made in, before it moves (unique
 * there: made from where it goes). It is made there, not in its own
 * namespace, so its UDP socket and its VNI's place are that namespace's: two
 * materializations' tunnels on one VNI then live side by side, each in its own.
 */
function madeAs(o: Pick<Tunnel, "netns" | "inside">): string {
  return `vx${createHash("sha256").update(`${o.netns}/${o.inside}`).digest("hex").slice(0, 12)}`;
}

/** The lines that make a tunnel and move it to its namespace. */
export function tunnelLines(o: Tunnel): string[] {
  const tmp = madeAs(o);
  return [
    `link add name ${tmp} mtu ${o.mtu ?? TUNNEL_MTU} ${o.mac ? `address ${o.mac} ` : ""}type vxlan id ${o.vni} dstport ${o.port ?? VXLAN_PORT}`,
    `link set dev ${tmp} netns ${o.netns}`,
  ];
}

/**
 * The lines that name a moved tunnel and set it up in its namespace; one that
 * was there already stays, and the new one goes.
 */
export function tunnelUpLines(o: Tunnel): string[] {
  const tmp = madeAs(o);
  return [
    `link set dev ${tmp} name ${o.inside}`,
    `link del ${tmp}`,
    ...(o.master ? [`link set dev ${o.inside} master ${o.master}`] : []),
    `link set dev ${o.inside} up`,
  ];
}

/**
 * Make tunnels (idempotent): one batch makes them all (with `before`, lines of
 * the same batch that must come first: the namespaces, a bridge), one per
 * namespace sets them up (after `alongside`: more lines for those namespaces,
 * or others, in the same round), one per namespace adds their flooding entries. A
 * tunnel that exists already is kept; another refusal (its VNI taken on the
 * underlay) fails.
 */
export async function tunnelsInto(
  env: Pick<Env, "ip" | "ipIn" | "bridgeIn">,
  tunnels: Tunnel[],
  before: string[] = [],
  alongside: [string, string[]][] = [],
): Promise<void> {
  const byUnderlay = new Map<string | undefined, Tunnel[]>();
  for (const t of tunnels) byUnderlay.set(t.underlay, [...(byUnderlay.get(t.underlay) ?? []), t]);
  if (!byUnderlay.has(undefined) && before.length) byUnderlay.set(undefined, []);
  await Promise.all(
    [...byUnderlay].map(([underlay, ts]) => {
      const batch = underlay ? env.ipIn(underlay) : env.ip;
      return Promise.all([
        batch.submit(underlay ? [] : before),
        ...ts.map((t) => batch.submit(tunnelLines(t), { tolerant: false }).catch((e: Error) => made(t, e))),
      ]);
    }),
  );
  const byNs = (lines: (t: Tunnel) => string[], first: [string, string[]][] = []) => {
    const m = new Map<string, string[]>(first);
    for (const t of tunnels) {
      const ns = m.get(t.netns) ?? [];
      ns.push(...lines(t));
      m.set(t.netns, ns);
    }
    return [...m];
  };
  await Promise.all(byNs(tunnelUpLines, alongside).map(([ns, lines]) => env.ipIn(ns).submit(lines)));
  // One batch for the remotes (with whatever else is asked of the namespace meanwhile); an entry that exists is kept.
  await Promise.all(
    byNs((t) => t.remotes.map((r) => `fdb append 00:00:00:00:00:00 dev ${t.inside} dst ${r}`)).map(([ns, lines]) =>
      env
        .bridgeIn(ns)
        .submit(lines)
        .catch((e: Error) => {
          throw new Error(`fdb entries in ${ns}: ${e.message}`);
        }),
    ),
  );
}

/** A tunnel's making was refused: fine when it is in its namespace already (made by an earlier call). */
async function made(t: Tunnel, e: Error): Promise<void> {
  if ((await run("ip", ["-n", t.netns, "link", "show", t.inside])).code === 0) return;
  throw e;
}

/**
 * A tunnel `inside` in `netns`, its flooding sent to `remotes`.
 * Idempotent: an existing device is kept and its FDB entries are ensured.
 */
export function tunnelInto(env: Pick<Env, "ip" | "ipIn" | "bridgeIn">, o: Tunnel): Promise<void> {
  return tunnelsInto(env, [o]);
}

/** The infranet's tunnel in the namespace holding its bridge `ibr` (the infrapod's, or a host's infranet switch). */
export async function infranetJoin(
  env: Env,
  prefix: string,
  netns: string,
  vni: number,
  vteps: string[],
): Promise<void> {
  await tunnelInto(env, { vni, netns, inside: "vxi", remotes: vteps, master: "ibr" });
}
