/**
 * The browser-safe part of `@merge/xir` (`import … from "@merge/xir/browser"`):
 * the types, constraint semantics, units and property descriptions, none of
 * which need Node. Not here: schema validation (ajv, `validateExperiment` and
 * friends) and canonical JSON hashing (node:crypto); those stay in the main
 * entry for the Node side.
 */
export * from "./constraint.ts";
export * from "./experiment.ts";
export * from "./facility.ts";
export * from "./properties.ts";
export * from "./realization.ts";
export * from "./suggest.ts";
export * from "./units.ts";
export * from "./virt.ts";
