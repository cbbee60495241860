/** The demo facility (phobos), registered on first start as `npm start` does. */
import { phobos } from "@merge/facility-model";
import type { FacilitySeed } from "../src/main.ts";

export const demoSeed = (): FacilitySeed[] => [
  { model: phobos(), endpoint: "https://127.0.0.1:6000", description: "demo facility" },
];
