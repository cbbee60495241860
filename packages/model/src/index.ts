// Units and XIR types, so a model needs only this one import. The unit
// helpers are this package's: their values carry the unit at run time.
export {
  type BitsPerSecond,
  type Bytes,
  type Constraint,
  describeConstraint,
  type Experiment,
  type Fraction,
  type Nanoseconds,
} from "@merge/xir";
export { formatCidr, parseCidr, parsePrefix } from "@merge/xir/ipv4";
export * from "./compile.ts";
export {
  availableConfinement,
  type Confinement,
  ConfinementError,
  describeConfinement,
  removeThreadScratch,
  requireConfinement,
  SCRATCH_PREFIX,
  UNSAFE_ENV,
} from "./confinement.ts";
export * from "./diagnostics.ts";
export { type Graph, type GraphLink, type GraphNode, toGraph } from "./graph.ts";
export { canonicalImage, KNOWN_IMAGES } from "./images.ts";
export { experiment } from "./load.ts";
export * from "./network.ts";
export {
  bps,
  bytes,
  eb,
  fraction,
  gb,
  gbps,
  kb,
  kbps,
  mb,
  mbps,
  ms,
  ns,
  pb,
  percent,
  s,
  tb,
  tbps,
  us,
} from "./quantity.ts";
export { checkReachability, type Reachability } from "./reachability.ts";
export * from "./requirement.ts";
export { typeCheckModel, typeCheckSource } from "./typecheck.ts";
export { runTypeScriptSource, type TypeScriptModelResult, type TypeScriptRunOptions } from "./typescript.ts";
