import { describe, expect, it } from 'vitest';
import { MAX_GSO_QDISC_BYTES, tbfArgs } from '../../../bench/testbed/shaping.ts';

const burstOf = (args: string[]): number => Number(args[args.indexOf('burst') + 1]);

describe('tbfArgs, the bed link shaper', () => {
  it('holds a whole TSO packet in its bucket at every rate (tbf segments longer packets in software)', () => {
    for (const mbit of [1, 10, 40, 100, 1000]) expect(burstOf(tbfArgs(mbit))).toBeGreaterThan(MAX_GSO_QDISC_BYTES);
  });

  it('holds one 4 ms timer tick of traffic at high rates', () => {
    expect(burstOf(tbfArgs(10_000))).toBe(Math.ceil(10e9 / 8 / 250));
  });

  it('refuses a rate that is not a positive number', () => {
    expect(() => tbfArgs(0)).toThrow(/positive/);
    expect(() => tbfArgs(Number.NaN)).toThrow(/positive/);
  });
});
