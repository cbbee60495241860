export * from "./agent.ts";
export * from "./deadline.ts";
export * from "./measure.ts";
export * from "./reconcile.ts";
export * from "./records.ts";
export * from "./registry.ts";
export * from "./routed.ts";
export * from "./run.ts";
