/**
 * Joining a materialization's facilities: each facility brings up its end of
 * a gateway tunnel toward every peer its external links reach, makes the key
 * pair there, and reports only the public part (`GatewayEnd`: public key,
 * wide-area endpoint, inner address) in its status. The portal hands every
 * facility its peers' ends (`FacilityService.GatewayPeers`). Nothing secret
 * passes through here: a status that carried anything but these four fields
 * would not be read.
 */
import type { GatewayEndSpec, MaterializationPlan } from "@merge/materialize";

/** What one facility needs from its peers: routed by its gateway resource. */
export interface GatewayHandover {
  facility: string;
  resource: string;
  peers: GatewayEndSpec[];
}

/**
 * Per facility, the peers its plan's infranet routes and external links
 * reach, each with the gateway resource that routes the call.
 */
export function gatewayNeeds(plan: MaterializationPlan): Map<string, { resource: string; peers: Set<string> }> {
  const out = new Map<string, { resource: string; peers: Set<string> }>();
  for (const fp of plan.facilities) {
    for (const f of fp.fragments) {
      const crossings =
        f.op === "link.create" ? (f.link.external ?? []) : f.op === "infrapod.setup" ? (f.infrapod.peers ?? []) : [];
      for (const x of crossings) {
        const need = out.get(fp.facility) ?? { resource: x.gateway, peers: new Set<string>() };
        need.peers.add(x.peer);
        out.set(fp.facility, need);
      }
    }
  }
  return out;
}

/**
 * The handovers the facilities' reported ends allow (`ends`: facility → its
 * ends, each naming the peer it faces); `missing` names the ends not
 * reported yet (`F→P`: F's end toward P).
 */
export function gatewayHandovers(
  plan: MaterializationPlan,
  ends: ReadonlyMap<string, readonly GatewayEndSpec[]>,
): { handovers: GatewayHandover[]; missing: string[] } {
  const handovers: GatewayHandover[] = [];
  const missing: string[] = [];
  for (const [facility, need] of gatewayNeeds(plan)) {
    const peers: GatewayEndSpec[] = [];
    for (const p of [...need.peers].sort()) {
      const e = ends.get(p)?.find((x) => x.peer === facility);
      if (!e) missing.push(`${p}→${facility}`);
      // What the facility is told: the peer's end, named by the peer.
      else peers.push({ peer: p, publicKey: e.publicKey, endpoint: e.endpoint, address: e.address });
    }
    if (peers.length === need.peers.size) handovers.push({ facility, resource: need.resource, peers });
  }
  return { handovers, missing };
}

/**
 * True when every facility has been handed every peer it needs (`handed`:
 * facility → the peers' ends the portal gave it, as kept in its part of the
 * materialization record): nothing to ask the facilities.
 */
export function gatewaysHanded(
  plan: MaterializationPlan,
  handed: (facility: string) => readonly GatewayEndSpec[] | undefined,
): boolean {
  for (const [facility, need] of gatewayNeeds(plan)) {
    const have = handed(facility) ?? [];
    for (const p of need.peers) if (!have.some((x) => x.peer === p)) return false;
  }
  return true;
}

/** Whether a facility already has exactly these peers' ends (nothing to hand again). */
export function sameEnds(a: readonly GatewayEndSpec[] | undefined, b: readonly GatewayEndSpec[]): boolean {
  const key = (e: GatewayEndSpec) => `${e.peer} ${e.publicKey} ${e.endpoint} ${e.address}`;
  return a !== undefined && a.length === b.length && a.map(key).sort().join("\n") === b.map(key).sort().join("\n");
}
