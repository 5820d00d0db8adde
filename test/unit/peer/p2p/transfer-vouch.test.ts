// A transfer commits its blob vouched (no second sha256 pass) only when every piece it wrote was
// checked against exactly the piece hashes the supernode vouched for with the task.
import { describe, expect, it } from 'vitest';
import { pieceHashList } from '../../../../src/p2p/metainfo.ts';
import { TransferVouch } from '../../../../peer/p2p/transfer-vouch.ts';
import { harness, offerParents, PIECE_BYTES, type Harness } from '../../../helpers/transfer-harness.ts';
import type { Digest } from '../../../../src/digest.ts';

async function fromParents(h: Harness, offer = true): Promise<void> {
  if (offer) await offerParents(h, { a: [0, 1, 2], b: [0, 1, 2] });
  for (let k = 0; k < 10 && h.transfer.state.phase === 'p2p'; k++) {
    for (const p of h.parents.values()) p.deliver();
    await h.settle();
  }
  await h.transfer.done;
  expect(h.transfer.state.phase).toBe('done');
}

/** The list the supernode would vouch for: the harness blob's hashes (its digest and layout). */
function listOf(h: Pick<Harness, 'digest' | 'pieceHashes'>): string {
  return pieceHashList({ digest: h.digest, pieceSize: PIECE_BYTES, hashes: h.pieceHashes })!;
}

