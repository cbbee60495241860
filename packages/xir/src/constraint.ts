/**
 * Constraint semantics shared by experiments, facility models and the
 * realization engine. The engine never knows what "cores" means: it asks
 * `satisfies(property value, constraint)` and nothing else.
 */
export const OPS = ["==", "!=", "<", "<=", ">", ">=", "in"] as const;
export type Op = (typeof OPS)[number];
export type Scalar = number | string | boolean;

export interface Constraint {
  /** Property path, e.g. `memory.capacity`, `proc.cores`, `latency`. */
  prop: string;
  op: Op;
  /** A scalar, or for `in` a list of scalars. Numbers are in the property's base unit. */
  value: Scalar | Scalar[];
}

/** Does a resource's property value satisfy one constraint? Undefined never satisfies. */
export function satisfies(have: Scalar | undefined, c: Constraint): boolean {
  if (have === undefined) return false;
  const want = c.value;
  if (c.op === "in") return Array.isArray(want) && want.some((w) => equal(have, w));
  if (Array.isArray(want)) return false;
  switch (c.op) {
    case "==":
      return equal(have, want);
    case "!=":
      return !equal(have, want);
    case "<":
      return comparable(have, want) && have < want;
    case "<=":
      return comparable(have, want) && have <= want;
    case ">":
      return comparable(have, want) && have > want;
    case ">=":
      return comparable(have, want) && have >= want;
  }
}

/**
 * Does a set of properties satisfy every constraint? Returns the first constraint
 * that fails, or undefined when all hold. `lookup` maps a property path to a value.
 */
export function firstUnsatisfied(
  lookup: (prop: string) => Scalar | undefined,
  constraints: readonly Constraint[],
): Constraint | undefined {
  for (const c of constraints) {
    if (!satisfies(lookup(c.prop), c)) return c;
  }
  return undefined;
}

function equal(a: Scalar, b: Scalar): boolean {
  return a === b;
}

function comparable(a: Scalar, b: Scalar): a is number | string {
  return typeof a === typeof b && (typeof a === "number" || typeof a === "string");
}

/**
 * Two or more constraints on one property that no value can satisfy, e.g.
 * `memory.capacity >= 8 GiB` with `memory.capacity <= 4 GiB`. Returns groups of
 * contradicting constraints, one per property. Pure interval reasoning on numbers,
 * set reasoning on `==`/`!=`/`in`.
 */
export function contradictions(constraints: readonly Constraint[]): Constraint[][] {
  const byProp = new Map<string, Constraint[]>();
  for (const c of constraints) {
    const list = byProp.get(c.prop);
    if (list) list.push(c);
    else byProp.set(c.prop, [c]);
  }
  const out: Constraint[][] = [];
  for (const group of byProp.values()) {
    if (group.length > 1 && !satisfiable(group)) out.push(group);
  }
  return out;
}

/** Whether some value exists that satisfies every constraint (all on one property). */
export function satisfiable(group: readonly Constraint[]): boolean {
  // Candidate values: every value mentioned, plus points just around numeric bounds.
  const candidates = new Set<Scalar>();
  let numeric = false;
  for (const c of group) {
    const values = Array.isArray(c.value) ? c.value : [c.value];
    for (const v of values) {
      candidates.add(v);
      if (typeof v === "number") {
        numeric = true;
        candidates.add(v - 0.5);
        candidates.add(v + 0.5);
      }
    }
  }
  const hasEquality = group.some((c) => c.op === "==" || c.op === "in");
  if (!hasEquality) {
    // Without an equality, only numeric bounds (and != on strings) can conflict.
    if (!numeric) return true;
    const nums = [...candidates].filter((v): v is number => typeof v === "number");
    const lo = Math.min(...nums) - 1;
    const hi = Math.max(...nums) + 1;
    candidates.add(lo);
    candidates.add(hi);
    // Between any two sorted candidates, a midpoint.
    const sorted = [...candidates].filter((v): v is number => typeof v === "number").sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) candidates.add(((sorted[i - 1] as number) + (sorted[i] as number)) / 2);
  }
  for (const v of candidates) {
    if (group.every((c) => satisfies(v, c))) return true;
  }
  return false;
}

export function formatConstraintValue(value: Scalar | Scalar[]): string {
  return Array.isArray(value) ? `[${value.map((v) => JSON.stringify(v)).join(", ")}]` : JSON.stringify(value);
}
