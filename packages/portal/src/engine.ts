/** The portal's realization engine: @merge/realize, with its problems turned into diagnostics. */
import { formatProblem, type InternetIndex, prepareInternet, realize } from "@merge/realize";
import type { Engine } from "./realization.ts";

export const realizeEngine: Engine = {
  prepare: (internet) => prepareInternet(internet),
  realize: ({ id, experiment, prepared, table, bestEffort, measured }) => {
    const r = realize(experiment, prepared as InternetIndex, table, {
      id,
      bestEffort,
      ...(measured ? { measured } : {}),
    });
    if (r.ok) return { ok: true, realization: r.realization, records: r.records };
    const diagnostics = r.problems.map(formatProblem);
    return r.closest ? { ok: false, diagnostics, closest: r.closest } : { ok: false, diagnostics };
  },
};
