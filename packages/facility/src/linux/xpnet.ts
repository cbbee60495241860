/**
 * The experiment network, wired as realized. Every link endpoint is a veth
 * whose node end is `eth<socket+1>` in the node's namespace:
 *  - point-to-point, not emulated: one veth pair straight between the nodes;
 *  - multipoint, not emulated: each endpoint's veth ends on a bridge in the
 *    materialization's xpnet namespace;
 *  - emulated (either kind): each endpoint's veth ends in the emulator
 *    namespace (the link is cut in half there), where the emulation joins them.
 * Materializations never share a namespace, so equal addresses never meet.
 */
import type { Env } from "./env.ts";
import { lanBridge, linkPort, namesOf, socketIfname } from "./names.ts";
import { listNetns, missingNetns } from "./processes.ts";
import type { LinkPlan } from "./record.ts";
import { LAN_BRIDGE, switchingNamespaces } from "./switching.ts";
import { vethAdd } from "./veth.ts";

export function linkShape(link: LinkPlan): "p2p" | "lan" | "emulated" {
  if (link.emulation) return "emulated";
  return link.endpoints.length === 2 ? "p2p" : "lan";
}

/** Host batch lines creating missing node namespaces these links need (none when `nodesAhead`). */
function namespaceLines(prefix: string, links: LinkPlan[], nodesAhead: boolean): string[] {
  if (nodesAhead) return [];
  const n = namesOf(prefix);
  return missingNetns(links.flatMap((l) => l.endpoints.map((e) => n.node(e.node)))).map((w) => `netns add ${w}`);
}

/** The switching namespaces these links need: the emulator's, the xpnet's. */
export function switchingOf(prefix: string, links: LinkPlan[]): string[] {
  const n = namesOf(prefix);
  const shapes = new Set(links.map(linkShape));
  return [...(shapes.has("emulated") ? [n.emulator] : []), ...(shapes.has("lan") ? [n.xpnet] : [])];
}

/**
 * Create these links (idempotent). Bridged ports are joined in the emulator when `bridgeEmulated` (netem).
 * `nodesAhead`: the nodes' namespaces are being made by lines submitted to `env.ip` just before, in the same
 * turn of the event loop (materialize's shares): this call's lines then go in the same iproute2 batch, after them.
 */
export async function linksCreate(
  env: Env,
  prefix: string,
  links: LinkPlan[],
  opts: { bridgeEmulated: boolean; nodesAhead?: boolean },
): Promise<void> {
  const n = namesOf(prefix);
  await switchingNamespaces(env, switchingOf(prefix, links));
  const host = namespaceLines(prefix, links, opts.nodesAhead ?? false);
  const emu: string[] = [];
  const xp: string[] = [];
  for (const l of links) {
    if (l.endpoints.length < 2)
      throw new Error(`link ${l.name}: needs at least 2 endpoints, has ${l.endpoints.length}`);
    const shape = linkShape(l);
    if (shape === "p2p") {
      const [a, b] = l.endpoints as [LinkPlan["endpoints"][0], LinkPlan["endpoints"][0]];
      host.push(
        vethAdd(
          `name ${socketIfname(a.socket)} netns ${n.node(a.node)}`,
          `name ${socketIfname(b.socket)} netns ${n.node(b.node)}`,
        ),
      );
      continue;
    }
    const side = shape === "emulated" ? n.emulator : n.xpnet;
    const out = shape === "emulated" ? emu : xp;
    const bridged = shape === "lan" || opts.bridgeEmulated;
    if (bridged)
      out.push(`link add name ${lanBridge(l.name)} type bridge ${LAN_BRIDGE}`, `link set dev ${lanBridge(l.name)} up`);
    l.endpoints.forEach((e, k) => {
      const port = linkPort(l.name, k);
      host.push(vethAdd(`name ${socketIfname(e.socket)} netns ${n.node(e.node)}`, `name ${port} netns ${side}`));
      out.push(bridged ? `link set dev ${port} master ${lanBridge(l.name)} up` : `link set dev ${port} up`);
    });
  }
  await env.ip.submit(host);
  await Promise.all([env.ipIn(n.emulator).submit(emu), env.ipIn(n.xpnet).submit(xp)]);
}

/** Remove these links (idempotent): deleting one end of a veth deletes both. */
export async function linksDestroy(env: Env, prefix: string, links: LinkPlan[]): Promise<void> {
  const n = namesOf(prefix);
  const have = new Set(listNetns());
  const byNs = new Map<string, string[]>();
  const add = (ns: string, line: string) => {
    if (!have.has(ns)) return;
    const l = byNs.get(ns) ?? [];
    l.push(line);
    byNs.set(ns, l);
  };
  for (const l of links) {
    for (const e of l.endpoints) add(n.node(e.node), `link del ${socketIfname(e.socket)}`);
    if (linkShape(l) !== "p2p") {
      add(n.emulator, `link del ${lanBridge(l.name)}`);
      add(n.xpnet, `link del ${lanBridge(l.name)}`);
    }
  }
  // A namespace that vanished meanwhile (its node recycled in parallel) took these links with it.
  await Promise.all([...byNs].map(([ns, lines]) => env.ipIn(ns).submit(lines, { absentOk: true })));
}
