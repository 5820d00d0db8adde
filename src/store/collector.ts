// Garbage collection of a managed store, at start, every `intervalMs`, and on demand (`pollen gc`):
// removes abandoned ingests (no live download writes them and none was written for
// `abandonedIngestMs`), expires blobs not read for `blobTtlMs`, and evicts least recently read
// blobs down to 90 % of the quota when usage is above it. Leased blobs are never touched.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { Digest } from '../digest.ts';
import { formatBytes } from '../units.ts';
import { EVICT_TO_RATIO, type ManagedStore, type Removed } from './managed-store.ts';

export const DEFAULT_GC_INTERVAL_MS = 5 * 60_000;
/** An ingest untouched this long, with no download writing it, is abandoned. */
export const DEFAULT_ABANDONED_INGEST_MS = 60 * 60_000;

export interface CollectorOptions {
  /** Blobs not read for this long are removed; undefined or 0: no expiry. */
  readonly blobTtlMs?: number | undefined;
  readonly intervalMs?: number;
  readonly abandonedIngestMs?: number;
}

export interface CollectReport {
  readonly removed: readonly Removed[];
  readonly ingests: ReadonlyArray<{ readonly digest: Digest; readonly size: number }>;
  readonly freedBytes: number;
  readonly usedBytes: number;
  readonly quotaBytes: number | null;
  readonly blobs: number;
}

export class Collector {
  private readonly store: ManagedStore;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly options: Required<Omit<CollectorOptions, 'blobTtlMs'>> & { blobTtlMs: number };
  private timer: { cancel(): void } | undefined;
  private running: Promise<CollectReport> | undefined;
  private closed = false;

  constructor(deps: { store: ManagedStore; clock: Clock; logger?: Logger }, options: CollectorOptions = {}) {
    this.store = deps.store;
    this.clock = deps.clock;
    this.logger = deps.logger?.child({ component: 'gc' });
    this.options = {
      blobTtlMs: options.blobTtlMs ?? 0,
      intervalMs: options.intervalMs ?? DEFAULT_GC_INTERVAL_MS,
      abandonedIngestMs: options.abandonedIngestMs ?? DEFAULT_ABANDONED_INGEST_MS,
    };
  }

  /** Collects once (abandoned ingests of an earlier run go now), then every interval. */
  async start(): Promise<CollectReport> {
    const report = await this.collect();
    this.schedule();
    return report;
  }

  /** Runs a collection now; a caller arriving while one runs shares its result. */
  collect(): Promise<CollectReport> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.running?.catch(() => {});
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.clock.setTimeout(() => {
      this.collect()
        .catch((err: unknown) => this.logger?.warn({ err }, 'garbage collection failed'))
        .finally(() => this.schedule());
    }, this.options.intervalMs);
  }

  private async run(): Promise<CollectReport> {
    const ingests = await this.removeAbandonedIngests();
    const removed: Removed[] = [];
    if (this.options.blobTtlMs > 0) {
      removed.push(...(await this.store.evict(this.store.planExpiry(this.clock.now() - this.options.blobTtlMs), 'ttl')));
    }
    const quota = this.store.quota?.bytes;
    if (quota !== undefined && this.store.index.usedBytes > quota) {
      removed.push(...(await this.store.evict(this.store.planEviction(EVICT_TO_RATIO * quota), 'quota')));
    }
    const freedBytes = removed.reduce((n, r) => n + r.size, 0) + ingests.reduce((n, i) => n + i.size, 0);
    const report = { removed, ingests, freedBytes, usedBytes: this.store.index.usedBytes, quotaBytes: quota ?? null, blobs: this.store.index.blobCount };
    if (freedBytes > 0) this.logger?.info({ blobs: removed.length, ingests: ingests.length, freed: formatBytes(freedBytes), used: formatBytes(report.usedBytes) }, 'garbage collected');
    return report;
  }

  private async removeAbandonedIngests(): Promise<Array<{ digest: Digest; size: number }>> {
    const cutoff = this.clock.now() - this.options.abandonedIngestMs;
    const removed: Array<{ digest: Digest; size: number }> = [];
    const candidates = [];
    for await (const i of this.store.inner.ingests()) if (i.modifiedAt < cutoff) candidates.push(i);
    for (const i of candidates) {
      // Checked right before removing: a download may have resumed it since the listing.
      if (this.store.isIngesting(i.digest)) continue;
      // One that cannot be removed (EACCES, EROFS) is reported and skipped: the collection (and the
      // quota's eviction after it) goes on.
      const gone = await this.store.inner.removeIngest(i.digest).catch((err: unknown) => {
        this.logger?.warn({ digest: i.digest, err: (err as Error).message }, 'could not remove an abandoned ingest');
        return false;
      });
      if (gone) {
        if (!this.store.isIngesting(i.digest)) this.store.index.deleteIngest(i.digest);
        removed.push({ digest: i.digest, size: i.size });
      }
    }
    return removed;
  }
}
