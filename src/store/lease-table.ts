// Leases on blobs: counted pins that keep a blob from being evicted while something uses it (a
// client reading it, a peer fetching pieces, a download writing it, a preheat job holding it).
import type { Digest } from '../digest.ts';

export class LeaseTable {
  private readonly counts = new Map<Digest, number>();

  /** Takes a lease; the returned function releases it (calling it again does nothing). */
  acquire(digest: Digest): () => void {
    this.counts.set(digest, (this.counts.get(digest) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.counts.get(digest) ?? 1) - 1;
      if (n <= 0) this.counts.delete(digest);
      else this.counts.set(digest, n);
    };
  }

  isLeased(digest: Digest): boolean {
    return this.counts.has(digest);
  }

  /** Digests with at least one lease (for reports and tests). */
  get size(): number {
    return this.counts.size;
  }
}
