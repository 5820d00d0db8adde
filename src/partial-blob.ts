// A blob on its way into the content store that clients can already read. The downloader (a
// registry fetch, or pieces from peers) writes into an Ingest and moves `available`, the length of
// the contiguous prefix on disk; every waiting client streams from the ingest file at its own pace,
// so one slow client never holds back the download or the others, and memory stays bounded.
// After commit readers continue from the committed blob; after a failure they get the error.
import { Readable } from 'node:stream';
import type { ContentStore, BlobInfo, Ingest, ByteRange, VerifyOptions } from './content-store.ts';
import type { Digest } from './digest.ts';
import { PollenError } from './errors.ts';
import type { PooledBody } from './pooled-body.ts';

const READ_CHUNK_BYTES = 256 * 1024;
/** Network chunks (~64 KiB) are gathered into writes of this size: one vectored write each... */
const APPEND_BATCH_BYTES = 1 << 20;
/** ...except in the first bytes, where small writes keep the time to first byte low. */
const EARLY_BYTES = 4 << 20;
const EARLY_APPEND_BATCH_BYTES = 64 << 10;

type State =
  | { name: 'writing' }
  | { name: 'verifying' }
  | { name: 'verified' }
  | { name: 'committed'; info: BlobInfo }
  | { name: 'failed'; error: Error };

export class PartialBlob {
  readonly digest: Digest;
  readonly size: number;
  private readonly store: ContentStore;
  private readonly ingest: Ingest;
  private state: State = { name: 'writing' };
  private prefix: number;
  private readsInFlight = 0;
  private activeReaders = 0;
  private ingestClosed = false;
  private waiters: Array<() => void> = [];
  private readonly settledSignal: Promise<void>;
  private resolveSettled!: () => void;

  constructor(deps: { store: ContentStore; ingest: Ingest }, options: { size: number; available?: number }) {
    this.store = deps.store;
    this.ingest = deps.ingest;
    this.digest = deps.ingest.digest;
    this.size = options.size;
    this.prefix = options.available ?? 0;
    this.settledSignal = new Promise((resolve) => (this.resolveSettled = resolve));
  }

  /** Resolves once the blob is committed or has failed. */
  settledPromise(): Promise<void> {
    return this.settledSignal;
  }

  /** Length of the contiguous prefix that readers may read. */
  get available(): number {
    return this.prefix;
  }

  get settled(): boolean {
    return this.state.name === 'committed' || this.state.name === 'failed';
  }

  /** Appends in order at the end of the available prefix (a sequential download). */
  async append(chunk: Uint8Array | readonly Uint8Array[]): Promise<void> {
    this.assertWriting();
    const length = chunk instanceof Uint8Array ? chunk.length : chunk.reduce((n, c) => n + c.length, 0);
    if (this.prefix + length > this.size) {
      throw new PollenError('ERR_SIZE_MISMATCH', `blob ${this.digest} is longer than its declared ${this.size} bytes`, { digest: this.digest, expectedSize: this.size });
    }
    await this.ingest.writeAt(chunk, this.prefix);
    this.prefix += length;
    this.wake();
  }

  /**
   * Appends a whole stream in order (a download), gathering its chunks into larger writes;
   * `onBatch` hears of each batch written (progress, counters).
   */
  async appendFrom(body: AsyncIterable<Uint8Array>, onBatch?: (bytes: number) => void): Promise<void> {
    let batch: Uint8Array[] = [];
    let batched = 0;
    // One write in flight while the next batch arrives: the network and the disk overlap instead of
    // taking turns (awaiting each write stalled the socket, and with it the registry).
    let writing: Promise<void> = Promise.resolve();
    const flush = async (): Promise<void> => {
      const chunks = batch;
      const bytes = batched;
      batch = [];
      batched = 0;
      await writing;
      writing = this.append(chunks).then(() => onBatch?.(bytes));
      writing.catch(() => {}); // awaited at the next flush or at the end; never unhandled
    };
    try {
      for await (const chunk of body) {
        batch.push(chunk);
        batched += chunk.length;
        if (batched >= (this.prefix < EARLY_BYTES ? EARLY_APPEND_BATCH_BYTES : APPEND_BATCH_BYTES)) await flush();
      }
      if (batched > 0) await flush();
    } finally {
      await writing;
    }
  }

  /** Writes at an offset without moving the prefix (pieces arriving out of order). */
  async writeAt(chunk: Uint8Array | readonly Uint8Array[], offset: number): Promise<void> {
    this.assertWriting();
    await this.ingest.writeAt(chunk, offset);
  }

  /** The writer checks every byte against vouched piece hashes (Ingest.forgoDigest): the ingest stops hashing. */
  forgoDigest(): void {
    this.assertWriting();
    this.ingest.forgoDigest();
  }

