/**
 * @merge/realize: the realization engine. Pure functions over an experiment,
 * the resource internet and the allocation table.
 */

export { seededRandom } from "@merge/xir";
export {
  type AllocationRecord,
  AllocationTable,
  type AllocationUnit,
  type Epoch,
  freeByEpochTxn,
  freeTxn,
  INFRANET_USE,
  overCommitment,
  type ReserveResult,
  reserveByEpochTxn,
  reserveTxn,
  tableFromRealizations,
  tableFromStore,
  type UnitTxn,
  unitKey,
} from "./allocation.ts";
export { checkRealizations, type Violation } from "./checker.ts";
export { formatProblem, type Problem } from "./diagnosis.ts";
export { formatEmbedding } from "./embedding.ts";
export { InternetError, type InternetIndex, prepareInternet } from "./internet.ts";
export {
  type MeasuredRoom,
  type RealizeOptions,
  type RealizeResult,
  realize,
  structuralProblems,
  VM_DEFAULTS,
} from "./realize.ts";
