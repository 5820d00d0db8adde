import { describe, expect, it } from 'vitest';
import type { Digest } from '../../../../src/digest.ts';
import { Bitfield } from '../../../../src/p2p/bitfield.ts';
import { BitfieldRecord } from '../../../../peer/p2p/bitfield-record.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}` as Digest;

/** A store whose writes hang until released, recording what was written. */
function slowKv() {
  const ops: string[] = [];
  const releases: Array<() => void> = [];
  return {
    ops,
    release: () => releases.shift()?.(),
    kv: {
      put: (_key: string, value: { pieces: string }): Promise<void> => {
        ops.push(`put ${Bitfield.fromBase64(8, value.pieces).count}`);
        return new Promise<void>((resolve) => releases.push(resolve));
      },
      del: async (): Promise<void> => {
        ops.push('del');
      },
    },
  };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('the persisted bitfield of a transfer', () => {
  it('coalesces saves asked while a write waits into one write, whose snapshot is taken when it runs', async () => {
    const store = slowKv();
    const have = new Bitfield(8);
    const record = new BitfieldRecord({ kv: store.kv }, { digest: DIGEST, size: 8 << 20, pieceSize: 1 << 20, have });
    have.set(0);
    const first = record.save();
    await settle();
    const waiting: Array<Promise<void>> = [];
    for (let i = 1; i < 8; i++) {
      have.set(i);
      waiting.push(record.save());
    }
    expect(store.ops).toEqual(['put 1']);
    store.release();
    await first;
    await settle();
    expect(store.ops).toEqual(['put 1', 'put 8']);
    store.release();
    await Promise.all(waiting);
    expect(store.ops).toEqual(['put 1', 'put 8']);
  });

  it('removes the record only after the writes under way, and writes nothing after', async () => {
    const store = slowKv();
    const have = new Bitfield(8);
    const record = new BitfieldRecord({ kv: store.kv }, { digest: DIGEST, size: 8 << 20, pieceSize: 1 << 20, have });
    have.set(0);
    void record.save();
    await settle();
    have.set(1);
    void record.save();
    const removed = record.remove();
    await settle();
    expect(store.ops).toEqual(['put 1']);
    store.release();
    await removed;
    // The queued save saw the removal and wrote nothing; the delete came last.
    expect(store.ops).toEqual(['put 1', 'del']);
    await record.save();
    expect(store.ops).toEqual(['put 1', 'del']);
  });
});
