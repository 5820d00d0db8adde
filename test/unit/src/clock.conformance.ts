// The conformance suite every Clock passes (src/clock.ts, bench/sim/queue-clock.ts).
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/clock.ts';

/** `wait(ms)` lets `ms` of the clock's time pass. */
export function clockConformance(name: string, make: () => { clock: Clock; wait: (ms: number) => Promise<void> }): void {
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

