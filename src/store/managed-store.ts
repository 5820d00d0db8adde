// A content store with a disk quota, leases and least-recently-used eviction, over any
// CollectableStore (FsContentStore for the peer and the seed, MemoryContentStore in unit tests).
// Usage is Pollen's own bytes: committed blobs plus ingests (what is on disk or reserved for a
// download that declared its size). A write that would pass the quota first evicts the least
// recently read blobs that nothing leases, down to 90 % of the quota; when that cannot make room
// the write fails with ERR_DISK_QUOTA and nothing is evicted. Reads and ingests lease their blob for
// as long as they last, so a blob being served, uploaded or downloaded is never evicted.
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { BlobInfo, BlobLeases, ByteRange, CollectableStore, ContentStore, Ingest, IngestOptions } from '../content-store.ts';
import type { Digest } from '../digest.ts';
import { PollenError } from '../errors.ts';
import { formatBytes } from '../units.ts';
import { LeaseTable } from './lease-table.ts';
import { ManagedIngest } from './managed-ingest.ts';
import type { DiskQuota } from './quota.ts';
import { UsageIndex } from './usage-index.ts';

/** Eviction stops at this share of the quota, so a full store does not evict on every write. */
export const EVICT_TO_RATIO = 0.9;
/** A blob's last-access time is written through at most this often (reads are frequent). */
export const TOUCH_PERSIST_MS = 1_000;

export type RemovalReason = 'quota' | 'ttl' | 'deleted';

export interface Removed {
  readonly digest: Digest;
  readonly size: number;
  readonly reason: RemovalReason;
}

export class ManagedStore implements ContentStore, BlobLeases {
  readonly inner: CollectableStore;
  readonly quota: DiskQuota | undefined;
  readonly index = new UsageIndex();
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly leases = new LeaseTable();
  /** Open ingest handles by digest (an ingest file with none is abandoned or suspended). */
  private readonly liveIngests = new Map<Digest, number>();
  private readonly listeners = new Set<(removed: Removed) => void>();
  private evicting: Promise<unknown> | undefined;

  constructor(deps: { store: CollectableStore; clock: Clock; logger?: Logger }, options: { quota?: DiskQuota | undefined } = {}) {
    this.inner = deps.store;
    this.clock = deps.clock;
    this.logger = deps.logger?.child({ component: 'content-store' });
    this.quota = options.quota;
  }

  /** Loads what the store holds: blob sizes with their persisted last-access times, and ingests. */
  async start(): Promise<void> {
    const blobs = [];
    for await (const b of this.inner.usage()) blobs.push(b);
    for (const b of blobs.sort((x, y) => x.accessedAt - y.accessedAt)) this.index.setBlob(b.digest, b.size, b.accessedAt);
    for await (const i of this.inner.ingests()) this.index.setIngest(i.digest, i.size);
    this.logger?.info({ blobs: this.index.blobCount, used: formatBytes(this.index.usedBytes), quota: this.quota?.label ?? 'none' }, 'content store opened');
  }

  lease(digest: Digest): () => void {
    return this.leases.acquire(digest);
  }

  isLeased(digest: Digest): boolean {
    return this.leases.isLeased(digest);
  }

  isIngesting(digest: Digest): boolean {
    return this.liveIngests.has(digest);
  }

