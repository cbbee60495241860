// Bad input never crashes the checks: random damage to a valid facility document
// either fails the schema with paths, or passes it and gets model problems.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkFacilityDocument, checkResourceInternet, phobos, twoRack } from "@merge/facility-model";
import type { Facility } from "@merge/xir";

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every container (object or array) in the document, with a way to damage it. */
function containers(doc: Json, out: (Json[] | { [k: string]: Json })[] = []): (Json[] | { [k: string]: Json })[] {
  if (doc && typeof doc === "object") {
    out.push(doc);
    for (const v of Array.isArray(doc) ? doc : Object.values(doc)) containers(v, out);
  }
  return out;
}

const REPLACEMENTS: Json[] = [null, 0, -1, 1e9, "", "n0", "swp1", "eth0", true, [], {}, [1, 2], { first: 5, last: 2 }];

/** Damage that keeps the schema: ids and names swapped, elements dropped or repeated. */
function rewire(doc: Json, rand: () => number): void {
  const all = containers(doc);
  const strings: { holder: { [k: string]: Json }; key: string }[] = [];
  // Not a cable's two ends: the schema wants exactly two.
  const arrays = all.filter(
    (c): c is Json[] =>
      Array.isArray(c) &&
      c.length > 0 &&
      typeof c[0] === "object" &&
      !(c[0] !== null && "resource" in (c[0] as object)),
  );
  for (const c of all) {
    if (Array.isArray(c)) continue;
    for (const [k, v] of Object.entries(c))
      if (typeof v === "string" && k !== "xir") strings.push({ holder: c, key: k });
  }
  const what = rand();
  if (what < 0.5 && strings.length > 1) {
    const a = strings[Math.floor(rand() * strings.length)] as (typeof strings)[number];
    const same = strings.filter((x) => x.key === a.key);
    const b = same[Math.floor(rand() * same.length)] as (typeof strings)[number];
    a.holder[a.key] = b.holder[b.key] as Json;
  } else if (arrays.length) {
    const arr = arrays[Math.floor(rand() * arrays.length)] as Json[];
    const i = Math.floor(rand() * arr.length);
    if (what < 0.75) arr.splice(i, 1);
    else arr.push(structuredClone(arr[i] as Json));
  }
}

function damage(doc: Json, rand: () => number): void {
  const all = containers(doc);
  const target = all[Math.floor(rand() * all.length)];
  if (!target) return;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  if (Array.isArray(target)) {
    if (target.length === 0) return;
    const i = Math.floor(rand() * target.length);
    const what = rand();
    if (what < 0.3) target.splice(i, 1);
    else if (what < 0.6) target.push(structuredClone(target[i] as Json));
    else target[i] = pick(REPLACEMENTS);
  } else {
    const keys = Object.keys(target);
    if (keys.length === 0) return;
    const k = pick(keys);
    const what = rand();
    if (what < 0.3) delete target[k];
    else if (what < 0.5 && typeof target[k] === "string") target[k] = pick(["n0", "n1", "ileaf", "swp1", "eth0", ""]);
    else target[k] = pick(REPLACEMENTS);
  }
}

describe("checks on damaged documents", () => {
  it("never throw, and say why a damaged document is wrong", () => {
    const rand = rng(2024);
    const bases = [phobos(), twoRack()].map((f) => JSON.stringify(f));
    let schemaFailures = 0;
    let modelProblems = 0;
    for (let trial = 0; trial < 400; trial++) {
      const doc = JSON.parse(bases[trial % 2] as string) as Json;
      const hits = 1 + Math.floor(rand() * 4);
      for (let h = 0; h < hits; h++) (trial % 4 < 2 ? rewire : damage)(doc, rand);
      const r = checkFacilityDocument(doc);
      for (const p of r.problems) {
        assert.ok(p.element.length > 0 && p.message.length > 0, JSON.stringify(p));
      }
      if (!r.facility) {
        schemaFailures++;
        assert.ok(r.problems.length > 0);
      } else if (r.problems.length > 0) {
        modelProblems++;
      }
      // The internet check takes the same damage in its stride.
      if (r.facility) checkResourceInternet({ facilities: [r.facility as Facility], interconnects: [] });
    }
    assert.ok(schemaFailures > 50, `${schemaFailures} schema failures`);
    assert.ok(modelProblems > 100, `${modelProblems} documents with model problems`);
  });
});
