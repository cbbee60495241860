/**
 * Asking every active facility something, round after round (its hosts:
 * hosts.ts; its storage key: storage-keys.ts). A round that fails is logged and
 * the next one comes all the same; rounds never overlap (the next is timed from
 * the end of the last), and the timer keeps no process alive.
 */
import type { Store } from "@merge/store";
import { keys, type StoredFacility } from "../objects.ts";

/** The facilities in the store that are active now. */
export async function activeFacilities(store: Store): Promise<StoredFacility[]> {
  return (await store.range(keys.facilities()))
    .map((kv) => JSON.parse(kv.value) as StoredFacility)
    .filter((f) => f.state === "active");
}

export abstract class FacilityRounds {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /** `what` names the rounds in a failure's log line; `intervalMs` is between rounds. */
  constructor(
    private readonly what: string,
    private readonly intervalMs: number,
    private readonly logTo?: (m: string) => void,
  ) {}

  /** One round. */
  abstract poll(): Promise<void>;

  start(): void {
    const round = async () => {
      await this.poll().catch((e: Error) => this.logTo?.(`${this.what}: ${e.message}`));
      if (!this.closed) this.timer = setTimeout(round, this.intervalMs).unref();
    };
    void round();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
