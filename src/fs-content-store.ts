// Content store on disk, laid out as containerd's: `blobs/sha256/<hex>` for committed blobs and
// `ingest/<hex>` for blobs being written. Commit = fsync, verify, rename; a reader never sees a
// partial blob under blobs/. "Already exists" on commit is success. Directories are 0700 and files
// 0600, as containerd's content store: layers of private images are readable by Pollen's user only.
// A blob's last-access time is its file's mtime (set by `touch`): blobs are immutable, so mtime
// carries nothing else, it survives restarts with the file itself (no second record to reconcile
// after a crash or a hand-deleted blob), and atime cannot be trusted (relatime, noatime mounts).
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { digestHex, parseDigest, type Digest } from './digest.ts';
import { PollenError } from './errors.ts';
import type { BlobInfo, BlobUsage, ByteRange, CollectableStore, Ingest, IngestOptions, IngestUsage, VerifyOptions } from './content-store.ts';
import { ensurePrivateDir, ensurePrivateFile, PRIVATE_FILE_MODE } from './store/private-dir.ts';
import { PendingRanges } from './pending-ranges.ts';
import { ReadHandles } from './store/read-handles.ts';
import { InlineIo, type InlineIoOptions } from './store/inline-io.ts';

const HASH_CHUNK_BYTES = 1 << 20;

export interface FsContentStoreOptions {
  /** How positioned reads and writes choose between the main thread and the thread pool (src/store/inline-io.ts). */
  inlineIo?: InlineIoOptions;
}

export class FsContentStore implements CollectableStore {
  readonly root: string;
  private readonly blobDir: string;
  private readonly ingestDir: string;
  /** Committed blobs' read handles, kept between positioned reads (readInto). */
  private readonly handles = new ReadHandles();
  /** Positioned reads and writes on the main thread while they are page-cache copies. */
  private readonly io: InlineIo;

  private constructor(root: string, options: FsContentStoreOptions) {
    this.root = root;
    this.io = new InlineIo(options.inlineIo);
    this.blobDir = join(root, 'blobs', 'sha256');
    this.ingestDir = join(root, 'ingest');
  }

  static async open(root: string, options: FsContentStoreOptions = {}): Promise<FsContentStore> {
    const store = new FsContentStore(root, options);
    const { wasPrivate } = await ensurePrivateDir(root);
    await ensurePrivateDir(join(root, 'blobs'));
    await ensurePrivateDir(store.blobDir);
    await ensurePrivateDir(store.ingestDir);
    // A store that was not private (an older version, a permissive umask) may hold readable files.
    if (!wasPrivate) for (const dir of [store.blobDir, store.ingestDir]) await store.privatiseFiles(dir);
    return store;
  }

