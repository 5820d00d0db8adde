import { describe, expect, it } from 'vitest';
import { scanWindow, windowPositions } from '../../../../supernode/p2p/scan-window.ts';

function seeded(seed: number): () => number {
  let x = seed;
  return () => (x = (x * 48271) % 2147483647) / 2147483647;
}

describe('the window of holders a parent scan reads', () => {
  it('is every holder, in order, when there are no more than the limit', () => {
    expect([...windowPositions(scanWindow(7, 100, Math.random), 7)]).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect([...windowPositions(scanWindow(0, 100, Math.random), 0)]).toEqual([]);
  });

  it('is `limit` distinct holders otherwise, drawn from the whole swarm, whatever its size shares with the limit', () => {
    const random = seeded(11);
    for (const n of [101, 1000, 1024, 10_000, 9_973]) {
      const seen = new Uint32Array(n);
      const scans = Math.ceil((20 * n) / 100);
      for (let s = 0; s < scans; s++) {
        const positions = [...windowPositions(scanWindow(n, 100, random), n)];
        if (positions.length !== 100 || new Set(positions).size !== 100 || positions.some((p) => !(p >= 0 && p < n))) {
          expect.fail(`n = ${n}: not 100 distinct holders: ${positions.join(',')}`);
        }
        for (const p of positions) seen[p]!++;
      }
      // Each holder is read ~20 times over these scans; none is left out or read far more often.
      expect(Math.min(...seen)).toBeGreaterThanOrEqual(5);
      expect(Math.max(...seen)).toBeLessThanOrEqual(45);
    }
  });

  it('does not keep holders together: two holders side by side share few windows', () => {
    // A window that moved on by the limit read holders 0 and 1 together every time it read either.
    const random = seeded(5);
    let either = 0;
    let both = 0;
    for (let s = 0; s < 2000; s++) {
      const w = new Set(windowPositions(scanWindow(1000, 100, random), 1000));
      if (w.has(0) || w.has(1)) either++;
      if (w.has(0) && w.has(1)) both++;
    }
    expect(either).toBeGreaterThan(200);
    expect(both / either).toBeLessThan(0.3);
  });
});
