/**
 * The engine's only source of order beyond its input (mulberry32, shared with
 * the facility generators): the placement search shuffles with it, so a seed
 * fixes the result on every machine.
 */
export { mulberry32 as seededRandom } from "@merge/facility-model";
