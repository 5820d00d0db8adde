// A token bucket for a bandwidth cap: `take(n)` resolves once n bytes may go. Waiters are served
// in order (FIFO), so one large request cannot starve others and flows sharing the bucket get turns.
// A request larger than the burst waits for a full bucket and leaves it in debt, so the long-run
// rate holds whatever the chunk sizes. A wait lets a batch gather (BATCH_MS of the rate, at most
// three quarters of the burst), not just the head's bytes: a flow held at its cap then wakes once a
// batch, not once a chunk. What the batch holds beyond the waiters it serves is shared among the
// flows they belong to (each caller names its flow), so flows still take turns, a batch at a time
// (left to whoever asked first, the whole rest went to one flow). Rate 0 means unlimited.
import type { Clock } from '../clock.ts';
import { PollenError } from '../errors.ts';

/**
 * The bytes a wait gathers, in ms of the rate. Woken per 64 KiB chunk, a registry pull capped at
 * 12.5 MB/s cost its peer 2.1-2.6 CPU s for 256 MiB (0.74 uncapped): each wake-up finds the caches
 * cold. In batches of ~47 ms: 1.4-1.6 s, the same wall time. A timer that fires late loses nothing:
 * while flows wait, the bucket holds up to a batch beyond its burst.
 */
export const BATCH_MS = 50;

interface Waiter {
  readonly n: number;
  readonly flow: object | undefined;
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
  /** The last wake's batch beyond its waiters' bytes, a share for each flow it served, until the next wake. */
  private readonly shares = new Map<object, number>();
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

  /** Takes n bytes now, from `flow`'s share or from a bucket that holds them with nobody waiting ahead; false otherwise (nothing taken). */
  tryTake(n: number, flow?: object): boolean {
    if (this.unlimited) return true;
    const share = flow === undefined ? undefined : this.shares.get(flow);
    if (share !== undefined && share >= n && !this.closed) {
      this.shares.set(flow!, share - n);
      return true;
    }
    if (this.closed || this.queue.length > 0) return false;
    this.refill();
    if (this.tokens < Math.min(n, this.burst)) return false;
    this.tokens -= n;
    return true;
  }

  /** Resolves once n bytes of `flow` (the caller's stream, socket or child: see the top) may go; rejects with the signal's reason when aborted while waiting. */
  take(n: number, signal?: AbortSignal, flow?: object): Promise<void> {
    if (this.tryTake(n, flow)) return Promise.resolve();
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
        flow,
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
    this.shares.clear();
    for (const w of this.queue.splice(0)) w.reject(new PollenError('ERR_CLOSED', 'bandwidth limiter closed'));
  }

  private refill(): void {
    const now = this.clock.now();
    // While flows wait, what accrued while their timer ran late is theirs: up to a batch beyond the burst.
    const cap = this.queue.length > 0 ? this.burst + this.batch : this.burst;
    this.tokens = Math.min(cap, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
  }

  private reschedule(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.drain();
  }

  /** Serves the waiters the bucket can pay; at a wake (`woken`: the timer), shares the batch's rest among their flows. */
  private drain(woken = false): void {
    this.refill();
    if (woken) {
      for (const share of this.shares.values()) this.tokens += share; // the last batch's shares not used
      this.shares.clear();
    }
    const served: object[] = [];
    while (this.queue.length > 0 && this.tokens >= Math.min(this.queue[0]!.n, this.burst)) {
      const w = this.queue.shift()!;
      this.tokens -= w.n;
      if (woken && w.flow !== undefined && !served.includes(w.flow)) served.push(w.flow);
      w.resolve();
    }
    if (served.length > 0 && this.tokens > 0) {
      for (const flow of served) this.shares.set(flow, this.tokens / served.length);
      this.tokens = 0;
    }
    if (this.queue.length > 0 && !this.timer) {
      const want = Math.max(Math.min(this.queue[0]!.n, this.burst), this.batch) - this.tokens;
      const waitMs = Math.max(1, Math.ceil((want * 1000) / this.bytesPerSecond));
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.drain(true);
      }, waitMs);
    }
  }
}
