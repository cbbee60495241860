/**
 * One batch at a time: what is asked while a batch runs goes in the next one,
 * and what is asked in the same turn of the event loop goes together. A
 * host agent gets many per-resource calls at once (rex's actions); each
 * process or look through /proc they share is one less.
 */
export class Coalescer<T> {
  private queue: T[] = [];
  private scheduled = false;
  private running = false;

  /** `run` takes a batch; the next batch starts once its promise settles. */
  constructor(private readonly run: (batch: T[]) => Promise<unknown>) {}

  add(item: T): void {
    this.queue.push(item);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.running = true;
      void this.run(this.queue.splice(0))
        .catch(() => {})
        .finally(() => {
          this.running = false;
          this.schedule();
        });
    });
  }
}
