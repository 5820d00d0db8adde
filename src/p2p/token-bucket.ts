// A token bucket for the per-host upload bandwidth cap: `take(n)` resolves once n bytes may go.
// Waiters are served in order so one large request cannot starve others. Rate 0 means unlimited.
import type { Clock } from '../clock.ts';
import { PollenError } from '../errors.ts';

export class TokenBucket {
  private readonly clock: Clock;
  private readonly rate: number;
  private readonly burst: number;
  private tokens: number;
  private last: number;
  private queue: Array<{ n: number; resolve: () => void; reject: (e: Error) => void }> = [];
  private timer: { cancel(): void } | undefined;

  constructor(deps: { clock: Clock }, options: { bytesPerSecond: number; burstBytes: number }) {
    this.clock = deps.clock;
    this.rate = options.bytesPerSecond;
    this.burst = Math.max(1, options.burstBytes);
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  take(n: number): Promise<void> {
    if (this.rate <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.queue.push({ n: Math.min(n, this.burst), resolve, reject });
      this.drain();
    });
  }

  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
    for (const w of this.queue.splice(0)) w.reject(new PollenError('ERR_CLOSED', 'upload limiter closed'));
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
  }

  private drain(): void {
    this.refill();
    while (this.queue.length > 0 && this.tokens >= this.queue[0]!.n) {
      const w = this.queue.shift()!;
      this.tokens -= w.n;
      w.resolve();
    }
    if (this.queue.length > 0 && !this.timer) {
      const waitMs = Math.max(1, Math.ceil(((this.queue[0]!.n - this.tokens) * 1000) / this.rate));
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.drain();
      }, waitMs);
    }
  }
}
