/**
 * A generated large experiment for benchmarks: `sites` sites, each a router
 * with `hostsPerSite` hosts on point-to-point links, the routers joined in a
 * ring plus `chords` pseudo-random extra links (deterministic), so the core has
 * cycles. sites=1000, hostsPerSite=9, chords=2000 gives 10,000 nodes and
 * 12,000 links.
 */
import { addressing, capacity, gbps, Network, routing } from "../src/index.ts";

export function generateSites(sites: number, hostsPerSite: number, chords: number): Network {
  const net = new Network(`sites-${sites}x${hostsPerSite + 1}`, addressing.ipv4, routing.static);
  const routers = net.nodesNamed("r", sites);
  routers.forEach((r, i) => {
    for (const h of net.nodesNamed(`h${i}-`, hostsPerSite)) net.connect([r, h]);
  });
  for (let i = 0; i < sites; i++) net.connect([routers[i]!, routers[(i + 1) % sites]!], capacity.eq(gbps(10)));
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let k = 0; k < chords; k++) {
    const a = Math.floor(rand() * sites);
    let b = Math.floor(rand() * sites);
    if (b === a) b = (a + sites / 2) % sites;
    net.connect([routers[a]!, routers[b]!]);
  }
  return net;
}
