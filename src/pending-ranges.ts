// Byte ranges that never overlap, by start: what an ingest has written beyond its hashed prefix and
// not hashed yet (fs-content-store.ts). An overlap check is one binary search over the starts in
// order instead of a walk over every range: P2P pieces land out of order, and the walk made a
// blob's writes quadratic in its piece count (~0.4-0.7 % of the bed's peer CPU at N = 16, 256 MiB,
// V8 profiles of every daemon).
export class PendingRanges {
  private readonly lengths = new Map<number, number>();
  /** The starts, ascending. */
  private readonly starts: number[] = [];

  /** The length of the range starting at `start`, if there is one. */
  get(start: number): number | undefined {
    return this.lengths.get(start);
  }

  /** Adds [start, start + length); the caller has checked that it overlaps none (see overlaps). */
  add(start: number, length: number): void {
    if (this.lengths.has(start)) throw new Error(`a range starts at ${start} already`);
    this.lengths.set(start, length);
    this.starts.splice(this.firstFrom(start), 0, start);
  }

  delete(start: number): void {
    if (!this.lengths.delete(start)) return;
    this.starts.splice(this.firstFrom(start), 1);
  }

  clear(): void {
    this.lengths.clear();
    this.starts.length = 0;
  }

  /** Whether [offset, offset + length) overlaps a range: only the last one starting before its end can. */
  overlaps(offset: number, length: number): boolean {
    const k = this.firstFrom(offset + length);
    if (k === 0) return false;
    const start = this.starts[k - 1]!;
    return start + this.lengths.get(start)! > offset;
  }

  /** The index of the first start at or after `at`. */
  private firstFrom(at: number): number {
    const starts = this.starts;
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! < at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
