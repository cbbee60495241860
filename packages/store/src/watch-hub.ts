/**
 * Watch delivery for the local backends: each watch keeps a cursor (the last
 * revision it has seen) and is fed from the backend's change history, a bounded
 * window of revisions at a time, so a watch from far back neither misses events
 * nor loads the whole history into memory.
 */
import { StoreError } from "./errors.ts";
import { checkPrefix } from "./key.ts";
import type { Watch, WatchEvent, WatchOptions } from "./kv.ts";

export interface History {
  head(): number;
  /** Events before this revision have been discarded. */
  compactedBefore(): number;
  /** Events under `prefix` with `from < revision <= to`, in revision then op order. */
  events(prefix: string, from: number, to: number): WatchEvent[];
}

interface Watcher {
  prefix: string;
  cursor: number;
  onEvent: (e: WatchEvent) => void;
  opts: WatchOptions;
  cancelled: boolean;
}

/** Revisions read per history query while catching up. */
const WINDOW = 1024;

export function checkFromRevision(fromRevision: unknown): number {
  if (typeof fromRevision !== "number" || !Number.isSafeInteger(fromRevision) || fromRevision < 0) {
    throw new StoreError(
      "invalid",
      `watch fromRevision must be an integer >= 0 (0 = from now), got ${String(fromRevision)}`,
    );
  }
  return fromRevision;
}

export function compactedError(fromRevision: number, compactedBefore?: number): StoreError {
  const before = compactedBefore === undefined ? "" : ` before revision ${compactedBefore}`;
  return new StoreError(
    "compacted",
    `watch from revision ${fromRevision}: the history${before} was compacted; re-read and watch from a later revision`,
  );
}

export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  private scheduled = false;
  private pumping = false;

  constructor(private readonly history: History) {}

  get size(): number {
    return this.watchers.size;
  }

  add(prefix: string, fromRevision: number, onEvent: (e: WatchEvent) => void, opts: WatchOptions = {}): Watch {
    checkPrefix(prefix);
    checkFromRevision(fromRevision);
    const head = this.history.head();
    const from = fromRevision === 0 ? head : fromRevision;
    const compacted = this.history.compactedBefore();
    if (from + 1 < compacted) throw compactedError(fromRevision, compacted);
    const w: Watcher = { prefix, cursor: from, onEvent, opts, cancelled: false };
    this.watchers.add(w);
    if (from < head) this.schedule();
    return {
      cancel: async () => {
        w.cancelled = true;
        this.watchers.delete(w);
      },
    };
  }

  /** Delivers pending events soon, outside the caller's stack (and its transaction). */
  schedule(): void {
    if (this.scheduled || this.watchers.size === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Delivers every event up to the current head to every watch. */
  pump(): void {
    if (this.pumping || this.watchers.size === 0) return;
    this.pumping = true;
    try {
      const head = this.history.head();
      for (const w of this.watchers) {
        while (!w.cancelled && w.cursor < head) {
          const compacted = this.history.compactedBefore();
          if (w.cursor + 1 < compacted) {
            this.fail(w, compactedError(w.cursor, compacted));
            break;
          }
          const to = Math.min(head, w.cursor + WINDOW);
          for (const e of this.history.events(w.prefix, w.cursor, to)) {
            if (w.cancelled) break;
            try {
              w.onEvent(e);
            } catch (err) {
              this.fail(w, err instanceof Error ? err : new Error(String(err)));
            }
          }
          if (!w.cancelled) w.cursor = to;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private fail(w: Watcher, err: Error): void {
    w.cancelled = true;
    this.watchers.delete(w);
    if (w.opts.onError) w.opts.onError(err);
    else process.emitWarning(`store watch on ${JSON.stringify(w.prefix)} ended: ${err.message}`);
  }

  closeAll(): void {
    for (const w of this.watchers) w.cancelled = true;
    this.watchers.clear();
  }
}
