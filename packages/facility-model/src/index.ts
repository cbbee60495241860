export * from "./builder.ts";
export * from "./generate.ts";
export * from "./hardware.ts";
export * from "./problem.ts";
export * from "./samples/phobos.ts";
export * from "./validate.ts";
