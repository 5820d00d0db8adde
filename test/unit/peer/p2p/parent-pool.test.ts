import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import type { Digest } from '../../../../src/digest.ts';
import { CHOKE_PATIENCE_MS, ParentPool, USELESS_PATIENCE_MS } from '../../../../peer/p2p/parent-pool.ts';
import { ScriptedParent } from '../../../helpers/transfer-harness.ts';

const DIGEST = `sha256:${'a'.repeat(64)}` as Digest;

function pool(options: { clock?: ManualClock; maxParents?: number; have?: Set<number> } = {}): { pool: ParentPool; parents: Map<string, ScriptedParent> } {
  const parents = new Map<string, ScriptedParent>();
  const max = options.maxParents;
  const p = new ParentPool(
    {
      clock: options.clock ?? new ManualClock(),
      dialer: {
        dial: (wireAddr) => {
          const conn = new ScriptedParent(wireAddr, Buffer.alloc(0), [], []);
          parents.set(wireAddr, conn);
          return conn;
        },
      },
      events: { onReady() {}, onClose() {}, onPieces() {}, onUnchoke() {}, wanted: () => true },
    },
    { digest: DIGEST, layout: { size: 4 << 20, pieceSize: 512 * 1024 }, have: options.have ?? new Set(), ...(max !== undefined ? { maxParents: () => max } : {}) },
  );
  p.offer(['a', 'b', 'c'].map((id) => ({ peerId: id, wireAddr: id })));
  return { pool: p, parents };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("the parent pool's count of the ready parents holding each piece", () => {
  it('follows haves, bitfields, parents that become ready and parents that leave', async () => {
    const { pool: p, parents } = pool();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => parents.get(id)!);
    a!.connect([0, 1]);
    b!.connect([1]);
    await settle();
    expect([...p.holders(4)]).toEqual([1, 2, 0, 0]);
    // A have from a ready parent adds one holder, without counting every parent's pieces again.
    const counted = p.holders(4);
    b!.announce(2);
    a!.announce(2);
    expect(p.holders(4)).toBe(counted);
    expect([...p.holders(4)]).toEqual([1, 2, 2, 0]);
    // One from a parent that is not ready yet is counted once it is, with what it held before.
    c!.announce(3);
    expect([...p.holders(4)]).toEqual([1, 2, 2, 0]);
    c!.connect([0]);
    await settle();
    expect([...p.holders(4)]).toEqual([2, 2, 2, 1]);
    // A whole bitfield replaces what a parent was known to hold.
    a!.held.clear();
    a!.held.add(3);
    a!.emit('bitfield');
    expect([...p.holders(4)]).toEqual([1, 1, 1, 2]);
    b!.destroy('gone');
    await settle();
    expect([...p.holders(4)]).toEqual([1, 0, 0, 2]);
  });
});

