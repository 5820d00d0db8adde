// In-memory content store for unit tests of logic that needs a store; same contract as FsContentStore.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { systemClock, type Clock } from './clock.ts';
import type { Digest } from './digest.ts';
import { PollenError } from './errors.ts';
import type { BlobInfo, BlobUsage, ByteRange, CollectableStore, Ingest, IngestOptions, IngestUsage, VerifyOptions } from './content-store.ts';

export class MemoryContentStore implements CollectableStore {
  private readonly blobs = new Map<Digest, Buffer>();
  private readonly partials = new Map<Digest, Buffer>();
  /** Last access of blobs, last write of partials (ms, from the clock). */
  private readonly times = new Map<Digest, number>();
  private readonly clock: Clock;

  constructor(deps: { clock?: Clock } = {}) {
    this.clock = deps.clock ?? systemClock;
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const b = this.blobs.get(digest);
    return b ? { digest, size: b.length } : undefined;
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    const b = this.blobs.get(digest);
    if (!b) throw new PollenError('ERR_BLOB_UNKNOWN', `blob ${digest} is not in the content store`, { digest });
    return Readable.from([range ? b.subarray(range.start, range.end + 1) : b]);
  }

  async readInto(digest: Digest, target: Uint8Array, offset: number): Promise<void> {
    const b = this.blobs.get(digest);
    if (!b) throw new PollenError('ERR_BLOB_UNKNOWN', `blob ${digest} is not in the content store`, { digest });
    if (offset + target.length > b.length) throw new PollenError('ERR_INTERNAL', `short read of ${digest} at ${offset}`, { digest });
    target.set(b.subarray(offset, offset + target.length));
  }

  async openIngest(digest: Digest, options: IngestOptions = {}): Promise<Ingest> {
    const initial = options.resume ? (this.partials.get(digest) ?? Buffer.alloc(0)) : Buffer.alloc(0);
    this.partials.set(digest, initial);
    return new MemoryIngest(digest, initial.length, this.partials, this.blobs, () => this.times.set(digest, this.clock.now()));
  }

  async delete(digest: Digest): Promise<boolean> {
    return this.blobs.delete(digest);
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const [digest, b] of this.blobs) yield { digest, size: b.length };
  }

  async *usage(): AsyncIterable<BlobUsage> {
    for (const [digest, b] of this.blobs) yield { digest, size: b.length, accessedAt: this.times.get(digest) ?? 0 };
  }

  async touch(digest: Digest, atMs: number): Promise<void> {
    if (this.blobs.has(digest)) this.times.set(digest, atMs);
  }

  async *ingests(): AsyncIterable<IngestUsage> {
    for (const [digest, b] of this.partials) yield { digest, size: b.length, modifiedAt: this.times.get(digest) ?? 0 };
  }

  async removeIngest(digest: Digest): Promise<boolean> {
    return this.partials.delete(digest);
  }

  async close(): Promise<void> {}
}

class MemoryIngest implements Ingest {
  private state: 'open' | 'verified' | 'committed' | 'closed' = 'open';
  private snapshot: Buffer | undefined;

  constructor(
    readonly digest: Digest,
    readonly resumedBytes: number,
    private readonly partials: Map<Digest, Buffer>,
    private readonly blobs: Map<Digest, Buffer>,
    private readonly written: () => void,
  ) {}

  private get buf(): Buffer {
    return this.snapshot ?? this.partials.get(this.digest) ?? Buffer.alloc(0);
  }

  async writeAt(chunks: Uint8Array | readonly Uint8Array[], offset: number): Promise<void> {
    if (this.state !== 'open') throw new PollenError('ERR_CLOSED', `ingest of ${this.digest} is ${this.state}`);
    const data = chunks instanceof Uint8Array ? chunks : Buffer.concat(chunks);
    let b = this.buf;
    if (offset + data.length > b.length) {
      const grown = Buffer.alloc(offset + data.length);
      b.copy(grown);
      b = grown;
    }
    b.set(data, offset);
    this.partials.set(this.digest, b);
    this.written();
  }

  async readAt(target: Uint8Array, offset: number): Promise<number> {
    if (this.state === 'closed') throw new PollenError('ERR_CLOSED', `ingest of ${this.digest} is closed`);
    return this.buf.copy(target, 0, offset, Math.min(this.buf.length, offset + target.length));
  }

  forgoDigest(): void {}

  async verify(expectedSize?: number, options: VerifyOptions = {}): Promise<BlobInfo> {
    if (this.state === 'verified' || this.state === 'committed') return { digest: this.digest, size: this.buf.length };
    if (this.state !== 'open') throw new PollenError('ERR_CLOSED', `ingest of ${this.digest} is ${this.state}`);
    const b = this.buf;
    const fail = async (err: PollenError): Promise<never> => {
      await this.abort();
      throw err;
    };
    if (expectedSize !== undefined && b.length !== expectedSize) {
      await fail(new PollenError('ERR_SIZE_MISMATCH', `blob ${this.digest} is ${b.length} bytes, expected ${expectedSize}`, { digest: this.digest }));
    }
    const actual = options.vouched === true ? this.digest : `sha256:${createHash('sha256').update(b).digest('hex')}`;
    if (actual !== this.digest) await fail(new PollenError('ERR_DIGEST_MISMATCH', `blob hashed to ${actual}, expected ${this.digest}`, { expected: this.digest, actual }));
    this.state = 'verified';
    return { digest: this.digest, size: b.length };
  }

  async commit(expectedSize?: number, options: VerifyOptions & { keepReadable?: boolean } = {}): Promise<BlobInfo> {
    const info = await this.verify(expectedSize, options);
    this.snapshot = this.buf;
    this.partials.delete(this.digest);
    this.blobs.set(this.digest, this.snapshot);
    this.written();
    this.state = 'committed';
    if (!options.keepReadable) await this.close();
    return info;
  }

  async abort(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.partials.delete(this.digest);
  }

  async suspend(): Promise<void> {
    this.state = 'closed';
  }

  async close(): Promise<void> {
    if (this.state === 'committed') this.state = 'closed';
    else await this.abort();
  }
}
