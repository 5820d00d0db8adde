// The seed's memory for blob bytes between the registry's socket and the disk, shared by every
// fetch: a fixed budget of bytes (a few write batches). A fetch takes budget for each chunk it
// reads and gives it back once the batch is written; when the budget is spent it first writes what
// it holds, then waits (FIFO), and while it waits it reads nothing, so the registry's stream is held
// back by TCP instead of piling up here. However many blobs are in flight, buffered bytes stay
// below the budget plus one chunk per fetch.
import { PollenError } from '../../src/errors.ts';

export class BufferBudget {
  readonly limitBytes: number;
  private used = 0;
  /** The most bytes held at once (a figure for tests and metrics). */
  peakBytes = 0;
  private readonly waiters: Array<{ bytes: number; resolve: () => void; reject: (err: unknown) => void }> = [];
  private readonly pressure = new Set<() => void>();

  constructor(options: { limitBytes: number }) {
    this.limitBytes = options.limitBytes;
  }

  get usedBytes(): number {
    return this.used;
  }

  /** Takes `bytes` now if the budget allows it (and nobody is waiting ahead). */
  tryTake(bytes: number): boolean {
    if (this.waiters.length > 0 || !this.fits(bytes)) return false;
    this.grant(bytes);
    return true;
  }

  /**
   * Hears when someone waits for budget: a holder then writes what it holds rather than keep it
   * until its batch fills (a registry that trickles would otherwise sit on budget others need).
   */
  onPressure(fn: () => void): () => void {
    this.pressure.add(fn);
    return () => void this.pressure.delete(fn);
  }

  /** Takes `bytes`, waiting in line for them. */
  take(bytes: number, signal: AbortSignal): Promise<void> {
    if (this.tryTake(bytes)) return Promise.resolve();
    for (const fn of this.pressure) fn();
    return new Promise((resolve, reject) => {
      const waiter = {
        bytes,
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject,
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason ?? new PollenError('ERR_ABORTED', 'waiting for seed buffer budget aborted'));
        this.wake();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
    this.wake();
  }

  /** A chunk larger than the whole budget still passes when nothing else is held (never a deadlock). */
  private fits(bytes: number): boolean {
    return this.used + bytes <= this.limitBytes || this.used === 0;
  }

  private grant(bytes: number): void {
    this.used += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.used);
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) {
      const next = this.waiters.shift()!;
      this.grant(next.bytes);
      next.resolve();
    }
  }
}
