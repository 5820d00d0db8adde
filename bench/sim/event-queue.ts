// The clock of the discrete-event simulation: a binary min-heap of events ordered by time, ties
// broken by insertion order, so a run is deterministic. Events can be cancelled (lazily: a
// cancelled event stays in the heap and is skipped when it comes up; when cancelled entries
// outnumber live ones the heap is rebuilt without them, so memory stays bounded by the live
// events even when flows far in the future are rescheduled over and over).

export interface SimEvent {
  readonly atMs: number;
  cancelled: boolean;
}

interface Entry extends SimEvent {
  readonly seq: number;
  readonly fn: () => void;
  queued: boolean;
}

/** Below this many entries the heap is never compacted. */
const COMPACT_MIN_ENTRIES = 4096;

export class EventQueue {
  private heap: Entry[] = [];
  private seq = 0;
  private nowMs = 0;
  private processed = 0;
  private cancelledQueued = 0;

  get now(): number {
    return this.nowMs;
  }

  /** Events run so far. */
  get eventsRun(): number {
    return this.processed;
  }

  get pending(): number {
    return this.heap.length;
  }

  at(atMs: number, fn: () => void): SimEvent {
    if (!(atMs >= this.nowMs)) throw new Error(`cannot schedule an event in the past (${atMs} < ${this.nowMs})`);
    const e: Entry = { atMs, seq: this.seq++, fn, cancelled: false, queued: true };
    this.heap.push(e);
    this.up(this.heap.length - 1);
    return e;
  }

  after(delayMs: number, fn: () => void): SimEvent {
    return this.at(this.nowMs + Math.max(0, delayMs), fn);
  }

  cancel(e: SimEvent | undefined): void {
    if (!e || e.cancelled) return;
    e.cancelled = true;
    if ((e as Entry).queued) {
      this.cancelledQueued++;
      if (this.heap.length >= COMPACT_MIN_ENTRIES && this.cancelledQueued * 2 > this.heap.length) this.compact();
    }
  }

  /** Drops cancelled entries and restores the heap order. */
  private compact(): void {
    this.heap = this.heap.filter((e) => {
      if (e.cancelled) e.queued = false;
      return !e.cancelled;
    });
    this.cancelledQueued = 0;
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  /** Runs events in order until none is left, the time limit passes, or stop() returns true. */
  run(options: { untilMs?: number; stop?: () => boolean; maxEvents?: number } = {}): void {
    const until = options.untilMs ?? Infinity;
    const max = options.maxEvents ?? Infinity;
    for (let n = 0; n < max && this.step(until); n++) if (options.stop?.()) break;
  }

  /** Runs the next event due by `until` (skipping cancelled ones); false when there is none. */
  private step(until: number): boolean {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (top.atMs > until) return false;
      this.pop();
      top.queued = false;
      if (top.cancelled) {
        this.cancelledQueued--;
        continue;
      }
      this.nowMs = top.atMs;
      top.fn();
      this.processed++;
      return true;
    }
    return false;
  }

  /**
   * As `run`, letting the promise callbacks an event set off run before the next event (the peer's
   * transfer logic is asynchronous): each event is followed by a turn of the Node event loop.
   */
  async runSettling(options: { untilMs?: number; stop?: () => boolean } = {}): Promise<void> {
    const until = options.untilMs ?? Infinity;
    while (this.step(until)) {
      await new Promise<void>((r) => setImmediate(r));
      if (options.stop?.()) break;
    }
  }

  private less(a: Entry, b: Entry): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private pop(): void {
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
