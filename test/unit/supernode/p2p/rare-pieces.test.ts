import { describe, expect, it } from 'vitest';
import { RarePieces, RARE_HOLDERS, STRANDED_AFTER_MS } from '../../../../supernode/p2p/rare-pieces.ts';
import type { PeerRecord } from '../../../../supernode/p2p/tracker.ts';

const rec = (peerId: string): PeerRecord => ({ peerId }) as PeerRecord;
const never = (): boolean => false;
const lacksAll = (): boolean => true;

describe('RarePieces', () => {
  it('names a holder of a piece only once it has been rare for STRANDED_AFTER_MS, never the asker', () => {
    const rare = new RarePieces();
    const a = rec('a');
    rare.held(5, a, 1, 1_000);
    expect(rare.holderFor(lacksAll, 'x', 1_000 + STRANDED_AFTER_MS - 1, never)).toBeUndefined();
    expect(rare.holderFor(lacksAll, 'x', 1_000 + STRANDED_AFTER_MS, never)).toBe(a);
    expect(rare.holderFor(lacksAll, 'a', 1_000 + STRANDED_AFTER_MS, never)).toBeUndefined();
    // An asker that has the piece is not offered its holder for it.
    expect(rare.holderFor((i) => i !== 5, 'x', 5_000, never)).toBeUndefined();
  });

  it('forgets a piece once more than RARE_HOLDERS hold it, or none does', () => {
    const rare = new RarePieces();
    const peers = Array.from({ length: RARE_HOLDERS + 1 }, (_, k) => rec(`p${k}`));
    peers.forEach((p, k) => rare.held(1, p, k + 1, 0));
    expect(rare.size).toBe(0);
    rare.held(2, peers[0]!, 1, 0);
    rare.held(2, peers[1]!, 2, 0);
    rare.released(2, peers[0]!, 1);
    expect(rare.holderFor(lacksAll, 'x', 10_000, never)).toBe(peers[1]);
    rare.released(2, peers[1]!, 0);
    expect(rare.size).toBe(0);
  });

  it('offers the longest stranded piece first, passing over holders the caller skips', () => {
    const rare = new RarePieces();
    const [a, b, c] = [rec('a'), rec('b'), rec('c')];
    rare.held(7, a, 1, 0);
    rare.held(3, b, 1, 100);
    rare.held(3, c, 2, 200);
    expect(rare.holderFor(lacksAll, 'x', 5_000, never)).toBe(a);
    expect(rare.holderFor(lacksAll, 'x', 5_000, (p) => p === a)).toBe(b);
    expect(rare.holderFor(lacksAll, 'x', 5_000, (p) => p !== c)).toBe(c);
  });
});
