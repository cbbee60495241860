// Units and XIR types, so a model needs only this one import.
export {
  type BitsPerSecond,
  type Bytes,
  bps,
  type Constraint,
  describeConstraint,
  type Experiment,
  eb,
  type Fraction,
  fraction,
  gb,
  gbps,
  kb,
  kbps,
  mb,
  mbps,
  ms,
  type Nanoseconds,
  ns,
  pb,
  percent,
  s,
  tb,
  tbps,
  us,
} from "@merge/xir";
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
export { KNOWN_IMAGES } from "./images.ts";
export { formatCidr, parseCidr, parsePrefix } from "./ipv4.ts";
export { experiment } from "./load.ts";
export * from "./network.ts";
export { checkReachability, type Reachability } from "./reachability.ts";
export * from "./requirement.ts";
export { runTypeScriptSource, type TypeScriptModelResult, type TypeScriptRunOptions } from "./typescript.ts";
