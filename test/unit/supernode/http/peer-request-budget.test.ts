// A peer's allowance of supernode calls: over any schedule of calls, what is admitted in any time
// window is at most the burst plus the rate over the window; a peer within its rate is never
// refused; one peer's calls never take another's allowance; idle peers' entries are dropped.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { ANSWER_BYTES_PER_CALL, PeerRequestBudget, SEED_BYTES_PER_CALL } from '../../../../supernode/http/peer-request-budget.ts';

describe('PeerRequestBudget', () => {
  it('admits at most burst + rate x window in any window, and never refuses a peer within its rate', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.array(fc.record({ gapMs: fc.nat(500), calls: fc.nat(40) }), { minLength: 1, maxLength: 60 }), (perSecond, schedule) => {
        const clock = new ManualClock(0);
        const budget = new PeerRequestBudget({ clock }, { perSecond, burst: 20 });
        const admitted: number[] = [];
        for (const { gapMs, calls } of schedule) {
          clock.advance(gapMs);
          for (let i = 0; i < calls; i++) if (budget.admit('p')) admitted.push(clock.now());
        }
        for (let i = 0; i < admitted.length; i++) {
          for (let j = i; j < admitted.length; j++) expect(j - i + 1).toBeLessThanOrEqual(20 + ((admitted[j]! - admitted[i]!) / 1000) * perSecond + 1e-9);
        }
        // A polite peer (one call per 1/perSecond s) is always admitted, whatever a noisy one does.
        const polite = new PeerRequestBudget({ clock }, { perSecond, burst: 20 });
        for (let i = 0; i < 50; i++) {
          for (let k = 0; k < 30; k++) polite.admit('noisy');
          expect(polite.admit('polite')).toBe(true);
          clock.advance(Math.ceil(1000 / perSecond));
        }
      }),
      { numRuns: 100 },
    );
  });

  it("charges an answer by its bytes: over any window the calls' answers cost at most burst + rate x window (the last one whole), and answers of a call's bytes cost nothing more", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.array(fc.record({ gapMs: fc.nat(500), calls: fc.nat(10), bytes: fc.nat(64 * ANSWER_BYTES_PER_CALL) }), { minLength: 1, maxLength: 60 }), (perSecond, schedule) => {
        const clock = new ManualClock(0);
        const budget = new PeerRequestBudget({ clock }, { perSecond, burst: 20 });
        const small = new PeerRequestBudget({ clock }, { perSecond, burst: 20 });
        const plain = new PeerRequestBudget({ clock }, { perSecond, burst: 20 });
        const admitted: Array<{ at: number; cost: number }> = [];
        for (const { gapMs, calls, bytes } of schedule) {
          clock.advance(gapMs);
          for (let i = 0; i < calls; i++) {
            if (budget.admit('p')) {
              budget.charge('p', bytes);
              admitted.push({ at: clock.now(), cost: Math.max(1, Math.ceil(bytes / ANSWER_BYTES_PER_CALL)) });
            }
            // Answers of a call's bytes or less: the same as not charging at all.
            const a = small.admit('p');
            if (a) small.charge('p', bytes % (ANSWER_BYTES_PER_CALL + 1));
            expect(a).toBe(plain.admit('p'));
          }
        }
        for (let i = 0; i < admitted.length; i++) {
          let cost = 0;
          for (let j = i; j < admitted.length; j++) {
            cost += admitted[j]!.cost;
            expect(cost).toBeLessThanOrEqual(20 + ((admitted[j]!.at - admitted[i]!.at) / 1000) * perSecond + admitted[j]!.cost + 1e-9);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it("a refusal's Retry-After is the whole seconds until a call is back: the peer is admitted once it has waited them, and not a second sooner", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.array(fc.record({ gapMs: fc.nat(500), calls: fc.nat(10), bytes: fc.nat(64 * ANSWER_BYTES_PER_CALL) }), { minLength: 1, maxLength: 40 }), (perSecond, schedule) => {
        // Replays the schedule up to its first refusal (if any) on a fresh budget.
        const replay = (): { budget: PeerRequestBudget; clock: ManualClock; seconds?: number } => {
          const clock = new ManualClock(0);
          const budget = new PeerRequestBudget({ clock }, { perSecond, burst: 20 });
          for (const { gapMs, calls, bytes } of schedule) {
            clock.advance(gapMs);
            for (let i = 0; i < calls; i++) {
              const refused = budget.admitOrRefuse('p');
              if (refused) {
                expect(refused.code).toBe('ERR_TOO_MANY_REQUESTS');
                expect(refused.message).toContain(`try again in ${String(refused.detail.retryAfter)} s`);
                return { budget, clock, seconds: refused.detail.retryAfter as number };
              }
              budget.charge('p', bytes);
            }
          }
          return { budget, clock };
        };
        const first = replay();
        if (first.seconds === undefined) return;
        expect(Number.isSafeInteger(first.seconds) && first.seconds >= 1).toBe(true);
        first.clock.advance(first.seconds * 1000);
        expect(first.budget.admitOrRefuse('p')).toBeUndefined();
        if (first.seconds > 1) {
          const again = replay();
          again.clock.advance((first.seconds - 1) * 1000);
          expect(again.budget.admitOrRefuse('p')?.code).toBe('ERR_TOO_MANY_REQUESTS');
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a seed piece pays for at most one call, by its bytes: over any window the calls admitted are at most burst + rate x window + the credits, never more than the burst at once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.array(fc.record({ gapMs: fc.nat(200), pieces: fc.array(fc.nat(4 * SEED_BYTES_PER_CALL), { maxLength: 8 }), calls: fc.nat(12) }), { minLength: 1, maxLength: 60 }),
        (perSecond, schedule) => {
          const clock = new ManualClock(0);
          const budget = new PeerRequestBudget({ clock }, { perSecond, burst: 20 });
          budget.admit('p');
          const admitted: Array<{ at: number; credits: number }> = [];
          let credits = 0;
          for (const { gapMs, pieces, calls } of schedule) {
            clock.advance(gapMs);
            for (const bytes of pieces) {
              budget.credit('p', bytes);
              credits += Math.min(1, bytes / SEED_BYTES_PER_CALL);
            }
            for (let i = 0; i < calls; i++) if (budget.admit('p')) admitted.push({ at: clock.now(), credits });
          }
          for (let i = 0; i < admitted.length; i++) {
            for (let j = i; j < admitted.length; j++) {
              const window = (admitted[j]!.at - admitted[i]!.at) / 1000;
              expect(j - i + 1).toBeLessThanOrEqual(20 + window * perSecond + (admitted[j]!.credits - admitted[i]!.credits) + 1 + 1e-9);
            }
          }
          // However much was credited, no more than the burst at one instant.
          for (let k = 0; k < 100; k++) budget.credit('p', SEED_BYTES_PER_CALL);
          let now = 0;
          while (budget.admit('p')) now++;
          expect(now).toBe(20);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a peer syncing once a seed piece is never refused, however fast the pieces come; a tiny blob's piece fetched over and over pays for almost nothing; a peer with no record gains none", () => {
    const clock = new ManualClock(0);
    const budget = new PeerRequestBudget({ clock }, { perSecond: 10, burst: 20 });
    for (let i = 0; i < 5_000; i++) {
      budget.credit('fast', 512 * 1024);
      expect(budget.admit('fast')).toBe(true);
      clock.advance(1);
    }
    for (let i = 0; i < 20; i++) budget.admit('tiny');
    expect(budget.admit('tiny')).toBe(false);
    for (let i = 0; i < 200; i++) budget.credit('tiny', 284);
    expect(budget.admit('tiny')).toBe(false);
    const fresh = new PeerRequestBudget({ clock }, { perSecond: 10, burst: 20 });
    fresh.credit('never-called', SEED_BYTES_PER_CALL);
    expect(fresh.size).toBe(0);
  });

  it('0 per second is no limit; entries of idle peers are dropped once there are many', () => {
    const clock = new ManualClock(0);
    const open = new PeerRequestBudget({ clock }, { perSecond: 0 });
    for (let i = 0; i < 10_000; i++) expect(open.admit('p')).toBe(true);
    expect(open.size).toBe(0);
    const budget = new PeerRequestBudget({ clock }, { perSecond: 10, burst: 20 });
    for (let i = 0; i < 5_000; i++) budget.admit(`peer-${i}`);
    clock.advance(60_000);
    for (let i = 0; i < 5_000; i++) budget.admit(`later-${i}`);
    // The first 5,000 are idle (full again) by then: dropped, so only the active ones are kept
    // (authenticated peer ids only, so never more than the tracker holds).
    expect(budget.size).toBeLessThanOrEqual(5_000);
  });
});
