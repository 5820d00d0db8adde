// An ingest of the managed store: accounts the bytes it adds (or reserves up front, when the
// download declared its size) against the quota before writing them, and tells the store how it
// ended: committed (a blob now), discarded (bytes gone) or suspended (bytes kept for a resume).
import type { BlobInfo, Ingest, VerifyOptions } from '../content-store.ts';
import type { Digest } from '../digest.ts';
import type { ManagedStore } from './managed-store.ts';

type Outcome = 'committed' | 'discarded' | 'suspended';

export class ManagedIngest implements Ingest {
  private readonly inner: Ingest;
  private readonly store: ManagedStore;
  private readonly onDone: () => void;
  private highWater: number;
  private committed = false;
  private finished = false;

  constructor(deps: { inner: Ingest; store: ManagedStore; onDone: () => void }) {
    this.inner = deps.inner;
    this.store = deps.store;
    this.onDone = deps.onDone;
    this.highWater = deps.inner.resumedBytes;
  }

  get digest(): Digest {
    return this.inner.digest;
  }

  get resumedBytes(): number {
    return this.inner.resumedBytes;
  }

  /** Accounts for the ingest growing to `total` bytes, evicting to make room; ERR_DISK_QUOTA if it cannot. */
  async reserve(total: number): Promise<void> {
    while (!this.tryReserve(total)) {
      const need = total - this.store.index.ingestBytes(this.digest);
      if (!(await this.store.makeRoom(need))) throw this.store.quotaError(this.digest, need);
    }
  }

  /** Accounts for growing to `total` if it fits now (no await on the write path when it does). */
  private tryReserve(total: number): boolean {
    const index = this.store.index;
    const need = total - index.ingestBytes(this.digest);
    if (need <= 0 || this.finished) return true;
    const quota = this.store.quota?.bytes;
    if (quota !== undefined && index.usedBytes + need > quota) return false;
    index.setIngest(this.digest, total);
    return true;
  }

  async writeAt(data: Uint8Array | readonly Uint8Array[], offset: number): Promise<void> {
    const length = data instanceof Uint8Array ? data.length : data.reduce((n, c) => n + c.length, 0);
    const end = offset + length;
    if (!this.tryReserve(end)) await this.reserve(end);
    await this.inner.writeAt(data, offset);
    if (end > this.highWater) this.highWater = end;
  }

  readAt(target: Uint8Array, offset: number): Promise<number> {
    return this.inner.readAt(target, offset);
  }

  forgoDigest(): void {
    this.inner.forgoDigest();
  }

  async verify(expectedSize?: number, options?: VerifyOptions): Promise<BlobInfo> {
    try {
      return await this.inner.verify(expectedSize, options);
    } catch (err) {
      // A failed verify discards the ingest (the contract of Ingest.verify).
      this.finish('discarded');
      throw err;
    }
  }

  async commit(expectedSize?: number, options: VerifyOptions & { keepReadable?: boolean } = {}): Promise<BlobInfo> {
    let info: BlobInfo;
    try {
      info = await this.inner.commit(expectedSize, options);
    } catch (err) {
      this.finish('discarded');
      throw err;
    }
    this.committed = true;
    this.store.committed(this.digest, info.size);
    if (!options.keepReadable) this.finish('committed');
    return info;
  }

  async abort(): Promise<void> {
    await this.inner.abort();
    this.finish(this.committed ? 'committed' : 'discarded');
  }

  async suspend(): Promise<void> {
    await this.inner.suspend();
    this.finish(this.committed ? 'committed' : 'suspended');
  }

  async close(): Promise<void> {
    await this.inner.close();
    this.finish(this.committed ? 'committed' : 'discarded');
  }

  private finish(outcome: Outcome): void {
    if (this.finished) return;
    this.finished = true;
    if (outcome === 'discarded') this.store.index.deleteIngest(this.digest);
    else if (outcome === 'suspended') this.store.index.setIngest(this.digest, this.highWater);
    this.onDone();
  }
}