  private async privatiseFiles(dir: string): Promise<void> {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const s = await stat(path).catch(() => undefined);
      if (s?.isFile()) await ensurePrivateFile(path, s.mode);
    }
  }

  blobPath(digest: Digest): string {
    return join(this.blobDir, digestHex(digest));
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.blobPath(digest));
      return { digest, size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    // Open first so a missing blob is an error here, not an 'error' event later.
    let fh: FileHandle;
    try {
      fh = await open(this.blobPath(digest), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new PollenError('ERR_BLOB_UNKNOWN', `blob ${digest} is not in the content store`, { digest });
      }
      throw err;
    }
    return createReadStream('', {
      fd: fh,
      start: range?.start,
      end: range?.end,
      highWaterMark: 1024 * 1024,
      autoClose: true,
    });
  }

  async readInto(digest: Digest, target: Uint8Array, offset: number): Promise<void> {
    await this.handles
      .use(this.blobPath(digest), async (fh) => {
        for (let filled = 0; filled < target.length; ) {
          const bytesRead = await this.io.read(fh, target, filled, target.length - filled, offset + filled);
          if (bytesRead === 0) throw new PollenError('ERR_INTERNAL', `short read of ${digest}: ${filled} of ${target.length} bytes at ${offset}`, { digest });
          filled += bytesRead;
        }
      })
      .catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'ENOENT' ? new PollenError('ERR_BLOB_UNKNOWN', `blob ${digest} is not in the content store`, { digest }) : err;
      });
  }

  async openIngest(digest: Digest, options: IngestOptions = {}): Promise<Ingest> {
    const path = join(this.ingestDir, digestHex(digest));
    const fh = await open(path, options.resume ? 'a+' : 'w+', PRIVATE_FILE_MODE).then(async (h) => {
      // 'a+' forces appends on Linux for positional writes; reopen read-write without truncation.
      if (!options.resume) return h;
      await h.close();
      return open(path, 'r+');
    });
    const { size } = await fh.stat();
    return new FsIngest(digest, fh, path, this.blobPath(digest), size, this.io);
  }

  async delete(digest: Digest): Promise<boolean> {
    this.handles.forget(this.blobPath(digest));
    try {
      await rm(this.blobPath(digest));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async *list(): AsyncIterable<BlobInfo> {
    for await (const { digest, size } of this.usage()) yield { digest, size };
  }

  async *usage(): AsyncIterable<BlobUsage> {
    for await (const [digest, s] of this.files(this.blobDir)) yield { digest, size: s.size, accessedAt: s.mtimeMs };
  }

  async touch(digest: Digest, atMs: number): Promise<void> {
    const at = atMs / 1000;
    await utimes(this.blobPath(digest), at, at).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async *ingests(): AsyncIterable<IngestUsage> {
    for await (const [digest, s] of this.files(this.ingestDir)) yield { digest, size: s.size, modifiedAt: s.mtimeMs };
  }

  async removeIngest(digest: Digest): Promise<boolean> {
    try {
      await rm(join(this.ingestDir, digestHex(digest)));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** The digest-named regular files of a directory, with their stats; others are skipped. */
  private async *files(dir: string): AsyncIterable<[Digest, { size: number; mtimeMs: number }]> {
    for (const name of await readdir(dir)) {
      let digest: Digest;
      try {
        digest = parseDigest(`sha256:${name}`);
      } catch {
        continue;
      }
      const s = await stat(join(dir, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined; // removed meanwhile
        throw err;
      });
      if (s?.isFile()) yield [digest, s];
    }
  }

  async close(): Promise<void> {
    this.handles.closeAll();
  }
}

type IngestState = 'open' | 'verified' | 'committed' | 'closed';

class FsIngest implements Ingest {
  readonly digest: Digest;
  readonly resumedBytes: number;
  private readonly fh: FileHandle;
  private readonly path: string;
  private readonly target: string;
  private readonly io: InlineIo;
  // Incremental hash of the written prefix. A write at the end of the hashed prefix is hashed from
  // memory before writeAt resolves; a write beyond it is remembered as a range and read back from
  // the file (the page cache) once the prefix reaches it, so pieces landing out of order (P2P) are
  // hashed as they come instead of all over again at verify. writeAt never keeps the caller's
  // buffers once it resolves: the P2P downloader reuses them for the next blocks (fresh 256 KiB
  // buffers cost a third of a downloading peer's CPU in page faults). A write into the hashed
  // prefix or over a pending range gives up: verify re-reads the file.
  private hash: Hash | undefined;
  private hashedBytes = 0;
  /** Length of the range being read back and hashed right now (it belongs to the prefix). */
  private hashingBytes = 0;
  private readonly pending = new PendingRanges();
  private catchingUp = false;
  private hashing: Promise<void> = Promise.resolve();
  private scratch: Buffer<ArrayBuffer> | undefined;
  private state: IngestState = 'open';
  private verified: BlobInfo | undefined;

  constructor(digest: Digest, fh: FileHandle, path: string, target: string, resumedBytes: number, io: InlineIo) {
    this.digest = digest;
    this.io = io;
    this.fh = fh;
    this.path = path;
    this.target = target;
    this.resumedBytes = resumedBytes;
    this.hash = resumedBytes === 0 ? createHash('sha256') : undefined;
  }

  async writeAt(data: Uint8Array | readonly Uint8Array[], offset: number): Promise<void> {
    this.assert('open');
    const chunks = data instanceof Uint8Array ? [data] : data;
    const length = chunks.reduce((n, c) => n + c.length, 0);
    // A write that continues the hashed prefix is hashed now, from the caller's buffers while they
    // are in the CPU's cache, whichever write the thread pool finishes first: deciding after the
    // write resolved sent most in-order pieces to the read-back path (writes complete out of order).
    const hashedNow = this.hashInOrder(chunks, offset, length);
    try {
      const bytesWritten = await this.io.writev(this.fh, chunks, offset);
      if (bytesWritten < length) {
        // A short vectored write (rare): finish the rest with plain writes.
        const rest = Buffer.concat(chunks).subarray(bytesWritten);
        for (let off = 0; off < rest.length; ) off += (await this.fh.write(rest, off, rest.length - off, offset + bytesWritten + off)).bytesWritten;
      }
    } catch (err) {
      // Some of these bytes may be on disk over a range already hashed or pending: verify re-reads.
      this.dropHash();
      throw err;
    }
    if (hashedNow) this.catchUpSoon();
    else this.noteWritten(chunks, offset, length);
  }

  /** Hashes a write at the end of the hashed prefix from memory (the hash covers bytes submitted; a failed write drops it). */
  private hashInOrder(chunks: readonly Uint8Array[], offset: number, length: number): boolean {
    const hash = this.hash;
    if (!hash || length === 0 || offset !== this.hashedBytes || this.catchingUp || this.overlapsPending(offset, length)) return false;
    for (const c of chunks) hash.update(c);
    this.hashedBytes += length;
    return true;
  }

  private noteWritten(chunks: readonly Uint8Array[], offset: number, length: number): void {
    const hash = this.hash;
    if (!hash || length === 0) return;
    if (offset < this.hashedBytes + this.hashingBytes || this.overlapsPending(offset, length)) return this.dropHash();
    if (!this.hashInOrder(chunks, offset, length)) this.pending.add(offset, length);
    this.catchUpSoon();
  }

  /** Reads back and hashes the pending ranges that now continue the prefix, one run at a time. */
  private catchUpSoon(): void {
    if (this.catchingUp || !this.hash || this.pending.get(this.hashedBytes) === undefined) return;
    this.catchingUp = true;
    this.hashing = this.catchUp()
      .catch(() => this.dropHash())
      .finally(() => {
        this.catchingUp = false;
        this.catchUpSoon();
      });
  }

  private async catchUp(): Promise<void> {
    for (let length = this.pending.get(this.hashedBytes); length !== undefined; length = this.pending.get(this.hashedBytes)) {
      const hash = this.hash;
      if (!hash) return;
      this.pending.delete(this.hashedBytes);
      this.hashingBytes = length;
      this.scratch ??= Buffer.allocUnsafe(HASH_CHUNK_BYTES);
      await this.hashRange(hash, this.hashedBytes, this.hashedBytes + length, this.scratch);
      if (this.hash !== hash) return;
      this.hashedBytes += length;
      this.hashingBytes = 0;
    }
  }

  private overlapsPending(offset: number, length: number): boolean {
    return this.pending.overlaps(offset, length);
  }

  private dropHash(): void {
    this.hash = undefined;
    this.hashingBytes = 0;
    this.pending.clear();
  }

  async readAt(target: Uint8Array, offset: number): Promise<number> {
    if (this.state === 'closed') throw new PollenError('ERR_CLOSED', `ingest of ${this.digest} is closed`, { digest: this.digest });
    return this.io.read(this.fh, target, 0, target.length, offset);
  }

  forgoDigest(): void {
    this.dropHash();
  }

  async verify(expectedSize?: number, options: VerifyOptions = {}): Promise<BlobInfo> {
    if (this.verified) return this.verified;
    this.assert('open');
    try {
      const { size } = await this.fh.stat();
      if (expectedSize !== undefined && size !== expectedSize) {
        throw new PollenError('ERR_SIZE_MISMATCH', `blob ${this.digest} is ${size} bytes, expected ${expectedSize}`, { digest: this.digest, expectedSize, actualSize: size });
      }
      while (this.catchingUp) await this.hashing;
      // Vouched (VerifyOptions): the size is checked, the digest not hashed again.
      const actual = options.vouched === true ? undefined : this.hash && this.hashedBytes === size ? this.hash.digest('hex') : await this.rehash(size);
      if (actual !== undefined && `sha256:${actual}` !== this.digest) {
        throw new PollenError('ERR_DIGEST_MISMATCH', `blob hashed to sha256:${actual}, expected ${this.digest}`, { expected: this.digest, actual: `sha256:${actual}` });
      }
      this.state = 'verified';
      this.verified = { digest: this.digest, size };
      return this.verified;
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  async commit(expectedSize?: number, options: VerifyOptions & { keepReadable?: boolean } = {}): Promise<BlobInfo> {
    const info = await this.verify(expectedSize, options);
    this.assert('verified');
    try {
      await this.fh.sync();
      await rename(this.path, this.target);
      this.state = 'committed';
      if (!options.keepReadable) await this.close();
      return info;
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /**
   * Never rejects: callers abort on their way out of a failure (verify, commit, a failed download),
   * and an ingest file that cannot be removed (EACCES, EROFS) must neither replace their error nor
   * end a fire-and-forget download as an unhandled rejection. The collector tries again once the
   * file is stale, and logs what it cannot remove (src/store/collector.ts).
   */
  async abort(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.fh.close().catch(() => {});
    await rm(this.path, { force: true }).catch(() => {});
  }

  async suspend(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.fh.sync().catch(() => {});
    await this.fh.close().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state !== 'committed') {
      await this.abort();
      return;
    }
    this.state = 'closed';
    await this.fh.close().catch(() => {});
  }

  private async rehash(size: number): Promise<string> {
    const hash = createHash('sha256');
    await this.hashRange(hash, 0, size);
    return hash.digest('hex');
  }

  private async hashRange(hash: Hash, start: number, end: number, buf: Buffer = Buffer.allocUnsafe(Math.min(HASH_CHUNK_BYTES, Math.max(1, end - start)))): Promise<void> {
    for (let pos = start; pos < end; ) {
      const bytesRead = await this.io.read(this.fh, buf, 0, Math.min(buf.length, end - pos), pos);
      if (bytesRead === 0) throw new PollenError('ERR_SIZE_MISMATCH', `blob ${this.digest} ends at ${pos}, before ${end}`, { digest: this.digest });
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  }

  private assert(expected: IngestState): void {
    if (this.state !== expected) {
      throw new PollenError('ERR_CLOSED', `ingest of ${this.digest} is ${this.state}, not ${expected}`, { digest: this.digest });
    }
  }
}
