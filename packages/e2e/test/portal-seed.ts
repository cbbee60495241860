/**
 * The portal's records of an accepted realization, its revision and the
 * facility it uses, as realize and accept leave them, written straight to a
 * portal store: for tests and benchmarks of the materializer that need a
 * realization the realize engine did not make (a synthetic one, of any size).
 */
import type { Synthetic } from "@merge/materialize";
import { keys } from "@merge/portal";
import type { Store } from "@merge/store";

export async function seedAcceptedRealization(
  store: Store,
  s: Synthetic,
  o: { project: string; experiment: string; realization: string; endpoint: string },
): Promise<void> {
  const now = new Date().toISOString();
  const rlz = { ...s.realization, id: `${o.realization}.${o.experiment}.${o.project}` };
  await store.put(
    keys.realization(o.project, o.experiment, o.realization),
    JSON.stringify({
      name: o.realization,
      experiment: o.experiment,
      project: o.project,
      revision: 1,
      state: "accepted",
      creator: "alice",
      created: now,
      expires: null,
      realization: rlz,
      diagnostics: [],
      resources: [],
    }),
  );
  await store.put(keys.revisionBody(o.project, o.experiment, 1), JSON.stringify({ source: "", xir: s.experiment }));
  await store.put(
    keys.facility(s.facility.name),
    JSON.stringify({
      name: s.facility.name,
      description: "",
      endpoint: o.endpoint,
      certificate: "",
      state: "active",
      registered: now,
      updated: now,
      model: s.facility,
    }),
  );
}
