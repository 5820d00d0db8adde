// Each registered peer's allowance of cluster API calls (heartbeats, tasks, syncs, the preheat work
// poll): a token bucket per peer id, `perSecond` refilled up to `burst`. A member that calls faster
// is answered 429 (ERR_TOO_MANY_REQUESTS) without the route running, so it cannot make the
// supernode scan (a sync walks up to scanLimit peers) as often as it likes; a peer keeps what a
// refused sync would have reported for its next one. The seed's piece route is not counted: its
// rate is the data's, bounded by the seed grants (at most maxSeedGrants leases per peer).
// A peer legitimately sends a few calls a second (one batched sync per turn, a heartbeat, a poll);
// an image's layers open their tasks together, which the burst covers.
import type { Clock } from '../../src/clock.ts';

interface Bucket {
  tokens: number;
  at: number;
}

export const DEFAULT_PEER_REQUEST_RATE = 50;

/** Entries kept before the idle ones (a full bucket, the same as none) are dropped. */
const PRUNE_ABOVE = 4096;

export class PeerRequestBudget {
  private readonly clock: Clock;
  private readonly perSecond: number;
  private readonly burst: number;
  private readonly buckets = new Map<string, Bucket>();

  /** `perSecond` 0: no limit. */
  constructor(deps: { clock: Clock }, options: { perSecond: number; burst?: number }) {
    this.clock = deps.clock;
    this.perSecond = options.perSecond;
    this.burst = options.burst ?? Math.max(256, 5 * options.perSecond);
  }

  /** Takes one call from `peerId`'s allowance; false when it has none left. */
  admit(peerId: string): boolean {
    if (this.perSecond <= 0) return true;
    const now = this.clock.now();
    let b = this.buckets.get(peerId);
    if (!b) {
      if (this.buckets.size >= PRUNE_ABOVE) this.prune(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(peerId, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }

  private prune(now: number): void {
    for (const [id, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(id);
  }
}
