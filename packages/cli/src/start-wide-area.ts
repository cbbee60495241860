// npm start -- --wide-area [--hosts N] [--wan-latency 15ms]: the demo facility is a wide-area facility of
// shared hosts (facility-model's wideArea, ProtoGENI "version zero") instead of phobos. Its N sites
// (default 3) are hosts of a fabric on this machine (start-hosts.ts, facility/src/linux/fabric.ts): site0,
// the home site with the infrapod server and the emulator, beside the facility; site1 … behind a router
// whose delay line holds each way for the wide area's one-way latency, so agents, tunnels and the NAT's
// users all cross a routed, latent path. Each host is shared (`one-per-experiment`), placed by what its
// agent measures free, and does NAT for control access as the model says: a host's public address is its
// address on the wide area, each node there gets 10 ports of 20000-29999, the first to its ssh.
import type { Fabric } from "@merge/facility/linux";
import { wideArea, wideAreaHost } from "@merge/facility-model";
import type { HostsLayout } from "./start-hosts.ts";

/** Sites when --hosts does not say. */
export const WIDE_AREA_SITES = 3;

export function wideAreaLayout(sites: number, latencyMs: number): HostsLayout {
  const names = Array.from({ length: sites }, (_, i) => wideAreaHost(i));
  return {
    names,
    routed: { hosts: names.slice(1), delayMs: latencyMs },
    model: (fabric: Fabric) => wideArea({ sites, nat: { addresses: names.map((n) => fabric.host(n).underlay) } }),
    noHarbor: true,
  };
}
