/**
 * The portal learns its facilities' hosts: every `intervalMs` it asks each
 * active facility for its hosts (FacilityService.Hosts) and keeps what it
 * answers (host-state.ts), so realization avoids the resources of drained and
 * down hosts. A facility that does not answer keeps its last report (its being
 * unreachable is the materializer's business); one that answers with no hosts
 * (a facility of one machine) or does not know the call has nothing to avoid.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { Store } from "@merge/store";
import { type FacilityHosts, putFacilityHosts } from "../host-state.ts";
import type { StoredFacility } from "../objects.ts";
import { activeFacilities, FacilityRounds } from "./facility-rounds.ts";
import type { Connect } from "./materializer.ts";

export interface HostWatchOptions {
  store: Store;
  connect: Connect;
  /** Between rounds, ms (default 5,000). */
  intervalMs?: number;
  /** Deadline of one facility's answer, ms (default 5,000). */
  timeoutMs?: number;
  log?: (m: string) => void;
}

export class HostWatch extends FacilityRounds {
  /** The last failure logged per facility, so a facility that stays down is logged once. */
  private readonly failing = new Map<string, string>();

  constructor(private readonly o: HostWatchOptions) {
    super("facility hosts", o.intervalMs ?? 5000, o.log);
  }

  /** One round: every active facility asked, what changed stored. */
  async poll(): Promise<void> {
    const facilities = await activeFacilities(this.o.store);
    await Promise.all(facilities.map((f) => this.pollOne(f)));
  }

  private async pollOne(f: StoredFacility): Promise<void> {
    let res: Awaited<ReturnType<ReturnType<Connect>["hosts"]>>;
    try {
      res = await this.o.connect(f).hosts({}, { timeoutMs: this.o.timeoutMs ?? 5000 });
    } catch (e) {
      // A facility from before host reports: nothing to avoid there.
      if (e instanceof ConnectError && e.code === Code.Unimplemented) return;
      const msg = (e as Error).message;
      if (this.failing.get(f.name) !== msg) this.o.log?.(`facility ${f.name}: hosts unknown: ${msg}`);
      this.failing.set(f.name, msg);
      return;
    }
    this.failing.delete(f.name);
    const report: FacilityHosts = {
      facility: f.name,
      observed: new Date().toISOString(),
      hosts: res.hosts.map((h) => ({
        name: h.name,
        state: h.state,
        cores: h.cores,
        memory: h.memory,
        disk: h.disk,
        resources: [...h.resources],
        ...(h.measured
          ? { free: { cores: h.coresFree, memory: h.memoryFree, disk: h.disk }, measured: h.measured }
          : {}),
      })),
    };
    if (await putFacilityHosts(this.o.store, report)) {
      const not = report.hosts.filter((h) => h.state !== "up").map((h) => `${h.name} ${h.state}`);
      this.o.log?.(`facility ${f.name}: ${report.hosts.length} hosts${not.length ? ` (${not.join(", ")})` : ""}`);
    }
  }
}
