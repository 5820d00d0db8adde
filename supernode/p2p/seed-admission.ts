// May this requester have this blob? The seed asks the registry the question a registry answers:
// HEAD /v2/<name>/blobs/<digest> with the requester's own credential, in a registry the supernode is
// configured for. A yes (with the declared size) is remembered briefly, keyed by everything it
// depends on: credential, registry, repository and digest; a no is never remembered. Requesters
// with the same key asking at once share one HEAD.
import { createHash } from 'node:crypto';
import type { Clock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { PollenError, toPollenError } from '../../src/errors.ts';
import { blobStatusError, type SeedFetcher } from './seed-fetcher.ts';
import type { SeedSource } from './seed-upstreams.ts';

export interface SeedAdmissionOptions {
  /** How long a registry's yes is trusted. */
  readonly ttlMs: number;
  /** Decisions kept at most (the oldest go first). */
  readonly maxEntries: number;
  /** A HEAD that takes longer fails as unavailable. */
  readonly timeoutMs: number;
}

export const DEFAULT_SEED_ADMISSION: SeedAdmissionOptions = { ttlMs: 30_000, maxEntries: 10_000, timeoutMs: 30_000 };

export class SeedAdmission {
  private readonly fetcher: SeedFetcher;
  private readonly clock: Clock;
  private readonly options: SeedAdmissionOptions;
  private readonly allowed = new Map<string, { size: number; until: number }>();
  private readonly inflight = new Map<string, Promise<number>>();
  /** HEADs sent to registries (a figure for tests and metrics). */
  probes = 0;

  constructor(deps: { fetcher: SeedFetcher; clock: Clock }, options: Partial<SeedAdmissionOptions> = {}) {
    this.fetcher = deps.fetcher;
    this.clock = deps.clock;
    this.options = { ...DEFAULT_SEED_ADMISSION, ...options };
  }

  /**
   * The blob's size as the registry declares it, once the registry said this credential may read
   * it; throws ERR_UNAUTHORIZED / ERR_DENIED / ERR_BLOB_UNKNOWN / ERR_UPSTREAM_* otherwise.
   */
  check(source: SeedSource, digest: Digest, signal: AbortSignal): Promise<number> {
    const key = keyOf(source, digest);
    const known = this.allowed.get(key);
    if (known && known.until > this.clock.now()) return Promise.resolve(known.size);
    if (known) this.allowed.delete(key);
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.ask(source, digest, key, signal).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  get size(): number {
    return this.allowed.size;
  }

  private async ask(source: SeedSource, digest: Digest, key: string, signal: AbortSignal): Promise<number> {
    this.probes++;
    let res: { status: number; size: number | undefined };
    try {
      res = await this.fetcher.head(source, digest, AbortSignal.any([signal, AbortSignal.timeout(this.options.timeoutMs)]));
    } catch (err) {
      throw toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE');
    }
    if (res.status !== 200) throw blobStatusError(res.status, source, digest);
    if (res.size === undefined) {
      throw new PollenError('ERR_UPSTREAM_PROTOCOL', `registry ${source.registry} declared no length for blob ${digest}`, { upstream: source.registry });
    }
    if (this.allowed.size >= this.options.maxEntries) this.allowed.delete(this.allowed.keys().next().value!);
    this.allowed.set(key, { size: res.size, until: this.clock.now() + this.options.ttlMs });
    return res.size;
  }
}

/** The credential is hashed: the key is all a decision depends on, and no secret sits in the map. */
function keyOf(source: SeedSource, digest: Digest): string {
  const credential = source.authorization === undefined ? '-' : createHash('sha256').update(source.authorization).digest('hex');
  return `${credential} ${source.registry} ${source.name} ${digest}`;
}