describe('commits vouched for by the supernode', () => {
  it('a transfer whose every piece checked against the vouched list commits vouched', async () => {
    const probe = harness({ pieces: 3, parents: [] });
    const h = harness({ pieces: 3, parents: ['a', 'b'], hashList: listOf(probe) });
    await fromParents(h);
    expect(h.commits).toEqual([{ vouched: true }]);
    expect(h.forgone).toEqual([true]);
    expect(h.supernode.bodies.map((b) => b.wantHashList)).toEqual(h.supernode.bodies.map(() => undefined));
  });

  it('learns the list from a seed piece that checks against its hash, not from one that does not', async () => {
    const probe = harness({ pieces: 2, parents: [] });
    const list = listOf(probe);
    const h = harness({ pieces: 2, parents: [], hashes: [null, null] });
    await h.settle();
    h.supernode.answerWith({ hashes: [null, null], parents: [], seedGrants: [0], availability: [] });
    await h.settle();
    expect(h.supernode.seedAsked).toEqual([0]);
    // A piece whose bytes are not those of the hash it came with: its list is not taken.
    h.supernode.serveSeed(0, { hash: 'f'.repeat(64), hashList: 'e'.repeat(64) });
    await h.settle();
    expect(h.forgone).toEqual([]);
    // Piece 1 granted at the next sync, and served whole with its hash.
    if (h.supernode.syncs.length === 0) await h.advance(600);
    while (h.supernode.syncs.length > 1) h.supernode.answer();
    h.supernode.answerWith({ hashes: [null, null], parents: [], seedGrants: [1], availability: [] });
    await h.settle();
    expect(h.supernode.seedAsked).toEqual([0, 1]);
    h.supernode.serveSeed(1, { hash: h.pieceHashes[1]!, hashList: list });
    await h.settle();
    // Learnt from the first piece that checked, long before half the blob: the in-order digest stops.
    expect(h.forgone).toEqual([true]);
  });

  it('asks its syncs for the list from half the blob on until one brings it, then stops hashing the blob in order and commits vouched', async () => {
    const probe = harness({ pieces: 4, parents: [] });
    const h = harness({ pieces: 4, parents: ['a'] });
    await offerParents(h, { a: [0, 1, 2, 3] });
    const a = h.parents.get('a')!;
    for (let k = 0; k < 20 && h.transfer.pieces.count < 2; k++) {
      a.deliver(1);
      await h.settle();
    }
    expect(h.transfer.pieces.count).toBe(2);
    await h.advance(1_000, 250);
    const asked = h.supernode.bodies.map((b) => b.wantHashList === true);
    expect(asked[0]).toBe(false); // held nothing
    expect(asked.at(-1)).toBe(true);
    expect(h.forgone).toEqual([]);
    while (h.supernode.syncs.length > 1) h.supernode.answer();
    h.supernode.answer({ hashList: listOf(probe) });
    await h.settle();
    expect(h.forgone).toEqual([true]);
    const before = h.supernode.bodies.length;
    for (let k = 0; k < 20 && h.transfer.state.phase === 'p2p'; k++) {
      a.deliver();
      await h.advance(250);
      while (h.supernode.syncs.length > 0) h.supernode.answer();
    }
    await h.transfer.done;
    expect(h.supernode.bodies.slice(before).some((b) => b.wantHashList === true)).toBe(false);
    expect(h.commits).toEqual([{ vouched: true }]);
  });

  it('not without a list, nor with one that is not of these hashes, this digest or this layout', async () => {
    const probe = harness({ pieces: 3, parents: [] });
    const others = [
      undefined,
      pieceHashList({ digest: probe.digest, pieceSize: PIECE_BYTES, hashes: [...probe.pieceHashes].reverse() }),
      pieceHashList({ digest: `sha256:${'0'.repeat(64)}` as Digest, pieceSize: PIECE_BYTES, hashes: probe.pieceHashes }),
      pieceHashList({ digest: probe.digest, pieceSize: 2 * PIECE_BYTES, hashes: probe.pieceHashes }),
    ];
    for (const hashList of others) {
      const h = harness({ pieces: 3, parents: ['a', 'b'], ...(hashList !== undefined ? { hashList } : {}) });
      await fromParents(h);
      expect(h.commits).toEqual([{ vouched: false }]);
    }
  });

  it('not once a piece came from the registry fallback, nor when the transfer resumed pieces an earlier run wrote', async () => {
    const probe = harness({ pieces: 4, parents: [] });
    const fallen = harness({ pieces: 4, parents: [], hashList: listOf(probe), timings: { noProgressMs: 3_000 } });
    await fallen.advance(3_500, 250);
    await fallen.transfer.done;
    expect(fallen.transfer.stats.fallbacks).toBe(1);
    expect(fallen.commits).toEqual([{ vouched: false }]);
    const resumed = harness({ pieces: 3, parents: ['a', 'b'], have: [0], hashList: listOf(harness({ pieces: 3, parents: [] })) });
    await fromParents(resumed);
    expect(resumed.commits).toEqual([{ vouched: false }]);
  });

  it('TransferVouch: the hashes the pieces were checked against, every one, must be the list; it forgoes the digest once it has one', () => {
    const digest = `sha256:${'a'.repeat(64)}` as Digest;
    const hashes = ['1', '2', '3'].map((c) => c.repeat(64));
    const meta = { digest, pieceSize: PIECE_BYTES, pieceCount: 3 };
    const list = pieceHashList({ digest, pieceSize: PIECE_BYTES, hashes })!;
    let forgone = 0;
    const v = new TransferVouch(3, false, () => forgone++);
    expect([v.wants(1), v.wants(2)]).toEqual([false, true]); // from half the pieces on
    v.learn('not a list');
    expect(v.wants(2)).toBe(true);
    v.learn(list);
    v.learn('e'.repeat(64)); // the first list counts
    expect([v.wants(3), forgone]).toEqual([false, 1]);
    v.wrote(0, hashes[0]!);
    v.wrote(2, hashes[2]!);
    expect(v.vouches(meta)).toBe(false); // piece 1 not written
    v.wrote(1, '4'.repeat(64));
    expect(v.vouches(meta)).toBe(false); // checked against another hash
    v.wrote(1, hashes[1]!);
    expect(v.vouches(meta)).toBe(true);
    v.wrote(0, undefined);
    expect(v.vouches(meta)).toBe(false);
    // Resumed: it neither asks for a list nor forgoes the digest.
    const resumed = new TransferVouch(3, true, () => forgone++);
    resumed.learn(list);
    expect([resumed.wants(3), resumed.vouches(meta), forgone]).toEqual([false, false, 1]);
  });
});
