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
  writeAt(data: Uint8Array, offset: number): Promise<void>;
  /** Reads back already-written bytes (for streaming a partial blob to waiting clients). */
  readAt(target: Uint8Array, offset: number): Promise<number>;
  /** Verifies size and digest, then makes the blob visible. Rejects with ERR_DIGEST_MISMATCH / ERR_SIZE_MISMATCH. */
  commit(expectedSize?: number): Promise<BlobInfo>;
  /** Discards the ingest. Idempotent. */
  abort(): Promise<void>;
  /** Releases handles but keeps the partial content so a later `openIngest(.., {resume: true})` continues it. */
  suspend(): Promise<void>;
}

export interface ContentStore {
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /** Reads a committed blob, whole or a range. Throws ERR_BLOB_UNKNOWN when absent. */
  read(digest: Digest, range?: ByteRange): Promise<Readable>;
  /** Opens an ingest; with `resume`, keeps partial content left by an earlier suspended ingest. */
  openIngest(digest: Digest, options?: { resume?: boolean }): Promise<Ingest>;
  delete(digest: Digest): Promise<boolean>;
  list(): AsyncIterable<BlobInfo>;
  close(): Promise<void>;
}
