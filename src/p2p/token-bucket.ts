// A token bucket for a bandwidth cap: `take(n)` resolves once n bytes may go. Waiters are served
// in order (FIFO), so one large request cannot starve others and flows sharing the bucket get turns.
// A request larger than the burst waits for a full bucket and leaves it in debt, so the long-run
// rate holds whatever the chunk sizes. A wait lets a batch gather (BATCH_MS of the rate, at most
// three quarters of the burst), not just the head's bytes: a flow held at its cap then wakes once
// a batch, not once a chunk. Rate 0 means unlimited.
import type { Clock } from '../clock.ts';
import { PollenError } from '../errors.ts';

/**
 * The bytes a wait gathers, in ms of the rate. Woken per 64 KiB chunk, a registry pull capped at
 * 12.5 MB/s cost its peer 1.8-2.1 CPU s for 256 MiB (0.74 uncapped): each wake-up finds the caches
 * cold. Batches of ~47 ms: 1.37-1.48 s, the same wall time. The rest of the burst is room for a
 * timer that fires late, so no bytes of the rate are lost to the cap.
 */
export const BATCH_MS = 50;

interface Waiter {
  readonly n: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export class TokenBucket {
  private readonly clock: Clock;
  readonly bytesPerSecond: number;
  private readonly burst: number;
  /** What a wait gathers at least (BATCH_MS). */
  private readonly batch: number;
  private tokens: number;
  private last: number;
  private queue: Waiter[] = [];
  private timer: { cancel(): void } | undefined;
  private closed = false;

  constructor(deps: { clock: Clock }, options: { bytesPerSecond: number; burstBytes: number }) {
    this.clock = deps.clock;
    this.bytesPerSecond = options.bytesPerSecond;
    this.burst = Math.max(1, options.burstBytes);
    this.batch = Math.min(this.burst * 0.75, (this.bytesPerSecond * BATCH_MS) / 1000);
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  get unlimited(): boolean {
    return this.bytesPerSecond <= 0;
  }

  /** Takes n bytes now if the bucket holds them and nobody waits ahead; false otherwise (nothing taken). */
  tryTake(n: number): boolean {
    if (this.unlimited) return true;
    if (this.closed || this.queue.length > 0) return false;
    this.refill();
    if (this.tokens < Math.min(n, this.burst)) return false;
    this.tokens -= n;
    return true;
  }

  /** Resolves once n bytes may go; rejects with the signal's reason when aborted while waiting. */
  take(n: number, signal?: AbortSignal): Promise<void> {
    if (this.tryTake(n)) return Promise.resolve();
    if (this.closed) return Promise.reject(new PollenError('ERR_CLOSED', 'bandwidth limiter closed'));
    if (signal?.aborted) return Promise.reject(signal.reason ?? new PollenError('ERR_ABORTED', 'waiting for bandwidth aborted'));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.queue.indexOf(waiter);
        if (i < 0) return;
        this.queue.splice(i, 1);
        reject(signal?.reason ?? new PollenError('ERR_ABORTED', 'waiting for bandwidth aborted'));
        // The head may have left: the next one's wait is computed afresh.
        if (i === 0) this.reschedule();
      };
      const waiter: Waiter = {
        n,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
      this.drain();
    });
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    for (const w of this.queue.splice(0)) w.reject(new PollenError('ERR_CLOSED', 'bandwidth limiter closed'));
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
  }

  private reschedule(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.drain();
  }

  private drain(): void {
    this.refill();
    while (this.queue.length > 0 && this.tokens >= Math.min(this.queue[0]!.n, this.burst)) {
      const w = this.queue.shift()!;
      this.tokens -= w.n;
      w.resolve();
    }
    if (this.queue.length > 0 && !this.timer) {
      const want = Math.max(Math.min(this.queue[0]!.n, this.burst), this.batch) - this.tokens;
      const waitMs = Math.max(1, Math.ceil((want * 1000) / this.bytesPerSecond));
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.drain();
      }, waitMs);
    }
  }
}
