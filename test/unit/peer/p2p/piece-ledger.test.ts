import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../../src/p2p/bitfield.ts';
import { PieceLedger, SEED_SOURCE } from '../../../../peer/p2p/piece-ledger.ts';

describe('PieceLedger', () => {
  it('names a second request of a piece a copy: endgame from a parent, starved-seed-grant from the seed', () => {
    const l = new PieceLedger(new Bitfield(4));
    expect(l.request(0, 'a')).toBe('first');
    expect(l.request(0, 'b')).toBe('endgame');
    expect(l.request(1, SEED_SOURCE, 'starved-seed-grant')).toBe('first');
    expect(l.request(2, 'a')).toBe('first');
    expect(l.request(2, SEED_SOURCE, 'starved-seed-grant')).toBe('starved-seed-grant');
    expect(l.copyCause(0)).toBe('endgame');
    expect(l.copyCause(1)).toBe('late-arrival');
    expect(l.copyCause(2)).toBe('starved-seed-grant');
    expect(l.inFlight.get(0)).toBe(2);
    expect(() => l.request(0, 'a')).toThrow(/already requested/);
  });

  it('refuses to write a piece already held or being written', () => {
    const l = new PieceLedger(new Bitfield(2));
    expect(l.beginWrite(0)).toBe(true);
    expect(l.beginWrite(0)).toBe(false);
    l.endWrite(0, false);
    expect(l.isMissing(0)).toBe(true);
    expect(l.beginWrite(0)).toBe(true);
    l.endWrite(0, true);
    expect(l.have.has(0)).toBe(true);
    expect(l.beginWrite(0)).toBe(false);
  });

  it('adds wasted bytes up by cause', () => {
    const l = new PieceLedger(new Bitfield(1));
    l.wasted('endgame', 10);
    l.wasted('stall-reassign', 5);
    l.wasted('endgame', 1);
    expect(l.stats.duplicateBytes.endgame).toBe(11);
    expect(l.duplicateBytes).toBe(16);
  });

  it('keeps the picker counts equal to the sources holding each piece, whatever the order of requests and releases', () => {
    const op = fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 3 }), fc.constantFrom('a', 'b', 'c', SEED_SOURCE));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const l = new PieceLedger(new Bitfield(4));
        for (const [add, piece, source] of ops) {
          if (add && !l.holders(piece).includes(source)) l.request(piece, source);
          else if (!add) l.release(piece, source);
        }
        for (let i = 0; i < 4; i++) expect(l.inFlight.get(i) ?? 0).toBe(l.holders(i).length);
      }),
      { numRuns: 200 },
    );
  });
});
