export * from "./canonical.ts";
export * from "./constraint.ts";
export * from "./experiment.ts";
export * from "./facility.ts";
export * from "./properties.ts";
export * from "./realization.ts";
export * from "./schema.ts";
export * from "./units.ts";
