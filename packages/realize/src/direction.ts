/**
 * The directions of a link the model sets apart: a socket's `rx.*` constraints
 * describe the link toward that socket's node and replace the link's own
 * constraints on the same property for that direction only.
 */
import { type Constraint, describeConstraint, type Experiment, type Link, towardConstraints } from "@merge/xir";

/** One direction set apart: toward `node`, with its constraints as link constraints (`latency`, ...). */
export interface Direction {
  node: string;
  constraints: Constraint[];
}

/** `node\u0000socket` → that socket's toward-constraints, for sockets that have any. */
export function towardBySocket(x: Experiment): Map<string, Constraint[]> {
  const out = new Map<string, Constraint[]>();
  for (const n of x.nodes) {
    for (const s of n.sockets) {
      if (!s.constraints.some(isRx)) continue;
      const cs = towardConstraints(s);
      if (cs.length) out.set(`${n.name}\u0000${s.index}`, cs);
    }
  }
  return out;
}

/** The directions of `l` set apart, in endpoint order; empty for most links. */
export function directionsOf(l: Link, toward: ReadonlyMap<string, Constraint[]>): Direction[] {
  if (!toward.size) return [];
  const out: Direction[] = [];
  for (const e of l.endpoints) {
    const cs = toward.get(`${e.node}\u0000${e.socket}`);
    if (cs) out.push({ node: e.node, constraints: cs });
  }
  return out;
}

export function isRx(c: Constraint): boolean {
  return c.prop.startsWith("rx.");
}

/** A socket's constraints on its port (what placement matches), without the link-direction ones. */
export function portConstraints(cs: Constraint[]): Constraint[] {
  return cs.some(isRx) ? cs.filter((c) => !isRx(c)) : cs;
}

/** A direction's constraint as the user wrote it (`rx.latency == 30 ms`). */
export function describeToward(c: Constraint): string {
  return describeConstraint({ ...c, prop: `rx.${c.prop}` });
}
