import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock, type Clock } from '../../../src/clock.ts';

// One conformance suite for every Clock: `wait(ms)` lets `ms` of the clock's time pass.
function conformance(name: string, make: () => { clock: Clock; wait: (ms: number) => Promise<void> }): void {
  describe(`${name} (Clock conformance)`, () => {
    it('runs a timeout once, after its delay, and not when cancelled', async () => {
      const { clock, wait } = make();
      const ran: string[] = [];
      clock.setTimeout(() => ran.push('a'), 20);
      clock.setTimeout(() => ran.push('b'), 20).cancel();
      await wait(5);
      expect(ran).toEqual([]);
      await wait(60);
      expect(ran).toEqual(['a']);
    });

    it('repeats an interval until it is cancelled', async () => {
      const { clock, wait } = make();
      let n = 0;
      const t = clock.setInterval(() => n++, 10);
      await wait(45);
      expect(n).toBeGreaterThanOrEqual(2);
      t.cancel();
      const seen = n;
      await wait(40);
      expect(n).toBe(seen);
    });

    it('runs `soon` before a timer that falls due later', async () => {
      const { clock, wait } = make();
      const ran: string[] = [];
      clock.setTimeout(() => ran.push('timer'), 15);
      clock.soon(() => ran.push('soon'));
      await wait(40);
      expect(ran).toEqual(['soon', 'timer']);
    });

    it('moves forward', async () => {
      const { clock, wait } = make();
      const t0 = clock.now();
      await wait(20);
      expect(clock.now()).toBeGreaterThanOrEqual(t0 + 15);
    });
  });
}

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