  /** Declares that the first `bytes` bytes are on disk and verified enough to serve in order. */
  setAvailable(bytes: number): void {
    if (bytes > this.prefix) {
      this.prefix = Math.min(bytes, this.size);
      this.wake();
    }
  }

  /**
   * Verifies and commits the blob (`vouched`: see VerifyOptions). Readers get the last byte as soon
   * as the digest is verified, without waiting for the fsync and rename that make it durable and visible.
   */
  async commit(options: VerifyOptions = {}): Promise<BlobInfo> {
    this.assertWriting();
    this.state = { name: 'verifying' };
    try {
      await this.ingest.verify(this.size, options);
      this.state = { name: 'verified' };
      this.wake();
      const info = await this.ingest.commit(this.size, { ...options, keepReadable: true });
      this.state = { name: 'committed', info };
      return info;
    } catch (err) {
      this.state = { name: 'failed', error: err as Error };
      throw err;
    } finally {
      this.wake();
      this.resolveSettled();
      await this.maybeCloseIngest();
    }
  }

  /** Fails the download: readers get `error`, the ingest is discarded (or kept, when `keepPartial`). */
  async fail(error: Error, options: { keepPartial?: boolean } = {}): Promise<void> {
    if (this.settled) return;
    this.state = { name: 'failed', error };
    this.wake();
    this.resolveSettled();
    while (this.readsInFlight > 0) await this.changed();
    this.ingestClosed = true;
    if (options.keepPartial) await this.ingest.suspend();
    else await this.ingest.abort();
  }

  /** A stream of the blob (or a range of it) that yields bytes as they become available. */
  createReadStream(range?: ByteRange, signal?: AbortSignal): Readable {
    return Readable.from(this.chunks(range?.start ?? 0, range?.end ?? this.size - 1, signal), { objectMode: false });
  }

  /** The same bytes as a response body read into pooled buffers (src/pooled-body.ts). */
  pooledBody(range?: ByteRange, signal?: AbortSignal): PooledBody {
    return { pooled: true, chunks: (acquire) => this.chunks(range?.start ?? 0, range?.end ?? this.size - 1, signal, acquire) };
  }

  private readable(): number {
    const name = this.state.name;
    if (name === 'verified' || name === 'committed') return this.size;
    // The last byte is held back until the whole blob is verified, so a client never sees a clean
    // end of content that turns out to be corrupt: it sees the connection fail instead.
    return this.prefix >= this.size ? this.size - 1 : this.prefix;
  }

  private async *chunks(start: number, end: number, signal?: AbortSignal, acquire?: () => Buffer): AsyncGenerator<Buffer> {
    let pos = start;
    this.activeReaders++;
    try {
      while (pos <= end) {
        signal?.throwIfAborted();
        const state = this.state;
        if (state.name === 'failed') throw state.error;
        if (this.ingestClosed) {
          // Committed and released: the rest comes from the store.
          yield* (await this.store.read(this.digest, { start: pos, end })) as AsyncIterable<Buffer>;
          return;
        }
        const readable = this.readable();
        if (pos < readable) {
          const whole = acquire?.();
          const n = Math.min(whole?.length ?? READ_CHUNK_BYTES, readable - pos, end + 1 - pos);
          const buf = whole ? whole.subarray(0, n) : Buffer.allocUnsafe(n);
          this.readsInFlight++;
          let got: number;
          try {
            got = await this.ingest.readAt(buf, pos);
          } finally {
            this.readsInFlight--;
            if (this.readsInFlight === 0) this.wake();
          }
          if (got === 0) throw new PollenError('ERR_INTERNAL', `partial blob ${this.digest} read nothing at ${pos}`);
          pos += got;
          yield buf.subarray(0, got);
          continue;
        }
        await this.changed(signal);
      }
    } finally {
      this.activeReaders--;
      // Not awaited: a response ends when its body's generator returns, and a client that has read
      // the whole body may close at once (skopeo does); waiting here for the file handle to close
      // let that close come first, and the mirror logged a layer sent whole as aborted. A failed
      // close of a committed blob's read handle costs nothing but the handle: never a rejection.
      void this.maybeCloseIngest().catch(() => {});
    }
  }

  /** The ingest's read handle is released once the blob is committed and no reader uses it. */
  private async maybeCloseIngest(): Promise<void> {
    if (this.state.name !== 'committed' || this.activeReaders > 0 || this.ingestClosed) return;
    this.ingestClosed = true;
    await this.ingest.close();
  }

  private changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => reject(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private assertWriting(): void {
    if (this.state.name !== 'writing') {
      throw new PollenError('ERR_CLOSED', `blob ${this.digest} is no longer being written (${this.state.name})`, { digest: this.digest });
    }
  }
}
