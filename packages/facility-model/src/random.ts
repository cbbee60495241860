import { type Random, seededRandom } from "@merge/xir";

export type { Random };

/** The generators' PRNG: seed 0 is taken as a fixed odd constant, so it is not a degenerate start. */
export function random(seed: number): Random {
  return seededRandom(seed >>> 0 || 0x9e3779b9);
}
