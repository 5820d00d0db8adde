// Each registered peer's allowance of cluster API calls (heartbeats, tasks, syncs, the preheat work
// poll): a token bucket per peer id, `perSecond` refilled up to `burst`. A member that calls faster
// is answered 429 (ERR_TOO_MANY_REQUESTS) without the route running, so it cannot make the
// supernode scan (a sync walks up to scanLimit peers) as often as it likes; a peer keeps what a
// refused sync would have reported for its next one. The seed's piece route is not counted: its
// rate is the data's, bounded by the seed grants (at most maxSeedGrants leases per peer).
// A peer legitimately sends a few calls a second (one batched sync per turn, a heartbeat, a poll);
// an image's layers open their tasks together, which the burst covers. A peer fetching from the
// seed syncs once a piece besides: each settled seed lease is reported, and the next granted, by
// a sync. So every seed piece sent whole on a lease of the peer's pays for a call, once a lease
// (`credit`, SEED_BYTES_PER_CALL; routes-p2p.ts, SeedLeases.creditSent): a lone
// pull on a fast network (loopback: ~300 pieces a second) spent the burst in a second, was refused
// and waited a whole Retry-After second with its seed line empty (a 256 MiB pull took 3.3 s where
// the seed held the blob after 0.7 s). What a credit lets a peer make the supernode do (one sync,
// 50-100 us) is a fraction of what sending the bytes that earned it cost the supernode.
// An answer costs by its bytes too: one call per ANSWER_BYTES_PER_CALL it carries, the first in
// the admission, the rest taken after it is sent (a debt the peer's next calls wait out). A peer
// that left out `knownHashes`, or created its task again and again, was sent every piece hash each
// time (43 KB at 1,000 pieces) for one call: 2 MB/s of the supernode host's uplink at the rate, and
// a mean answer so large that the pacing (sync-pacer.ts) spaced every peer's syncs by it. Now what
// one peer is sent is at most the burst and rate in these units, 200 KB/s at the default rate.
import type { Clock } from '../../src/clock.ts';
import { PollenError } from '../../src/errors.ts';

interface Bucket {
  tokens: number;
  at: number;
}

export const DEFAULT_PEER_REQUEST_RATE = 50;
/**
 * Answer bytes one call's allowance pays for. A peer's answers are a few hundred bytes (it reads
 * piece proofs, so it asks no hashes); a batch of 64 syncs with the holder counts of 2,048-piece
 * tasks, ~175 KB every 4 s, is ~11 calls a second of it.
 */
export const ANSWER_BYTES_PER_CALL = 4096;

/**
 * Seed bytes sent whole that pay for one call (at most one a piece): a 64 KiB piece (the smallest
 * layout but a tiny blob's one piece) or larger pays for the sync that follows it; a small blob's
 * one piece of a few hundred bytes for almost none, however often it is fetched.
 */
export const SEED_BYTES_PER_CALL = 64 * 1024;

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

  /**
   * Takes one call from `peerId`'s allowance, or gives the refusal to answer with (429, whose
   * Retry-After is the whole seconds until a call is back: after an answer's debt, more than one).
   */
  admitOrRefuse(peerId: string): PollenError | undefined {
    if (this.admit(peerId)) return undefined;
    const b = this.buckets.get(peerId);
    const seconds = b ? Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond)) : 1;
    return new PollenError('ERR_TOO_MANY_REQUESTS', `peer ${peerId} called faster than its allowance; try again in ${seconds} s`, { retryAfter: seconds });
  }

  /**
   * `peerId` was sent `bytes` of a seed piece whole: its allowance gains up to one call
   * (SEED_BYTES_PER_CALL), to at most the burst. A peer with no allowance on record has it whole.
   */
  credit(peerId: string, bytes: number): void {
    const b = this.buckets.get(peerId);
    if (this.perSecond <= 0 || !b || !(bytes > 0)) return;
    const now = this.clock.now();
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond + Math.min(1, bytes / SEED_BYTES_PER_CALL));
    b.at = now;
  }

  /**
   * `peerId` was sent an answer of `bytes`: the calls beyond the first it is worth (the first was
   * admitted) come off its allowance, which may go below zero: the peer's calls are refused until
   * the refill has paid it (an answer is at most a batch's, ~1 s of the default rate).
   */
  charge(peerId: string, bytes: number): void {
    if (this.perSecond <= 0 || !(bytes > ANSWER_BYTES_PER_CALL)) return;
    const b = this.buckets.get(peerId);
    if (!b) return;
    b.tokens -= Math.ceil(bytes / ANSWER_BYTES_PER_CALL) - 1;
  }

  get size(): number {
    return this.buckets.size;
  }

  private prune(now: number): void {
    for (const [id, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(id);
  }
}
