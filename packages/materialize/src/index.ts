export * from "./fragment.ts";
export * from "./fragments.ts";
export * from "./plan.ts";
export * from "./spec.ts";
export * from "./synthetic.ts";
export * from "./wire.ts";