  /** Hears of every blob that leaves the store (evicted or deleted): holdings shrink. */
  onRemoved(listener: (removed: Removed) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  stat(digest: Digest): Promise<BlobInfo | undefined> {
    return this.inner.stat(digest);
  }

  async readInto(digest: Digest, target: Uint8Array, offset: number): Promise<void> {
    const release = this.leases.acquire(digest);
    try {
      await this.inner.readInto(digest, target, offset);
      this.touch(digest);
    } finally {
      release();
    }
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    const release = this.leases.acquire(digest);
    try {
      const stream = await this.inner.read(digest, range);
      stream.once('close', release);
      this.touch(digest);
      return stream;
    } catch (err) {
      release();
      throw err;
    }
  }

  async openIngest(digest: Digest, options: IngestOptions = {}): Promise<Ingest> {
    // Live before the first await, so the collector never takes this ingest for abandoned.
    this.liveIngests.set(digest, (this.liveIngests.get(digest) ?? 0) + 1);
    const release = this.leases.acquire(digest);
    const done = (): void => {
      release();
      const n = (this.liveIngests.get(digest) ?? 1) - 1;
      if (n <= 0) this.liveIngests.delete(digest);
      else this.liveIngests.set(digest, n);
    };
    try {
      const inner = await this.inner.openIngest(digest, options);
      // A fresh ingest truncates what an earlier one left; a resumed one keeps it.
      this.index.setIngest(digest, options.resume ? Math.max(inner.resumedBytes, this.index.ingestBytes(digest)) : 0);
      const ingest = new ManagedIngest({ inner, store: this, onDone: done });
      if (options.expectedSize !== undefined) await ingest.reserve(options.expectedSize);
      return ingest;
    } catch (err) {
      done();
      throw err;
    }
  }

  async delete(digest: Digest): Promise<boolean> {
    const size = this.index.blobSize(digest);
    const removed = await this.inner.delete(digest);
    this.index.deleteBlob(digest);
    if (removed) this.emit({ digest, size: size ?? 0, reason: 'deleted' });
    return removed;
  }

  list(): AsyncIterable<BlobInfo> {
    return this.inner.list();
  }

  async close(): Promise<void> {
    await this.evicting;
    await this.inner.close();
  }

  /** Records a read: LRU order now, and durably (throttled) so a restart keeps it. */
  touch(digest: Digest): void {
    const now = this.clock.now();
    if (!this.index.touch(digest, now, TOUCH_PERSIST_MS)) return;
    this.inner.touch(digest, now).catch((err: unknown) => this.logger?.warn({ digest, err }, 'could not record a blob access'));
  }

  /** A blob entered the store (an ingest committed). */
  committed(digest: Digest, size: number): void {
    const now = this.clock.now();
    this.index.setBlob(digest, size, now);
    this.index.deleteIngest(digest);
    this.inner.touch(digest, now).catch(() => {});
  }

  /**
   * Makes `bytes` more fit under the quota, evicting if needed. False (and nothing evicted) when
   * even evicting every unleased blob would not be enough.
   */
  async makeRoom(bytes: number): Promise<boolean> {
    const quota = this.quota?.bytes;
    if (quota === undefined) return true;
    while (this.evicting) await this.evicting;
    if (this.index.usedBytes + bytes <= quota) return true;
    const target = Math.max(0, EVICT_TO_RATIO * quota - bytes);
    const plan = this.planEviction(target);
    const freed = plan.reduce((n, p) => n + p.size, 0);
    if (this.index.usedBytes - freed + bytes > quota) return false;
    await this.evict(plan, 'quota');
    return this.index.usedBytes + bytes <= quota;
  }

  quotaError(digest: Digest, bytes: number): PollenError {
    const quota = this.quota?.bytes ?? 0;
    return new PollenError(
      'ERR_DISK_QUOTA',
      `the content store is full: quota ${this.quota?.label ?? formatBytes(quota)} (--disk-quota), ${formatBytes(this.index.usedBytes)} used by blobs in use and downloads; blob ${digest} needs ${formatBytes(bytes)} more`,
      { digest, quotaBytes: quota, usedBytes: this.index.usedBytes, neededBytes: bytes },
    );
  }

  /** Least recently read unleased blobs to remove for usage to reach `targetBytes`. */
  planEviction(targetBytes: number): Removed[] {
    const plan: Removed[] = [];
    let used = this.index.usedBytes;
    for (const b of this.index.oldestFirst()) {
      if (used <= targetBytes) break;
      if (this.leases.isLeased(b.digest)) continue;
      plan.push({ digest: b.digest, size: b.size, reason: 'quota' });
      used -= b.size;
    }
    return plan;
  }

  /** Unleased blobs last read before `cutoffMs`. */
  planExpiry(cutoffMs: number): Removed[] {
    const plan: Removed[] = [];
    for (const b of this.index.oldestFirst()) {
      if (b.accessedAt >= cutoffMs) break;
      if (!this.leases.isLeased(b.digest)) plan.push({ digest: b.digest, size: b.size, reason: 'ttl' });
    }
    return plan;
  }

  /** Removes the planned blobs, one at a time; a blob leased since the plan was made is kept. */
  evict(plan: readonly Removed[], reason: RemovalReason): Promise<Removed[]> {
    const run = (async (): Promise<Removed[]> => {
      const done: Removed[] = [];
      for (const p of plan) {
        if (this.leases.isLeased(p.digest) || this.index.blobSize(p.digest) === undefined) continue;
        this.index.deleteBlob(p.digest);
        try {
          if (!(await this.inner.delete(p.digest))) continue;
        } catch (err) {
          this.logger?.warn({ digest: p.digest, err }, 'could not evict a blob');
          continue;
        }
        const removed = { digest: p.digest, size: p.size, reason };
        done.push(removed);
        this.emit(removed);
      }
      if (done.length > 0) this.logger?.info({ reason, blobs: done.length, freed: formatBytes(done.reduce((n, r) => n + r.size, 0)), used: formatBytes(this.index.usedBytes) }, 'blobs evicted');
      return done;
    })();
    const tracked = run.finally(() => {
      if (this.evicting === tracked) this.evicting = undefined;
    });
    this.evicting = tracked;
    return run;
  }

  private emit(removed: Removed): void {
    for (const l of this.listeners) {
      try {
        l(removed);
      } catch (err) {
        this.logger?.warn({ digest: removed.digest, err }, 'a removal listener failed');
      }
    }
  }
}