describe("the parent pool's room for offered parents (the sync's wantParents)", () => {
  it('is its free room and the parents an offer would replace: none while every parent is busy, so the answer offers none', async () => {
    const clock = new ManualClock();
    const have = new Set<number>();
    const { pool: p, parents } = pool({ clock, maxParents: 4, have });
    // Three dialled of four: one free place, whatever they do.
    expect(p.room()).toBe(1);
    const [a, b, c] = ['a', 'b', 'c'].map((id) => parents.get(id)!);
    a!.connect([0]);
    b!.connect([1]);
    c!.connect([1], false);
    await settle();
    p.offer([{ peerId: 'd', wireAddr: 'd' }]);
    expect(p.room()).toBe(0);
    // c has kept us choked past the patience: an offer would replace it.
    clock.advance(CHOKE_PATIENCE_MS + 1);
    expect(p.room()).toBe(1);
    c!.unchokeNow();
    expect(p.room()).toBe(0);
    // We stored the one piece a holds: a holds nothing we lack and was given nothing for a while, so it would make room too.
    have.add(0);
    p.stored(0);
    clock.advance(USELESS_PATIENCE_MS);
    expect(p.room()).toBe(1);
    // What room counts is what an offer brings: of three offered, one is dialled in a's place.
    p.offer(['e', 'f', 'g'].map((id) => ({ peerId: id, wireAddr: id })));
    await settle();
    expect(a!.isClosed).toBe(true);
    expect([...parents.keys()]).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(p.room()).toBe(0);
  });

  it('counts every parent an offer would replace, and an offer of as many fresh parents replaces them all at once', async () => {
    // Paced syncs meet the supernode every few seconds: replacing one choking parent per sync left
    // a child behind three of them for seconds (simulated 1,000 peers, syncs every ~4 s).
    const clock = new ManualClock();
    const { pool: p, parents } = pool({ clock, maxParents: 3 });
    const [a, b, c] = ['a', 'b', 'c'].map((id) => parents.get(id)!);
    a!.connect([0], false);
    b!.connect([0], false);
    c!.connect([0]);
    await settle();
    expect(p.room()).toBe(0);
    clock.advance(CHOKE_PATIENCE_MS + 1);
    expect(p.room()).toBe(2);
    // One fresh parent among the offered replaces one of them; a parent we know is not fresh.
    p.offer([{ peerId: 'c', wireAddr: 'c' }, { peerId: 'd', wireAddr: 'd' }]);
    await settle();
    expect([a!.isClosed, b!.isClosed, c!.isClosed]).toEqual([true, false, false]);
    expect(p.room()).toBe(1);
    parents.get('d')!.connect([0]);
    await settle();
    p.offer(['e', 'f'].map((id) => ({ peerId: id, wireAddr: id })));
    await settle();
    // b is replaced by e; f finds no room (c and d are serving us).
    expect(b!.isClosed).toBe(true);
    expect([...parents.keys()]).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(p.size).toBe(3);
  });
});

describe('the interest the pool tells its parents (BEP 3)', () => {
  it('is interested exactly while a parent holds a piece we lack, following its bitfield, its haves and the pieces we store', async () => {
    const have = new Set<number>([0]);
    const { pool: p, parents } = pool({ have });
    const [a, b, c] = ['a', 'b', 'c'].map((id) => parents.get(id)!) as [ScriptedParent, ScriptedParent, ScriptedParent];
    a.connect([0]);
    b.connect([0, 1, 2]);
    c.connect([]);
    await settle();
    // a holds only what we have, c nothing: neither is told we are interested (their slots go to others).
    expect([a.isInterested, b.isInterested, c.isInterested]).toEqual([false, true, false]);
    // A have of a piece we lack makes us interested; one of a piece we hold does not.
    c.announce(0);
    expect(c.isInterested).toBe(false);
    c.announce(3);
    expect(c.isInterested).toBe(true);
    // Storing piece 3 leaves c nothing we lack; b still holds 1 and 2.
    have.add(3);
    p.stored(3);
    expect([b.isInterested, c.isInterested]).toEqual([true, false]);
    have.add(1);
    p.stored(1);
    have.add(2);
    p.stored(2);
    expect(b.isInterested).toBe(false);
    // A whole bitfield is counted again.
    a.held.add(5);
    a.emit('bitfield');
    expect(a.isInterested).toBe(true);
  });

  it('counts a choke against a parent only from when we asked it for pieces', async () => {
    const clock = new ManualClock();
    const have = new Set<number>([0]);
    const { pool: p, parents } = pool({ clock, maxParents: 3, have });
    const [a, b, c] = ['a', 'b', 'c'].map((id) => parents.get(id)!) as [ScriptedParent, ScriptedParent, ScriptedParent];
    a.connect([1]);
    b.connect([2]);
    c.connect([0], false);
    await settle();
    // c chokes us while we want nothing of it; when it announces a piece we lack, its patience starts.
    clock.advance(CHOKE_PATIENCE_MS / 2);
    c.announce(4);
    clock.advance(CHOKE_PATIENCE_MS - 1);
    expect(p.room()).toBe(0);
    clock.advance(2);
    expect(p.room()).toBe(1);
  });
});
