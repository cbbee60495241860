/**
 * A materialization's plan in the store: computed once when the
 * materialization is created (`@merge/materialize`), written in the same
 * transaction as its record and deleted with it. Small plans are one value;
 * big ones (a few hundred nodes up) are deflated in chunks (chunked.ts).
 * Every step after creation — delivery, retries, status, node operations,
 * dematerialize — reads this instead of recomputing it.
 */
import type { MaterializationPlan } from "@merge/materialize";
import type { Op, Store } from "@merge/store";
import { type ChunkedBody, chunkPuts, encodeChunks, INLINE_BYTES, type Locate, readChunked } from "../chunked.ts";

export const planKeys = {
  plan: (p: string, e: string, r: string) => `portal/mz-plans/${p}/${e}/${r}`,
  chunks: (p: string, e: string, r: string) => `portal/mz-plan-chunks/${p}/${e}/${r}/`,
};

interface StoredPlan {
  mzid: string;
  /** The plan itself when it is small. */
  plan?: MaterializationPlan;
  /** Where a big plan's chunks are. */
  body?: ChunkedBody;
  project: string;
  experiment: string;
  realization: string;
}

const locate: Locate<StoredPlan> = (s) =>
  s.body === undefined ? undefined : { body: s.body, prefix: planKeys.chunks(s.project, s.experiment, s.realization) };

/** The puts that store a new plan, for the transaction creating its materialization. */
export function putPlan(project: string, experiment: string, realization: string, plan: MaterializationPlan): Op[] {
  const key = planKeys.plan(project, experiment, realization);
  const head = { mzid: plan.mzid, project, experiment, realization };
  const whole = JSON.stringify({ ...head, plan });
  if (Buffer.byteLength(whole) <= INLINE_BYTES) return [{ op: "put", key, value: whole }];
  const { body, chunks } = encodeChunks(JSON.stringify(plan));
  return [
    { op: "put", key, value: JSON.stringify({ ...head, body } satisfies StoredPlan) },
    ...chunkPuts(planKeys.chunks(project, experiment, realization), chunks),
  ];
}

/** The ops that delete a plan and its chunks, for the transaction deleting its materialization. */
export function deletePlan(project: string, experiment: string, realization: string): Op[] {
  return [
    { op: "delete", key: planKeys.plan(project, experiment, realization) },
    { op: "deletePrefix", prefix: planKeys.chunks(project, experiment, realization) },
  ];
}

/** The stored plan, or undefined when there is none. */
export async function readPlan(
  store: Store,
  project: string,
  experiment: string,
  realization: string,
): Promise<MaterializationPlan | undefined> {
  const key = planKeys.plan(project, experiment, realization);
  const got = await readChunked(store, await store.get(key), locate, `plan of ${realization}.${experiment}.${project}`);
  if (!got) return undefined;
  return got.json === undefined ? got.stored.plan : (JSON.parse(got.json) as MaterializationPlan);
}
