/**
 * The materializer's control loop, level-triggered as a Kubernetes controller
 * is: each round compares what the portal wants of a facility (the stored
 * plan, to materialize or to dematerialize) with what the facility reports
 * (its status for the materialization) and takes the one step that brings
 * them closer. Repeating a step is harmless: every facility call is idempotent.
 */
import type { MzStatus } from "@merge/materialize";

/** What the portal wants of one facility, and whether the facility has accepted that request. */
export interface Desired {
  want: "materialize" | "dematerialize";
  delivered: boolean;
}

/**
 * The next step for one facility:
 * - `materialize`: send notify-incoming and the plan's fragments;
 * - `adopt`: the facility already runs it (a delivery whose answer was lost): record it delivered;
 * - `dematerialize`: send the teardown request (with the plan's fragments, for a facility that lost its records);
 * - `release`: teardown is done: notify teardown, forget the facility;
 * - `wait`: the facility is still tearing down; look again soon;
 * - `done`: nothing to do until something changes.
 */
export type Step = "materialize" | "adopt" | "dematerialize" | "release" | "wait" | "done";

/** Whether the step needs the facility's status first. */
export function needsObservation(d: Desired): boolean {
  return d.want === "materialize" ? !d.delivered : d.delivered;
}

/** Desired vs observed (`undefined` when not asked: see needsObservation) → the step. */
export function nextStep(d: Desired, observed: MzStatus | "unspecified" | undefined): Step {
  if (d.want === "materialize") {
    if (d.delivered) return "done";
    // Absent (dematerialized) or only announced (incoming): send it. Already running: adopt it.
    return observed === "materializing" || observed === "active" || observed === "error" ? "adopt" : "materialize";
  }
  if (!d.delivered) return "dematerialize";
  return observed === "dematerialized" ? "release" : "wait";
}
