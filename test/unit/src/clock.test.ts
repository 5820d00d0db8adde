import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../../src/clock.ts';
import { clockConformance as conformance } from './clock.conformance.ts';

conformance('systemClock', () => ({ clock: systemClock, wait: (ms) => new Promise((r) => setTimeout(r, ms + 5)) }));
conformance('ManualClock', () => {
  const clock = new ManualClock(1_000);
  return { clock, wait: async (ms) => clock.advance(ms) };
});

describe('ManualClock', () => {
  it('runs timers due at the same instant in the order they were set, at their own time', () => {
    const clock = new ManualClock(0);
    const ran: Array<[string, number]> = [];
    clock.setTimeout(() => ran.push(['b', clock.now()]), 10);
    clock.setTimeout(() => ran.push(['c', clock.now()]), 10);
    clock.setTimeout(() => ran.push(['a', clock.now()]), 5);
    clock.advance(100);
    expect(ran).toEqual([['a', 5], ['b', 10], ['c', 10]]);
    expect(clock.now()).toBe(100);
  });

  it('runs an interval once per period over a long advance', () => {
    const clock = new ManualClock(0);
    let n = 0;
    clock.setInterval(() => n++, 250);
    clock.advance(1_000);
    expect(n).toBe(4);
  });
});
