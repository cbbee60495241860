import type { Facility } from "@merge/xir";
import { phobos } from "./phobos.ts";
import { twoRack } from "./two-rack.ts";
import { wideArea } from "./wide-area.ts";

export * from "./phobos.ts";
export * from "./two-rack.ts";
export * from "./wide-area.ts";

/** The named sample facilities, as `sample:<name>` in `cog model`. */
export const SAMPLES: Readonly<Record<string, () => Facility>> = {
  phobos: () => phobos(),
  "two-rack": () => twoRack(),
  "wide-area": () => wideArea(),
};
