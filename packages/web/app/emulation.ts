/**
 * A materialized link's emulation as the page shows it, and the runtime change
 * form's input → the API's body. Pure, so it is tested under Node.
 *
 * Units: the page holds XIR's values (base units: ns, bit/s, fraction), read
 * from the API's `latencyNs`/`capacityBps`/`lossFraction` with `xirEmulation`;
 * people type ms, % and Mbit/s (or any unit @merge/xir's parseQuantity knows)
 * and read @merge/xir's formatQuantity.
 */
import type { ApiEmulationValues } from "@merge/portal/client";
import {
  type EmulationValues,
  formatQuantity,
  type LinkEmulation,
  ms,
  parseQuantity,
  type Unit,
} from "@merge/xir/browser";

/** The API's bound on latency (the portal's EmulationBody schema: 0..10 s); loss 0..1, capacity > 0. */
export const MAX_LATENCY = ms(10_000);

export interface DirectionRow {
  /** undefined: the link's own row; otherwise the node this direction delivers to. */
  toward: string | undefined;
  /** What runs in this direction: the link's values, the direction's own in their place. */
  values: EmulationValues;
  /** The fields this direction sets apart from the link's. */
  own: (keyof EmulationValues)[];
}

/** One row for the link, then one per direction set apart (as `mrg emu show` prints them). */
export function directionRows(e: LinkEmulation): DirectionRow[] {
  const { toward = [], ...link } = e;
  return [
    { toward: undefined, values: link, own: [] },
    ...toward.map(({ node, ...own }) => ({
      toward: node,
      values: { ...link, ...own },
      own: (Object.keys(own) as (keyof EmulationValues)[]).filter((k) => own[k] !== undefined),
    })),
  ];
}

const show = (unit: Unit) => (v: number | undefined) => (v === undefined ? "—" : formatQuantity(v, unit));
export const showLatency = show("ns");
export const showLoss = show("fraction");
export const showCapacity = show("bps");

/** What the form holds: text as typed (empty: leave as it is), and the direction ("" for every direction). */
export interface EmulationForm {
  latency: string;
  loss: string;
  capacity: string;
  toward: string;
}

export type EmulationChange =
  | { change: ApiEmulationValues; toward?: string }
  | { errors: Partial<Record<string, string>> };

/** One field as typed → base units, its label's unit assumed for a bare number; an error message otherwise. */
function field(text: string, unit: Unit, bare: string, what: string): number | string {
  try {
    return parseQuantity(text, unit, { what, bare });
  } catch (err) {
    return err instanceof RangeError ? err.message : String(err);
  }
}

/** Checks the form against the API's bounds and converts it to the API's base units; errors name the field. */
export function emulationChange(f: EmulationForm): EmulationChange {
  const errors: Record<string, string> = {};
  const change: ApiEmulationValues = {};
  const latency = f.latency.trim();
  if (latency !== "") {
    const v = field(latency, "ns", "ms", "Latency");
    if (typeof v === "string") errors.latency = `${v}; a bare number is ms`;
    else if (v > MAX_LATENCY)
      errors.latency = `Latency '${latency}': give at most ${formatQuantity(MAX_LATENCY, "ns")} (one way)`;
    else change.latencyNs = Math.round(v);
  }
  const loss = f.loss.trim();
  if (loss !== "") {
    const v = field(loss, "fraction", "%", "Loss");
    if (typeof v === "string") errors.loss = `Loss '${loss}': give a percentage from 0 to 100, e.g. 1.5`;
    else change.lossFraction = v;
  }
  const capacity = f.capacity.trim();
  if (capacity !== "") {
    const v = field(capacity, "bps", "mbit", "Capacity");
    if (typeof v === "string") errors.capacity = `${v}; a bare number is Mbit/s`;
    else if (!(v > 0)) errors.capacity = `Capacity '${capacity}': give Mbit/s greater than 0, e.g. 100`;
    else change.capacityBps = v;
  }
  if (Object.keys(errors).length > 0) return { errors };
  if (Object.keys(change).length === 0) return { errors: { form: "Give a latency, a loss or a capacity to change" } };
  return f.toward === "" ? { change } : { change, toward: f.toward };
}

/** The directions a change can target: the link's endpoints (from the realization), and any node already set apart. */
export function directionChoices(endpoints: readonly string[], e: LinkEmulation | undefined): string[] {
  const all = new Set(endpoints);
  for (const t of e?.toward ?? []) all.add(t.node);
  return [...all].sort();
}

/** "10 ms, 10 Mbit/s, 1% loss": the values that are set, in people's units (XIR's base units in). */
export function emulationSummary(v: EmulationValues): string {
  return [
    v.latency === undefined ? undefined : showLatency(v.latency),
    v.capacity === undefined ? undefined : showCapacity(v.capacity),
    v.loss === undefined ? undefined : `${showLoss(v.loss)} loss`,
  ]
    .filter((x) => x !== undefined)
    .join(", ");
}
