/** The portal's realization engine: @merge/realize, with its problems turned into diagnostics. */
import { formatProblem, type InternetIndex, prepareInternet, realize } from "@merge/realize";
import type { Engine } from "./realization.ts";

export const realizeEngine: Engine = {
  prepare: (internet) => prepareInternet(internet),
  realize: ({ id, experiment, prepared, table }) => {
    const r = realize(experiment, prepared as InternetIndex, table, { id });
    return r.ok
      ? { ok: true, realization: r.realization, records: r.records }
      : { ok: false, diagnostics: r.problems.map(formatProblem) };
  },
};
