// The content store seam: blobs addressed by digest, written through an ingest that is verified
// before it becomes visible. Production: FsContentStore (src/fs-content-store.ts). Unit tests:
// MemoryContentStore (src/memory-content-store.ts). Both pass test/unit/content-store.conformance.ts.
import type { Readable } from 'node:stream';
import type { Digest } from './digest.ts';

export interface BlobInfo {
  readonly digest: Digest;
  readonly size: number;
}

/** An inclusive byte range, as HTTP Range speaks of it. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * A blob being written. Writes may arrive in order (a registry download) or at any offset
 * (pieces from peers); `commit()` verifies the whole content against the digest, makes it visible
 * atomically and is the only way a blob enters the store. A failed commit leaves nothing visible.
 */
export interface Ingest {
  readonly digest: Digest;
  /** Bytes present at the start of the ingest when it was opened (resumed partial content). */
  readonly resumedBytes: number;
  /** Writes one buffer, or several back to back (one vectored write), at `offset`. */
  writeAt(data: Uint8Array | readonly Uint8Array[], offset: number): Promise<void>;
  /**
   * Reads back written bytes (for streaming a partial blob to waiting clients). Keeps working after
   * `commit()` until `close()`, so readers mid-stream are never cut off by the commit.
   */
  readAt(target: Uint8Array, offset: number): Promise<number>;
  /**
   * Stops hashing the blob as it is written (and reading back what came out of order), for a
   * writer that checks every byte against piece hashes whose list the supernode vouched for as
   * the blob's (VerifyOptions.vouched). Verifying without `vouched` then hashes the whole file.
   */
  forgoDigest(): void;
  /**
   * Checks size and digest without making the blob visible. Rejects with ERR_DIGEST_MISMATCH /
   * ERR_SIZE_MISMATCH (the ingest is then discarded). Cheap when writes came in order.
   */
  verify(expectedSize?: number, options?: VerifyOptions): Promise<BlobInfo>;
  /**
   * Verifies (unless already verified), makes the content durable, then visible, and releases the
   * handle — unless `keepReadable`, for readers mid-stream; then `close()` releases it later.
   */
  commit(expectedSize?: number, options?: VerifyOptions & { keepReadable?: boolean }): Promise<BlobInfo>;
  /** Discards the ingest. Idempotent, and never rejects (a file it cannot remove is left to the store's collector). */
  abort(): Promise<void>;
  /** Releases handles but keeps the partial content so a later `openIngest(.., {resume: true})` continues it. */
  suspend(): Promise<void>;
  /** Releases the read handle after a commit. Idempotent. */
  close(): Promise<void>;
}

export interface VerifyOptions {
  /**
   * The writer vouches for the bytes: it checked every piece against hashes whose list the
   * supernode's seed verified as the blob's (peer/p2p/p2p-transfer.ts vouches): the size is
   * checked, the digest is not hashed again. Nothing else passes it.
   */
  readonly vouched?: boolean;
}

export interface IngestOptions {
  readonly resume?: boolean;
  readonly expectedSize?: number;
}

export interface ContentStore {
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /** Reads a committed blob, whole or a range. Throws ERR_BLOB_UNKNOWN when absent. */
  read(digest: Digest, range?: ByteRange): Promise<Readable>;
  /**
   * Fills `target` from a committed blob at `offset` (a piece for a peer): no stream and no buffer of
   * its own. Throws ERR_BLOB_UNKNOWN when absent and ERR_INTERNAL on a short read.
   */
  readInto(digest: Digest, target: Uint8Array, offset: number): Promise<void>;
  /**
   * Opens an ingest; with `resume`, keeps partial content left by an earlier suspended ingest.
   * `expectedSize`, when the caller knows it, lets a store with a quota reserve the space up front
   * and refuse (ERR_DISK_QUOTA) before anything is written or promised to a client.
   */
  openIngest(digest: Digest, options?: IngestOptions): Promise<Ingest>;
  delete(digest: Digest): Promise<boolean>;
  list(): AsyncIterable<BlobInfo>;
  close(): Promise<void>;
}

/** A committed blob with the time it was last read (ms since the epoch). */
export interface BlobUsage extends BlobInfo {
  readonly accessedAt: number;
}

/** An ingest file: its bytes on disk (apparent size) and when it was last written. */
export interface IngestUsage {
  readonly digest: Digest;
  readonly size: number;
  readonly modifiedAt: number;
}

/**
 * What garbage collection needs beyond the ContentStore seam: last-access times that survive a
 * restart, and the ingest area (abandoned partial blobs). Both stores implement it; the quota,
 * leases and eviction live once, in src/store/managed-store.ts, over any CollectableStore.
 */
export interface CollectableStore extends ContentStore {
  /** Committed blobs with their last-access time. */
  usage(): AsyncIterable<BlobUsage>;
  /** Records that `digest` was read at `atMs`, durably. A missing blob is ignored. */
  touch(digest: Digest, atMs: number): Promise<void>;
  /** Ingest files present, live or abandoned. */
  ingests(): AsyncIterable<IngestUsage>;
  /** Removes an ingest file (the caller knows nothing is writing it). */
  removeIngest(digest: Digest): Promise<boolean>;
}

/** Pins on blobs: while a lease is held the blob is never evicted. */
export interface BlobLeases {
  /** Takes a lease on `digest` (held or not yet held); the returned function releases it, once. */
  lease(digest: Digest): () => void;
}
