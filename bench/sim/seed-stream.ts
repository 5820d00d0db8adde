// The seed's streams from the registry, on the supernode host's downlink. The seed fetches every
// blob of the image at once and in order, the streams sharing what reaches the host equally: while
// k streams are unfinished each gets a k-th of the rate, so at any moment every unfinished stream
// holds the same number of bytes p, and a blob of size s holds min(p, s). The rate is the
// registry's upload cap less what the supernode API's requests take of the same downlink
// (apiDownlinkShare in sim-api.ts sets it every window): on a real supernode host the peers'
// syncs arrive on the link the registry's bytes do, and at 10,000 peers they are a third of it
// while the seed streams. The arrival of a byte is known only once the rates up to it are: a
// wait is planned at the present rate and planned again if the rate fell meanwhile.

/** What the stream needs of the event queue. */
export interface StreamClock {
  readonly now: number;
  at(ms: number, fn: () => void): void;
}

/** Bytes short of a target that still count as there (the progress is a sum of float steps). */
export const SLACK_BYTES = 0.5;

export class SeedStream {
  private readonly clock: StreamClock;
  private readonly sizes: readonly number[];
  /** The distinct sizes, ascending: where the number of unfinished streams changes. */
  private readonly ends: readonly number[];
  /** Bytes each unfinished stream held at `atMs`. */
  private p = 0;
  private atMs: number;
  /** All the streams' bytes per second together. */
  private rate: number;
  /** Waits not over yet (whenHas), planned again when the rate rises. */
  private readonly waits = new Set<{ readonly bytes: number; readonly then: () => void }>();

  constructor(clock: StreamClock, sizes: readonly number[], bytesPerS: number) {
    if (!(bytesPerS > 0)) throw new Error(`a seed stream needs a positive rate, not ${bytesPerS}`);
    this.clock = clock;
    this.sizes = sizes;
    this.ends = [...new Set(sizes)].sort((a, b) => a - b);
    this.atMs = clock.now;
    this.rate = bytesPerS;
  }

  get bytesPerS(): number {
    return this.rate;
  }

  /** Bytes each unfinished stream holds now (a blob of size s holds min(this, s)). */
  progress(): number {
    return this.progressAt(this.clock.now);
  }

  /** From now on the streams get `bytesPerS` together. */
  setRate(bytesPerS: number): void {
    if (!(bytesPerS > 0)) throw new Error(`a seed stream needs a positive rate, not ${bytesPerS}`);
    const now = this.clock.now;
    this.p = this.progressAt(now);
    this.atMs = now;
    const rose = bytesPerS > this.rate;
    this.rate = bytesPerS;
    // A wait planned at a lower rate would end late: plan each again (a fall is caught when it ends).
    if (rose) for (const w of this.waits) this.plan(w);
  }

  /** True once every stream holds `bytes` (a blob's byte b is there once the progress reaches b). */
  has(bytes: number): boolean {
    return this.progress() >= bytes - SLACK_BYTES;
  }

  /** When the progress reaches `bytes` at the present rate (ms; now if it has). */
  plannedAt(bytes: number): number {
    if (this.has(bytes)) return this.clock.now;
    let p = this.p;
    let t = this.atMs;
    for (const end of this.ends) {
      if (end <= p) continue;
      const to = Math.min(end, bytes);
      t += (((to - p) * this.unfinished(p)) / this.rate) * 1000;
      p = to;
      if (p >= bytes) break;
    }
    return t;
  }

  /** Runs `then` once the progress reaches `bytes`: at once if it has, else when it does. */
  whenHas(bytes: number, then: () => void): void {
    if (this.has(bytes)) return then();
    const wait = { bytes, then };
    this.waits.add(wait);
    this.plan(wait);
  }

  private plan(wait: { readonly bytes: number; readonly then: () => void }): void {
    this.clock.at(Math.max(this.clock.now, this.plannedAt(wait.bytes)), () => {
      // Over already (planned again after a rise), or not yet (the rate fell): planned again.
      if (!this.waits.has(wait)) return;
      if (!this.has(wait.bytes)) return this.plan(wait);
      this.waits.delete(wait);
      wait.then();
    });
  }

  private unfinished(p: number): number {
    let n = 0;
    for (const s of this.sizes) if (s > p) n++;
    return n;
  }

  private progressAt(t: number): number {
    let p = this.p;
    let budget = ((t - this.atMs) / 1000) * this.rate;
    for (const end of this.ends) {
      if (end <= p) continue;
      const n = this.unfinished(p);
      const need = (end - p) * n;
      if (budget < need) return p + budget / n;
      budget -= need;
      p = end;
    }
    return p;
  }
}
