import { describe, expect, it } from 'vitest';
import { PendingRanges } from '../../../src/pending-ranges.ts';

/** A walk over every range: what the binary search must agree with. */
function overlapsAny(ranges: Map<number, number>, offset: number, length: number): boolean {
  for (const [o, n] of ranges) if (o < offset + length && offset < o + n) return true;
  return false;
}

describe('PendingRanges', () => {
  it('finds an overlap with any range, not only the nearest, and none in the gaps or at the edges', () => {
    const r = new PendingRanges();
    r.add(16, 8);
    r.add(48, 8);
    r.add(32, 8);
    expect(r.overlaps(20, 2)).toBe(true);
    expect(r.overlaps(10, 7)).toBe(true);
    expect(r.overlaps(39, 100)).toBe(true);
    expect(r.overlaps(0, 16)).toBe(false);
    expect(r.overlaps(24, 8)).toBe(false);
    expect(r.overlaps(56, 10)).toBe(false);
    r.delete(32);
    expect(r.overlaps(33, 2)).toBe(false);
    expect(r.get(48)).toBe(8);
    expect(() => r.add(16, 4)).toThrow();
    r.clear();
    expect(r.overlaps(0, 1_000)).toBe(false);
  });

  it('agrees with a walk over every range through random adds, deletes and checks', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const r = new PendingRanges();
    const ref = new Map<number, number>();
    let most = 0;
    for (let step = 0; step < 20_000; step++) {
      const offset = rand(4_000);
      const length = 1 + rand(60);
      const op = rand(5);
      if (op <= 1 && !overlapsAny(ref, offset, length)) {
        r.add(offset, length);
        ref.set(offset, length);
      } else if (op === 2 && ref.size > 0) {
        const start = [...ref.keys()][rand(ref.size)]!;
        r.delete(start);
        ref.delete(start);
      } else {
        expect(r.overlaps(offset, length)).toBe(overlapsAny(ref, offset, length));
      }
      expect(r.get(offset)).toBe(ref.get(offset));
      most = Math.max(most, ref.size);
    }
    expect(most).toBeGreaterThan(20);
  });
});
