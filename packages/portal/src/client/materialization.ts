/**
 * The materialization status the portal reports (`GET …/materialization`), shared by
 * the server, the CLI and the web UI. Types only, so the browser can import it.
 */
export interface FacilityStatus {
  facility: string;
  reachable: boolean;
  /** Facility status: materializing, active, error, dematerializing, dematerialized; or `undelivered`. */
  status: string;
  error?: string;
  attempts: number;
  nextAttempt?: string;
  actions: number;
  complete: number;
  errors: number;
  masked: number;
  infrapod?: string;
  failed: { task: string; action: string; kind: string; target: string; error: string; attempts: number }[];
}

/** Emulation values in portal units: latency ms (one way), loss 0..1, capacity bits/s. */
export interface EmulationValues {
  capacity?: number;
  latency?: number;
  loss?: number;
}

/** A link's emulation (portal units): the link's values, and the directions set apart with their own. */
export interface LinkEmulation extends EmulationValues {
  toward?: ({ node: string } & EmulationValues)[];
}

export interface MaterializationStatus {
  id: string;
  project: string;
  experiment: string;
  realization: string;
  /** materializing | active | error | dematerializing | dematerialized */
  status: string;
  actions: number;
  complete: number;
  facilities: FacilityStatus[];
  nodes: {
    node: string;
    resource: string;
    facility: string;
    current: string;
    target: string;
    action: string;
    error?: string;
    /** on | off | starting | stopping | cycling | reimaging (empty until ready) */
    power: string;
    powerError?: string;
    /** Experiment addresses in CIDR form, in socket order (from the plan). */
    addresses?: string[];
    /** The node's infranet address (from the plan). */
    infranet?: string;
    /** OS image; absent: the facility's default. */
    image?: string;
  }[];
  links: { link: string; facility: string; action: string; error?: string; emulation?: LinkEmulation }[];
}
