/**
 * Each facility's side of the portal's operations view, asked of its commander
 * over the portal↔facility channel (FacilityService.Health): its actions in
 * error with their errors, its live rex workers and what its operator should
 * look at. A facility that does not answer (down, or from before the call)
 * says why instead; the view is never held up longer than `timeoutMs`.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { FacilityHealthReport } from "../health.ts";
import type { Connect } from "./materializer.ts";

export function facilityHealthProbe(
  connect: Connect,
  timeoutMs = 5000,
): (f: { name: string; endpoint: string }) => Promise<FacilityHealthReport> {
  return async (f) => {
    try {
      const r = await connect(f).health({}, { timeoutMs });
      return {
        failed: r.failed.map((a) => ({
          mzid: a.mzid,
          task: a.task,
          action: a.action,
          error: a.error,
          updated: a.updated,
          attempts: a.attempts,
        })),
        workers: r.workers,
        warnings: [...r.warnings],
      };
    } catch (e) {
      const why =
        e instanceof ConnectError && e.code === Code.Unimplemented
          ? "the facility does not report its health (an older facility)"
          : (e as Error).message;
      return { unreachable: why };
    }
  };
}
