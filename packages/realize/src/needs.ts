/**
 * What each link asks of the mesh before anything is placed: the capacity it
 * reserves on every cable it crosses, and whether it could cross an
 * interconnect at all.
 */
import { type Constraint, describeConstraint, type Experiment, firstUnsatisfied, type Link } from "@merge/xir";
import type { LinkNeed, ProblemLog } from "./context.ts";
import { type Direction, describeToward, directionsOf } from "./direction.ts";
import { constraintsOn, pickValue } from "./value.ts";

/** Every link's need and the directions it sets apart; contradictions go to `problems`. */
export function linkNeeds(
  x: Experiment,
  toward: ReadonlyMap<string, Constraint[]>,
  defaultCapacity: number,
  problems: ProblemLog,
): { linkNeed: Map<string, LinkNeed>; linkDirs: Map<string, Direction[]> } {
  const linkNeed = new Map<string, LinkNeed>();
  const linkDirs = new Map<string, Direction[]>();
  for (const l of x.links) {
    const dirs = directionsOf(l, toward);
    if (dirs.length) linkDirs.set(l.name, dirs);
    const need = linkNeed1(l, dirs, defaultCapacity, problems);
    if (need) linkNeed.set(l.name, need);
  }
  return { linkNeed, linkDirs };
}

/**
 * What a link reserves. Reservation is one figure per virtual network on
 * each cable it crosses, and every virtual network of a link carries every
 * direction (an emulated link's half toward one endpoint carries traffic to
 * and from it), while a full-duplex cable carries each direction on its own
 * wires: so the link reserves the most any one direction needs, the link's
 * own capacity or a direction's `rx.capacity` in its place. (A direction
 * with no `rx.capacity` has the link's, already counted; a link with no
 * capacity constraint asks for the default.) The allocation table keeps one
 * figure per cable, not one per cable direction, so the larger direction decides.
 */
function linkNeed1(
  l: Link,
  dirs: readonly Direction[],
  defaultCapacity: number,
  problems: ProblemLog,
): LinkNeed | undefined {
  const own = capacityNeed(
    l,
    constraintsOn(l.constraints, "capacity"),
    "",
    describeConstraint,
    defaultCapacity,
    problems,
  );
  if (!dirs.length) return own;
  let out = own;
  for (const d of dirs) {
    const cs = constraintsOn(d.constraints, "capacity");
    if (!cs.length) continue;
    const n = capacityNeed(l, cs, `toward ${d.node}: `, describeToward, defaultCapacity, problems);
    out = out && n && { demand: Math.max(out.demand, n.demand), minRate: Math.max(out.minRate, n.minRate) };
  }
  return out;
}

/** What one set of capacity constraints (the link's, or a direction's) asks to reserve. */
function capacityNeed(
  l: Link,
  cs: readonly Constraint[],
  where: string,
  show: (c: Constraint) => string,
  defaultCapacity: number,
  problems: ProblemLog,
): LinkNeed | undefined {
  if (!cs.length) return { demand: defaultCapacity, minRate: 0 };
  const minRate = pickValue(cs, 0, Number.POSITIVE_INFINITY, "min");
  const max = pickValue(cs, 0, Number.POSITIVE_INFINITY, "max");
  if (minRate === undefined || max === undefined) {
    problems.push({
      element: "link",
      name: l.name,
      message: `${where}capacity constraints contradict: ${cs.map(show).join(" and ")}`,
    });
    return undefined;
  }
  return { demand: minRate > 0 ? minRate : max, minRate };
}

/** Could the link (and each direction set apart) be realized across an interconnect of this capacity and latency? */
export function mayCross(
  l: Link,
  dirs: readonly Direction[] | undefined,
  need: LinkNeed,
  capacity: number,
  latency: number,
): boolean {
  if (need.demand > capacity || need.minRate > capacity) return false;
  const ext = constraintsOn(l.constraints, "external");
  if (firstUnsatisfied(() => true, ext)) return false;
  for (const cs of dirs ? [l.constraints, ...dirs.map((d) => d.constraints)] : [l.constraints]) {
    const lat = constraintsOn(cs, "latency");
    if (lat.length && pickValue(lat, latency, Number.POSITIVE_INFINITY, "min") === undefined) return false;
    const cap = constraintsOn(cs, "capacity");
    if (cap.length && pickValue(cap, 0, capacity, "max") === undefined) return false;
  }
  return true;
}
