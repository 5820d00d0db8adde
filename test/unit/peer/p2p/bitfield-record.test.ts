// The persisted bitfield of a transfer: writes chained (an older snapshot never lands last),
// coalesced, spaced at most one per period on the transfer's clock, flushed on shutdown, and
// nothing written after the record is removed.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import type { Digest } from '../../../../src/digest.ts';
import { Bitfield } from '../../../../src/p2p/bitfield.ts';
import { BitfieldRecord } from '../../../../peer/p2p/bitfield-record.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}` as Digest;

/** A store whose writes hang until released (or land at once with `instant`), recording what was written. */
function slowKv(instant = false) {
  const ops: string[] = [];
  const releases: Array<() => void> = [];
  return {
    ops,
    release: () => releases.shift()?.(),
    kv: {
      put: (_key: string, value: { pieces: string }): Promise<void> => {
        ops.push(`put ${Bitfield.fromBase64(8, value.pieces).count}`);
        return instant ? Promise.resolve() : new Promise<void>((resolve) => releases.push(resolve));
      },
      del: async (): Promise<void> => {
        ops.push('del');
      },
    },
  };
}

const settle = () => new Promise((r) => setImmediate(r));

/** A record of an 8-piece blob over a fresh store and clock, its first piece verified. */
function setup(options: { instant?: boolean; everyMs?: number } = {}) {
  const store = slowKv(options.instant);
  const clock = new ManualClock();
  const have = new Bitfield(8);
  const record = new BitfieldRecord({ kv: store.kv, clock }, { digest: DIGEST, size: 8 << 20, pieceSize: 1 << 20, have, everyMs: options.everyMs ?? 0 });
  have.set(0);
  return { store, clock, have, record };
}

describe('the persisted bitfield of a transfer', () => {
  it('coalesces saves asked while a write waits into one write, whose snapshot is taken when it runs', async () => {
    const { store, have, record } = setup();
    record.save();
    await settle();
    for (let i = 1; i < 8; i++) {
      have.set(i);
      record.save();
    }
    expect(store.ops).toEqual(['put 1']);
    store.release();
    await settle();
    // The first write landed; the saves asked meanwhile made one more, holding all eight.
    expect(store.ops).toEqual(['put 1', 'put 8']);
    store.release();
    await record.flush();
    expect(store.ops).toEqual(['put 1', 'put 8']);
  });

  it('writes at most once a period: the first save at once, the rest of the period in one write at its end', async () => {
    const { store, clock, have, record } = setup({ instant: true, everyMs: 1000 });
    record.save();
    await settle();
    expect(store.ops).toEqual(['put 1']);
    for (let i = 1; i < 6; i++) {
      clock.advance(100);
      have.set(i);
      record.save();
    }
    await settle();
    expect(store.ops).toEqual(['put 1']);
    clock.advance(499);
    await settle();
    expect(store.ops).toEqual(['put 1']);
    clock.advance(1);
    await settle();
    expect(store.ops).toEqual(['put 1', 'put 6']);
    // A save a whole period after the last write goes at once.
    clock.advance(1000);
    have.set(6);
    record.save();
    await settle();
    expect(store.ops).toEqual(['put 1', 'put 6', 'put 7']);
  });

  it('a flush (the peer shuts down) writes the waiting snapshot at once', async () => {
    const { store, clock, have, record } = setup({ instant: true, everyMs: 1000 });
    record.save();
    have.set(1);
    have.set(2);
    record.save();
    await record.flush();
    // The first write takes its snapshot when its turn comes (all three); the second had nothing to wait for.
    expect(store.ops).toEqual(['put 3']);
    have.set(3);
    record.save();
    await record.flush();
    expect(store.ops).toEqual(['put 3', 'put 4']);
    expect(clock.pending).toBe(0);
  });

  it('removes the record only after the writes under way, and writes nothing after', async () => {
    const { store, clock, have, record } = setup({ everyMs: 1000 });
    record.save();
    await settle();
    have.set(1);
    record.save();
    const removed = record.remove();
    await settle();
    expect(store.ops).toEqual(['put 1']);
    store.release();
    await removed;
    // The waiting save was dropped with its timer; the delete came last.
    expect(store.ops).toEqual(['put 1', 'del']);
    expect(clock.pending).toBe(0);
    record.save();
    clock.advance(5000);
    await record.flush();
    expect(store.ops).toEqual(['put 1', 'del']);
  });
});
