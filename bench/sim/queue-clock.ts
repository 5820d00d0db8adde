// The simulation's time as a Clock: the event queue's now, timers as queue events. The peer's
// transfer logic (peer/p2p/p2p-transfer.ts) runs on it unchanged.
import type { Clock, Timer } from '../../src/clock.ts';
import type { EventQueue } from './event-queue.ts';

export class QueueClock implements Clock {
  constructor(private readonly queue: EventQueue) {}

  now(): number {
    return this.queue.now;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const e = this.queue.after(ms, fn);
    return { cancel: () => this.queue.cancel(e) };
  }

  setInterval(fn: () => void, ms: number): Timer {
    const every = Math.max(1, ms);
    let current = this.queue.after(every, tick.bind(this));
    let cancelled = false;
    function tick(this: QueueClock): void {
      if (cancelled) return;
      current = this.queue.after(every, tick.bind(this));
      fn();
    }
    return {
      cancel: () => {
        cancelled = true;
        this.queue.cancel(current);
      },
    };
  }

  soon(fn: () => void): Timer {
    return this.setTimeout(fn, 0);
  }
}
