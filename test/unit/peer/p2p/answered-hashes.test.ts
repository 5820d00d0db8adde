// A sync answer's piece hashes: from what the peer knows on, and (when the peer asks, trimHashes)
// not past the last one the seed knows, since the rest would be nulls in every answer.
import { describe, expect, it } from 'vitest';
import type { Digest } from '../../../../src/digest.ts';
import { hashesAfter, packHashes, unpackHashes } from '../../../../src/p2p/metainfo.ts';
import type { MetainfoBody, SyncResponse } from '../../../../src/p2p/supernode-api.ts';
import { withAnsweredHashes } from '../../../../peer/p2p/transfer-sync.ts';

const h = (c: string): string => c.repeat(64);
const meta = (hashes: Array<string | null>): MetainfoBody => ({ digest: `sha256:${'a'.repeat(64)}` as Digest, size: hashes.length * 10, pieceSize: 10, pieceCount: hashes.length, hashes });
const answer = (hashes: Array<string | null>, hashesFrom: number): SyncResponse => ({ hashes, hashesFrom, parents: [], seedGrants: [], availability: [] });

describe('hashesAfter', () => {
  const seed = [h('1'), h('2'), null, h('4'), null, null];
  it('sends from the first hash the peer lacks; trimmed, not past the last one known (nulls between stay)', () => {
    expect(hashesAfter(seed, 1, false)).toEqual([h('2'), null, h('4'), null, null]);
    expect(hashesAfter(seed, 1, true)).toEqual([h('2'), null, h('4')]);
    expect(hashesAfter(seed, 4, true)).toEqual([]);
    expect(hashesAfter(seed, 6, true)).toEqual([]);
    expect(hashesAfter([null, null], 0, true)).toEqual([]);
  });
});

describe('packHashes', () => {
  it('packs 32 bytes a hash, zeros for an unknown one, and unpacks only its own encoding of whole hashes', () => {
    const list = [h('a'), null, h('0'), h('9')];
    const packed = packHashes(list);
    expect(packed).toHaveLength(Math.ceil((4 * 32) / 3) * 4);
    // The all-zero hash reads as unknown: no piece has that sha256.
    expect(unpackHashes(packed, 4)).toEqual([h('a'), null, null, h('9')]);
    expect(unpackHashes(packHashes([]), 4)).toEqual([]);
    const one = packHashes([h('b')]);
    expect(one.endsWith('=')).toBe(true);
    for (const bad of [one.replace(/=+$/, ''), one.slice(0, 20), ` ${one}`, 7, null]) expect(unpackHashes(bad, 4)).toBeUndefined();
    // More hashes than the caller takes.
    expect(unpackHashes(packed, 3)).toBeUndefined();
  });
});

describe('withAnsweredHashes', () => {
  it('takes a trimmed answer: the hashes it carries, the pieces after it still unknown', () => {
    const m = withAnsweredHashes(meta([h('1'), null, null, null]), answer([h('2'), h('3')], 1));
    expect(m.hashes).toEqual([h('1'), h('2'), h('3'), null]);
    // A whole answer (an older supernode's) as before.
    expect(withAnsweredHashes(meta([null, null]), answer([h('1'), null], 0)).hashes).toEqual([h('1'), null]);
  });

  it('changes nothing on an answer that runs past the last piece or starts nowhere', () => {
    const before = meta([h('1'), null]);
    expect(withAnsweredHashes(before, answer([h('2'), h('3')], 1))).toBe(before);
    expect(withAnsweredHashes(before, answer([h('2')], -1))).toBe(before);
    expect(withAnsweredHashes(before, answer([h('2')], 0.5))).toBe(before);
  });
});
