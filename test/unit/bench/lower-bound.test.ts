import { describe, expect, it } from 'vitest';
import { lowerBoundSeconds } from '../../../bench/fanout/lower-bound.ts';

const S = 256 * 1024 * 1024;
const at = (mbit: number): number => S / ((mbit * 1e6) / 8);

describe('T*, the fan-out lower bound', () => {
  it('is S/u when every link has the same rate (the origin must send S once)', () => {
    expect(lowerBoundSeconds(S, { registryUpMbit: 100, peerDownMbit: 100, peerUpMbit: Array(16).fill(100) })).toBeCloseTo(at(100), 6);
  });

  it('is S/d_peer when the registry is fast and peers download slowly', () => {
    expect(lowerBoundSeconds(S, { registryUpMbit: 1000, peerDownMbit: 50, peerUpMbit: Array(4).fill(1000) })).toBeCloseTo(at(50), 6);
  });

  it('is N*S over the total upload when peers upload slowly', () => {
    const t = lowerBoundSeconds(S, { registryUpMbit: 100, peerDownMbit: 100, peerUpMbit: Array(16).fill(10) });
    expect(t).toBeCloseTo((16 * S) / (12.5e6 + 16 * 1.25e6), 6);
    expect(t).toBeGreaterThan(at(100));
  });
});
