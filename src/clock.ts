// Injected time, so unit tests drive a manual clock and never sleep, and the simulation drives the
// peer's own transfer logic on simulated time (bench/sim).
export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  /** Runs fn every `ms` until cancelled. */
  setInterval(fn: () => void, ms: number): Timer;
  /** Runs fn once the current burst of work is over (setImmediate), before any later timer. */
  soon(fn: () => void): Timer;
}

/**
 * Milliseconds from `now` to the next point of the grid `phase + k * period`, at least 1. A timer
 * that fires on a grid point of a fractional clock (the simulation's) can read a time a rounding
 * error short of it, and a wait of that much added to `now` is `now` again: the simulation then ran
 * the same tick forever (bench sim, some seeds).
 */
export function delayToGrid(now: number, phase: number, period: number): number {
  const wait = period - ((((now - phase) % period) + period) % period);
  return wait < 1 ? wait + period : wait;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref?.();
    return { cancel: () => clearInterval(t) };
  },
  soon(fn) {
    const t = setImmediate(fn);
    return { cancel: () => clearImmediate(t) };
  },
};

/**
 * The system's timers with a clock that never steps: milliseconds since the epoch as they were when
 * the process started, plus the monotonic time since (performance.now, CLOCK_MONOTONIC). For
 * durations and deadlines that stay in the process (a transfer's syncs and stall timers, the
 * supernode's pacing, leases and heart-beat deadlines): Date.now steps when the wall clock is set,
 * and a step back of an hour stopped a transfer's periodic syncs and its dead-supernode fallback
 * for that hour (each waited for a time that had moved away). Times that are stored or compared
 * with other processes' and files' (an mtime, a job's timestamps) stay on systemClock.
 */
export const steadyClock: Clock = { ...systemClock, now: () => Math.floor(performance.timeOrigin + performance.now()) };

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock that moves only when told to: `advance(ms)` runs the timers that fall due, in time order (ties in the order they were set). */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const timer: ManualTimer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  setInterval(fn: () => void, ms: number): Timer {
    const every = Math.max(1, ms);
    let current: Timer | undefined;
    let cancelled = false;
    const arm = (): void => {
      current = this.setTimeout(() => {
        if (cancelled) return;
        arm();
        fn();
      }, every);
    };
    arm();
    return {
      cancel: () => {
        cancelled = true;
        current?.cancel();
      },
    };
  }

  soon(fn: () => void): Timer {
    return this.setTimeout(fn, 0);
  }

  /** When the next timer falls due (undefined when none waits). */
  nextDueAt(): number | undefined {
    let at: number | undefined;
    for (const x of this.timers) if (!x.cancelled && (at === undefined || x.at < at)) at = x.at;
    return at;
  }

  /** Timers waiting to run. */
  get pending(): number {
    return this.timers.filter((x) => !x.cancelled).length;
  }

  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      let due: ManualTimer | undefined;
      for (const x of this.timers) if (!x.cancelled && x.at <= until && (!due || x.at < due.at || (x.at === due.at && x.seq < due.seq))) due = x;
      if (!due) break;
      this.t = due.at;
      due.cancelled = true;
      due.fn();
    }
    this.timers = this.timers.filter((x) => !x.cancelled);
    this.t = until;
  }
}
