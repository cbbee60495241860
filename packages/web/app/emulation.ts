/**
 * A materialized link's emulation as the page shows it, and the runtime change
 * form's input → the API's body. Pure, so it is tested under Node.
 *
 * Units: the portal speaks latency in ms (one way), loss as a fraction 0..1 and
 * capacity in bits/s; people type ms, % and Mbit/s.
 */
import type { EmulationValues, LinkEmulation } from "@merge/portal/client";

/** The API's bounds (the portal's EmulationBody schema): latency 0..10,000 ms, loss 0..1, capacity > 0. */
export const MAX_LATENCY_MS = 10_000;

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

export const showLatency = (ms: number | undefined) => (ms === undefined ? "—" : `${+ms.toFixed(3)} ms`);
export const showLoss = (loss: number | undefined) => (loss === undefined ? "—" : `${+(loss * 100).toFixed(4)} %`);
export const showCapacity = (bps: number | undefined) =>
  bps === undefined ? "—" : `${+(bps / 1e6).toFixed(3)} Mbit/s`;

/** What the form holds: text as typed (empty: leave as it is), and the direction ("" for every direction). */
export interface EmulationForm {
  latency: string;
  loss: string;
  capacity: string;
  toward: string;
}

export type EmulationChange =
  | { change: EmulationValues; toward?: string }
  | { errors: Partial<Record<string, string>> };

/** A decimal number as people type it; NaN for anything else ("1e3", "0x10", "5ms" included). */
function decimal(s: string): number {
  return /^[+]?(\d+(\.\d*)?|\.\d+)$/.test(s) ? Number(s) : Number.NaN;
}

/** Checks the form against the API's bounds and converts it to the API's units; errors name the field. */
export function emulationChange(f: EmulationForm): EmulationChange {
  const errors: Record<string, string> = {};
  const change: EmulationValues = {};
  const latency = f.latency.trim();
  if (latency !== "") {
    const v = decimal(latency);
    if (!(v >= 0 && v <= MAX_LATENCY_MS))
      errors.latency = `Latency '${latency}': give milliseconds (one way) from 0 to ${MAX_LATENCY_MS}, e.g. 30`;
    else change.latency = v;
  }
  const loss = f.loss.trim().replace(/\s*%$/, "");
  if (loss !== "") {
    const v = decimal(loss);
    if (!(v >= 0 && v <= 100)) errors.loss = `Loss '${f.loss.trim()}': give a percentage from 0 to 100, e.g. 1.5`;
    else change.loss = v / 100;
  }
  const capacity = f.capacity.trim();
  if (capacity !== "") {
    const v = decimal(capacity);
    if (!(v > 0)) errors.capacity = `Capacity '${capacity}': give Mbit/s greater than 0, e.g. 100`;
    else change.capacity = v * 1e6;
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

/** "10 ms, 10 Mbit/s, 1 % loss": the values that are set, in people's units (portal units in). */
export function emulationSummary(v: EmulationValues): string {
  return [
    v.latency === undefined ? undefined : showLatency(v.latency),
    v.capacity === undefined ? undefined : showCapacity(v.capacity),
    v.loss === undefined ? undefined : `${showLoss(v.loss)} loss`,
  ]
    .filter((x) => x !== undefined)
    .join(", ");
}

/** Values as the XIR keeps them (latency in ns) → the portal's units (latency in ms). */
export function fromXirUnits({ latency, ...rest }: EmulationValues): EmulationValues {
  return latency === undefined ? rest : { ...rest, latency: latency / 1e6 };
}
