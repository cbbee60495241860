/**
 * The portal lists its facilities' storage keys at its storage server: every
 * `intervalMs` it asks each active facility for the public key it mounts the
 * portal's storage with (FacilityService.StorageKey, over the same mutual TLS
 * as every call to a facility) and, when the set changed, hands the keys to
 * the server (`StorageKeys.authorize`; xdc's StorageServer). So a facility on
 * another machine started with `--storage sftp://…` mounts the portal's
 * `home/` and `proj/` without an operator copying keys: each facility made its
 * key pair where it lives, only the public key travels. A facility that does
 * not answer keeps the key it answered last; a deleted or inactive one's key
 * goes at the next round.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { Store } from "@merge/store";
import type { StoredFacility } from "../objects.ts";
import { activeFacilities, FacilityRounds } from "./facility-rounds.ts";
import type { Connect } from "./materializer.ts";

/** The portal's storage server as this needs it: the whole list of keys that may mount. */
export interface StorageKeys {
  authorize(keys: readonly string[]): void;
}

export interface StorageKeyWatchOptions {
  store: Store;
  connect: Connect;
  server: StorageKeys;
  /** Between rounds, ms (default 2,000: a facility waiting to mount waits at most about this). */
  intervalMs?: number;
  /** Deadline of one facility's answer, ms (default 5,000). */
  timeoutMs?: number;
  log?: (m: string) => void;
}

export class StorageKeyWatch extends FacilityRounds {
  /** The key each facility answered last. */
  private readonly known = new Map<string, string>();
  private listed = "";

  constructor(private readonly o: StorageKeyWatchOptions) {
    super("facility storage keys", o.intervalMs ?? 2000, o.log);
  }

  /** One round: every active facility asked; the server's list replaced when it changed. */
  async poll(): Promise<void> {
    const facilities = await activeFacilities(this.o.store);
    const active = new Set(facilities.map((f) => f.name));
    for (const name of this.known.keys()) if (!active.has(name)) this.known.delete(name);
    await Promise.all(facilities.map((f) => this.pollOne(f)));
    const list = [...new Set(this.known.values())].sort();
    if (list.join("\n") === this.listed) return;
    this.o.server.authorize(list);
    this.listed = list.join("\n");
    this.o.log?.(`storage server: ${list.length} facility key(s) listed`);
  }

  private async pollOne(f: StoredFacility): Promise<void> {
    try {
      const res = await this.o.connect(f).storageKey({}, { timeoutMs: this.o.timeoutMs ?? 5000 });
      if (res.publicKey) this.known.set(f.name, res.publicKey);
      else this.known.delete(f.name);
    } catch (e) {
      // A facility from before storage keys has none to list; one that does not answer keeps its last.
      if (e instanceof ConnectError && e.code === Code.Unimplemented) this.known.delete(f.name);
    }
  }
}
