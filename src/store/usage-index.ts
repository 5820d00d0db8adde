// What the managed store holds, in memory: each committed blob's size and last read, kept in
// least-recently-read order (a Map re-inserted on every read iterates oldest first), and the bytes
// of each ingest. Usage is their sum; it is rebuilt from the store at start, so it survives restarts.
import type { Digest } from '../digest.ts';

export interface IndexedBlob {
  readonly digest: Digest;
  size: number;
  accessedAt: number;
  /** When accessedAt was last written through to the store. */
  persistedAt: number;
}

export class UsageIndex {
  private readonly blobs = new Map<Digest, IndexedBlob>();
  private readonly ingests = new Map<Digest, number>();
  private blobTotal = 0;
  private ingestTotal = 0;
  /** Access time of the most recently placed blob: a later one is appended without sorting. */
  private newestAt = -Infinity;

  get usedBytes(): number {
    return this.blobTotal + this.ingestTotal;
  }

  get blobBytes(): number {
    return this.blobTotal;
  }

  get ingestTotalBytes(): number {
    return this.ingestTotal;
  }

  get blobCount(): number {
    return this.blobs.size;
  }

  blobSize(digest: Digest): number | undefined {
    return this.blobs.get(digest)?.size;
  }

  accessedAt(digest: Digest): number | undefined {
    return this.blobs.get(digest)?.accessedAt;
  }

  /** Adds or replaces a blob, placed by its access time (loading at start may come in any order). */
  setBlob(digest: Digest, size: number, accessedAt: number): void {
    this.deleteBlob(digest);
    const entry: IndexedBlob = { digest, size, accessedAt, persistedAt: accessedAt };
    this.blobTotal += size;
    if (accessedAt >= this.newestAt) {
      this.blobs.set(digest, entry);
      this.newestAt = accessedAt;
      return;
    }
    const all = [...this.blobs.values(), entry].sort((a, b) => a.accessedAt - b.accessedAt);
    this.blobs.clear();
    for (const b of all) this.blobs.set(b.digest, b);
  }

  deleteBlob(digest: Digest): void {
    const entry = this.blobs.get(digest);
    if (!entry) return;
    this.blobs.delete(digest);
    this.blobTotal -= entry.size;
  }

  /** Marks a read at `now`; true when the time should be written through (not done for `persistEveryMs`). */
  touch(digest: Digest, now: number, persistEveryMs: number): boolean {
    const entry = this.blobs.get(digest);
    if (!entry) return false;
    entry.accessedAt = Math.max(entry.accessedAt, now);
    this.newestAt = Math.max(this.newestAt, entry.accessedAt);
    this.blobs.delete(digest);
    this.blobs.set(digest, entry);
    if (now - entry.persistedAt < persistEveryMs) return false;
    entry.persistedAt = now;
    return true;
  }

  /** Blobs, least recently read first. */
  oldestFirst(): IndexedBlob[] {
    return [...this.blobs.values()];
  }

  ingestBytes(digest: Digest): number {
    return this.ingests.get(digest) ?? 0;
  }

  setIngest(digest: Digest, bytes: number): void {
    this.ingestTotal += bytes - this.ingestBytes(digest);
    this.ingests.set(digest, bytes);
  }

  deleteIngest(digest: Digest): void {
    this.ingestTotal -= this.ingestBytes(digest);
    this.ingests.delete(digest);
  }
}
