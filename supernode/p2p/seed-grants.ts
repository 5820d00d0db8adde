// Which peer may have which blob from the seed: a (peer, digest) pair is admitted when the task is
// created for a requester the registry admits (seed-admission.ts), or when a preheat job hands the
// peer that blob (the job's credentials were admitted). Seed pieces and the task's metainfo go only
// to admitted pairs. An admission stays while the peer uses it (each use extends it) and goes
// after `idleMs` unused, when the peer leaves the cluster, or when the oldest make room.
import type { Clock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';

export interface SeedGrantsOptions {
  readonly idleMs: number;
  readonly maxEntries: number;
}

export const DEFAULT_SEED_GRANTS: SeedGrantsOptions = { idleMs: 10 * 60_000, maxEntries: 200_000 };

export class SeedGrants {
  private readonly clock: Clock;
  private readonly options: SeedGrantsOptions;
  /** `${digest} ${peerId}` (a digest has no space) → expiry, oldest use first. */
  private readonly until = new Map<string, number>();

  constructor(deps: { clock: Clock }, options: Partial<SeedGrantsOptions> = {}) {
    this.clock = deps.clock;
    this.options = { ...DEFAULT_SEED_GRANTS, ...options };
  }

  admit(peerId: string, digest: Digest): void {
    const key = `${digest} ${peerId}`;
    this.until.delete(key);
    if (this.until.size >= this.options.maxEntries) this.until.delete(this.until.keys().next().value!);
    this.until.set(key, this.clock.now() + this.options.idleMs);
  }

  /** Whether the pair is admitted; a use extends the admission. */
  has(peerId: string, digest: Digest): boolean {
    const key = `${digest} ${peerId}`;
    const until = this.until.get(key);
    if (until === undefined) return false;
    if (until <= this.clock.now()) {
      this.until.delete(key);
      return false;
    }
    this.admit(peerId, digest);
    return true;
  }

  forgetPeer(peerId: string): void {
    for (const key of this.until.keys()) if (key.slice(key.indexOf(' ') + 1) === peerId) this.until.delete(key);
  }

  forgetDigest(digest: Digest): void {
    for (const key of this.until.keys()) if (key.startsWith(`${digest} `)) this.until.delete(key);
  }

  get size(): number {
    return this.until.size;
  }
}
