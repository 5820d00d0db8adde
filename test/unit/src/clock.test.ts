import { afterEach, describe, expect, it, vi } from 'vitest';
import { delayToGrid, ManualClock, steadyClock, systemClock } from '../../../src/clock.ts';
import { clockConformance as conformance } from './clock.conformance.ts';

conformance('systemClock', () => ({ clock: systemClock, wait: (ms) => new Promise((r) => setTimeout(r, ms + 5)) }));
conformance('steadyClock', () => ({ clock: steadyClock, wait: (ms) => new Promise((r) => setTimeout(r, ms + 5)) }));
conformance('ManualClock', () => {
  const clock = new ManualClock(1_000);
  return { clock, wait: async (ms) => clock.advance(ms) };
});

describe('steadyClock', () => {
  afterEach(() => vi.restoreAllMocks());

  it('reads the epoch time it started at, and does not step back when the wall clock is set back an hour', async () => {
    expect(Math.abs(steadyClock.now() - Date.now())).toBeLessThan(1_000);
    const before = steadyClock.now();
    const deadline = before + 30;
    const wall = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(wall - 3_600_000);
    expect(systemClock.now()).toBe(wall - 3_600_000);
    expect(steadyClock.now()).toBeGreaterThanOrEqual(before);
    // A deadline taken before the step comes when its time has passed, not an hour later.
    await new Promise((r) => setTimeout(r, 40));
    expect(steadyClock.now()).toBeGreaterThanOrEqual(deadline);
    expect(steadyClock.now() - before).toBeLessThan(1_000);
  });
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

describe('delayToGrid', () => {
  it('waits for the next grid point of a fractional phase and never a rounding error (the same tick again)', () => {
    // Phases like the simulation's (its clock is fractional): a timer fired on a grid point may read
    // a time a fraction of a nanosecond short of it, e.g. 555.1716860356992 on the grid of
    // 55.17168603569922 + k * 250, which once asked for a wait of 5.7e-14 ms.
    expect(delayToGrid(555.1716860356992, 55.17168603569922, 250)).toBeGreaterThan(249);
    for (let trial = 0; trial < 200; trial++) {
      const phase = 1000 * ((trial * 0.6180339887) % 1);
      let t = phase + (trial % 7) * 0.37;
      for (let i = 0; i < 200; i++) {
        const wait = delayToGrid(t, phase, 250);
        expect(wait).toBeGreaterThanOrEqual(1);
        expect(wait).toBeLessThanOrEqual(251);
        t += wait;
        const off = (((t - phase) % 250) + 250) % 250;
        expect(Math.min(off, 250 - off)).toBeLessThan(1e-6);
      }
    }
  });

  it('counts whole milliseconds on an integer clock: from a grid point, one period', () => {
    expect(delayToGrid(1_000, 0, 250)).toBe(250);
    expect(delayToGrid(1_001, 0, 250)).toBe(249);
    expect(delayToGrid(1_249, 0, 250)).toBe(1);
    expect(delayToGrid(7, 8, 250)).toBe(1);
  });
});
