/** A small seeded PRNG (mulberry32): same seed, same sequence, on every machine. */
export type Random = () => number;

/** mulberry32 as published: every seed, 0 included, is its own sequence. */
export function mulberry32(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The generators' PRNG: seed 0 is taken as another constant (so facilities generated with 0 keep their shape). */
export function random(seed: number): Random {
  return mulberry32(seed >>> 0 || 0x9e3779b9);
}
