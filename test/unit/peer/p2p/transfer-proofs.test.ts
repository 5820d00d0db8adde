// Piece proofs in a transfer, on a manual clock (peer/p2p/transfer-proofs.ts): a parent that sends
// proofs may be asked for pieces whose hash the transfer does not know; a proof the supernode's key
// checks teaches the hash, one it does not teaches nothing; the syncs ask the supernode for hashes
// only while some piece can come without a proof. A parent's hash list, once the supernode vouched
// for its hash, teaches every hash at once with no signature to check; any other list bans it.
import { afterEach, describe, expect, it } from 'vitest';
import { PieceSigner, type PieceProof } from '../../../../src/p2p/piece-proof.ts';
import { TICK_MS } from '../../../../peer/p2p/transfer-seams.ts';
import { pieceHashList, SMALL_PIECE_BYTES } from '../../../../src/p2p/metainfo.ts';
import { harness, offerParents, PIECE_BYTES, type Harness, type HarnessOptions } from '../../../helpers/transfer-harness.ts';

const open: Harness[] = [];
function start(options: HarnessOptions): Harness {
  const h = harness(options);
  open.push(h);
  return h;
}
afterEach(async () => {
  for (const h of open.splice(0)) await h.transfer.close();
});

const signer = PieceSigner.generate();
const proofOf = (h: Harness, index: number, by = signer, hash = h.pieceHashes[index]!): PieceProof => ({ index, hash, signature: Buffer.from(by.sign(h.digest, index, hash), 'base64') });

/** A transfer of `pieces` pieces knowing none of their hashes, and parent `a` (speaking proofs or not) holding them all, connected. */
async function unhashed(options: { pieces?: number; pieceBytes?: number; proofs: boolean; key?: boolean; more?: Record<string, { proofs: boolean; pieces: number[] }> }): Promise<Harness> {
  const pieces = options.pieces ?? 2;
  const more = options.more ?? {};
  const h = start({ pieces, parents: ['a', ...Object.keys(more)], hashes: Array.from({ length: pieces }, () => null), ...(options.key === false ? {} : { signer }), ...(options.pieceBytes ? { pieceBytes: options.pieceBytes } : {}) });
  h.parents.get('a')!.speaksProofs = options.proofs;
  for (const [id, m] of Object.entries(more)) h.parents.get(id)!.speaksProofs = m.proofs;
  await offerParents(h, { a: Array.from({ length: pieces }, (_, i) => i), ...Object.fromEntries(Object.entries(more).map(([id, m]) => [id, m.pieces])) });
  return h;
}

/** Sends each newly asked piece's proof ahead of its blocks, as the uploader does, and answers every request until none is left. */
async function serveWithProofs(h: Harness, id: string, proof: (i: number) => PieceProof | undefined = (i) => proofOf(h, i)): Promise<void> {
  const parent = h.parents.get(id)!;
  const proved = new Set<number>();
  for (let k = 0; k < 20 && parent.pending.length > 0; k++) {
    for (const i of parent.requestedPieces()) {
      if (proved.has(i)) continue;
      proved.add(i);
      const p = proof(i);
      if (p) parent.sendProof(p);
    }
    parent.deliver();
    await h.settle();
  }
}

describe('a transfer with piece proofs', () => {
  it('asks a parent that sends proofs for pieces whose hashes it does not know, learns each from its proof, stores the pieces and keeps the proofs to hand on', async () => {
    const h = await unhashed({ proofs: true });
    const a = h.parents.get('a')!;
    expect(a.requestedPieces().size).toBeGreaterThan(0);
    await serveWithProofs(h, 'a');
    expect(h.transfer.counters.peer).toBe(2 * PIECE_BYTES);
    expect(h.transfer.stats.duplicateBytes.unproved).toBe(0);
    expect(h.transfer.proofs.get(0)?.hash).toBe(h.pieceHashes[0]);
    expect(h.transfer.proofs.get(1)?.hash).toBe(h.pieceHashes[1]);
  });

  it("in the small layout only proofs signed for it teach: one of the default layout's signature (same digest, index and hash) is refused", async () => {
    // 4 pieces of 256 KiB: 1 MiB, whose default layout is 2 pieces of 512 KiB.
    const h = await unhashed({ proofs: true, pieces: 4, pieceBytes: SMALL_PIECE_BYTES });
    await serveWithProofs(h, 'a', (i) => proofOf(h, i));
    expect(h.transfer.counters.peer).toBe(0);
    expect(h.transfer.stats.duplicateBytes.unproved).toBeGreaterThan(0);
    expect(h.transfer.proofs.get(0)).toBeUndefined();

    const g = await unhashed({ proofs: true, pieces: 4, pieceBytes: SMALL_PIECE_BYTES });
    await serveWithProofs(g, 'a', (i) => ({ ...proofOf(g, i), signature: Buffer.from(signer.sign(g.digest, i, g.pieceHashes[i]!, SMALL_PIECE_BYTES), 'base64') }));
    expect(g.transfer.counters.peer).toBe(4 * SMALL_PIECE_BYTES);
    expect(g.transfer.proofs.get(3)?.hash).toBe(g.pieceHashes[3]);
  });

  it('asks a parent that sends no proofs only for pieces whose hashes it knows', async () => {
    const h = await unhashed({ proofs: false });
    expect(h.parents.get('a')!.requestedPieces()).toEqual(new Set());
  });

  it('without the supernode key (a supernode from before proofs) asks no parent for an unknown hash, proofs or not', async () => {
    const h = await unhashed({ proofs: true, key: false });
    expect(h.parents.get('a')!.requestedPieces()).toEqual(new Set());
  });

  it('a proof the key does not check teaches nothing: the piece is thrown away as unproved (no ban), asked again, and that parent only for known hashes since', async () => {
    const h = await unhashed({ proofs: true });
    const a = h.parents.get('a')!;
    const other = PieceSigner.generate();
    await serveWithProofs(h, 'a', (i) => proofOf(h, i, other));
    expect(h.transfer.counters.peer).toBe(0);
    expect(h.transfer.stats.duplicateBytes.unproved).toBeGreaterThan(0);
    expect(h.transfer.stats.duplicateBytes.corrupt).toBe(0);
    expect(a.isClosed).toBe(false);
    expect(h.transfer.proofs.get(0)).toBeUndefined();
    expect(a.requestedPieces()).toEqual(new Set());
    // The supernode's hashes make the pieces gettable from it again.
    await h.advance(TICK_MS * 2, TICK_MS);
    h.supernode.answer({ hashes: h.pieceHashes });
    await h.settle();
    expect(a.requestedPieces().size).toBeGreaterThan(0);
  });

  it('a proof whose hash is not the piece\'s teaches a wrong hash only if the key signed it: an honest key\'s proof of another hash is refused', async () => {
    const h = await unhashed({ proofs: true });
    await serveWithProofs(h, 'a', (i) => ({ ...proofOf(h, i), hash: 'e'.repeat(64) }));
    expect(h.transfer.counters.peer).toBe(0);
    expect(h.transfer.proofs.get(0)).toBeUndefined();
  });

  it('a parent that sends a proof of a piece it does not hold, or outside the blob, is closed (no signature check for it)', async () => {
    for (const index of [1, 2, 1_000_000]) {
      const h = start({ pieces: 2, parents: ['a'], hashes: [null, null], signer });
      h.parents.get('a')!.speaksProofs = true;
      await offerParents(h, { a: [0] });
      const a = h.parents.get('a')!;
      a.sendProof({ ...proofOf(h, 0), index });
      await h.settle();
      expect(a.isClosed).toBe(true);
      expect(a.closeReason).toBe('piece proof of a piece it does not hold');
    }
  });

  it('a parent that sends a second proof of one piece is closed (each costs a signature check)', async () => {
    const h = await unhashed({ proofs: true });
    const a = h.parents.get('a')!;
    a.sendProof(proofOf(h, 0));
    a.sendProof(proofOf(h, 0));
    await h.settle();
    expect(a.isClosed).toBe(true);
    expect(a.closeReason).toBe('piece proof repeated');
  });

  it('syncs ask the supernode for no hashes while every piece a parent holds can come with a proof; from the first unknown one while a parent without proofs holds an unknown one', async () => {
    const h = await unhashed({ pieces: 4, proofs: true, more: { b: { proofs: false, pieces: [] } } });
    const b = h.parents.get('b')!;
    await h.advance(TICK_MS * 2, TICK_MS);
    expect(h.supernode.syncs.length).toBeGreaterThan(0);
    expect(h.supernode.answer({ hashes: [null, null, null, null] }).knownHashes).toBe(4);
    b.announce(3);
    await h.advance(TICK_MS * 2, TICK_MS);
    expect(h.supernode.answer({ hashes: [null, null, null, null] }).knownHashes).toBe(0);
  });

  it('without the supernode key, syncs ask for hashes from the first unknown one, as before proofs', async () => {
    const h = await unhashed({ proofs: true, key: false });
    await h.advance(TICK_MS * 2, TICK_MS);
    expect(h.supernode.answer({ hashes: [null, null] }).knownHashes).toBe(0);
  });

  it("keeps a seed piece's proof when the key checks it, and stores the piece on the seed's hash either way", async () => {
    for (const good of [true, false]) {
      const h = start({ pieces: 2, parents: [], hashes: [null, null], signer });
      await h.settle();
      h.supernode.answerWith({ hashes: [null, null], parents: [], seedGrants: [0], availability: [] });
      await h.settle();
      const proof = proofOf(h, 0, good ? signer : PieceSigner.generate());
      h.supernode.serveSeed(0, { hash: h.pieceHashes[0]!, signature: proof.signature });
      await h.settle();
      expect(h.transfer.counters.seed).toBe(PIECE_BYTES);
      expect(h.transfer.proofs.get(0)?.signature.equals(proof.signature) ?? false).toBe(good);
    }
  });
  it("checks a proof of a hash it already knows (the seed's, or a parent's of a known hash) only when it first hands it on, and once", async () => {
    let checks = 0;
    // Piece 1's hash known with the task (as a sync would bring it): a probe's blob is the same.
    const probe = start({ pieces: 2, parents: [] });
    const h = start({ pieces: 2, parents: ['a'], hashes: [null, probe.pieceHashes[1]!], proofCheck: { verify: () => (checks++, true) } });
    h.parents.get('a')!.speaksProofs = true;
    await h.settle();
    h.supernode.answerWith({ hashes: [null, null], parents: [], seedGrants: [0], availability: [] });
    await h.settle();
    h.supernode.serveSeed(0, { hash: h.pieceHashes[0]!, signature: proofOf(h, 0).signature });
    await h.settle();
    expect(h.transfer.counters.seed).toBe(PIECE_BYTES);
    await h.advance(2 * TICK_MS);
    await offerParents(h, { a: [1] });
    await serveWithProofs(h, 'a');
    expect(h.transfer.counters.peer).toBe(PIECE_BYTES);
    expect(checks).toBe(0);
    expect(h.transfer.proofs.get(0)?.hash).toBe(h.pieceHashes[0]);
    expect(h.transfer.proofs.get(1)?.hash).toBe(h.pieceHashes[1]);
    expect(h.transfer.proofs.get(0)?.hash).toBe(h.pieceHashes[0]);
    expect(checks).toBe(2);
  });
});

describe('a hash list from a parent (pollen_hashes)', () => {
  const packed = (hashes: readonly string[]): Buffer => Buffer.concat(hashes.map((x) => Buffer.from(x, 'hex')));
  const PIECES = 3;

  /** A transfer knowing no piece hash, parent `a` (sending proofs) holding every piece; `vouched`: the supernode vouched for the list's hash with the task. Counts the proof checks. */
  async function listed(vouched: boolean, knowsFirst = false): Promise<{ h: Harness; checks: () => number }> {
    const probe = start({ pieces: PIECES, parents: [] });
    let checks = 0;
    const list = pieceHashList({ digest: probe.digest, pieceSize: PIECE_BYTES, hashes: probe.pieceHashes })!;
    const h = start({ pieces: PIECES, parents: ['a', 'b'], hashes: Array.from({ length: PIECES }, (_, i) => (knowsFirst && i === 0 ? probe.pieceHashes[0]! : null)), proofCheck: { verify: () => (checks++, true) }, ...(vouched ? { hashList: list } : {}) });
    h.parents.get('a')!.speaksProofs = true;
    await offerParents(h, { a: Array.from({ length: PIECES }, (_, i) => i) });
    return { h, checks: () => checks };
  }

  async function deliverAll(h: Harness, id: string): Promise<void> {
    const parent = h.parents.get(id)!;
    for (let k = 0; k < 20 && parent.pending.length > 0 && !parent.isClosed; k++) {
      parent.deliver();
      await h.settle();
    }
  }

  it('with the list\'s hash vouched, a dial asks for the list; the list teaches every hash, the pieces come without proofs and no signature is checked, and the transfer can hand the list on', async () => {
    const { h, checks } = await listed(true);
    const a = h.parents.get('a')!;
    expect(a.askedForHashes).toBe(true);
    a.sendHashes(packed(h.pieceHashes));
    await h.settle();
    await deliverAll(h, 'a');
    expect(h.transfer.counters.peer).toBe(PIECES * PIECE_BYTES);
    expect(h.transfer.stats.duplicateBytes.unproved).toBe(0);
    expect(checks()).toBe(0);
    expect(h.transfer.proofs.hashList()).toEqual(packed(h.pieceHashes));
    expect(h.transfer.proofs.get(0)).toBeUndefined();
  });

  it('a list that contradicts a known hash, or of another length, bans the parent and teaches nothing', async () => {
    for (const bad of [(hs: readonly string[]) => [...hs].reverse(), (hs: readonly string[]) => hs.slice(1)]) {
      const { h } = await listed(true, true);
      const a = h.parents.get('a')!;
      a.sendHashes(packed(bad(h.pieceHashes)));
      await h.settle();
      expect(a.closeReason).toBe('sent a false hash list');
      expect(h.transfer.proofs.hashList()).toBeUndefined();
    }
  });

  it('a list that only fails to hash to the vouched value closes the parent without a ban, and no later dial asks for a list', async () => {
    const { h } = await listed(true);
    const a = h.parents.get('a')!;
    a.sendHashes(packed([...h.pieceHashes].reverse()));
    await h.settle();
    expect(a.closeReason).toBe('hash list not the one the supernode vouched for');
    expect(h.transfer.proofs.hashList()).toBeUndefined();
    await h.advance(2 * TICK_MS);
    await offerParents(h, { b: [0, 1, 2] });
    expect(h.dialled).toContain('b');
    expect(h.parents.get('b')!.askedForHashes).toBe(false);
  });

  it('a list handed on ahead of the parent\'s ready (the wire reads its accept later) and refused leaves no closed parent in the pool', async () => {
    const probe = start({ pieces: PIECES, parents: [] });
    const list = pieceHashList({ digest: probe.digest, pieceSize: PIECE_BYTES, hashes: probe.pieceHashes })!;
    const h = start({ pieces: PIECES, parents: ['a'], hashes: Array.from({ length: PIECES }, () => null), hashList: list });
    await h.settle();
    h.supernode.answer({ parents: [{ peerId: 'a', wireAddr: 'a' }] });
    await h.settle();
    const a = h.parents.get('a')!;
    expect(a.askedForHashes).toBe(true);
    a.sendHashes(packed([...probe.pieceHashes].reverse()));
    a.connect([0, 1, 2]);
    await h.settle();
    expect(a.closeReason).toBe('hash list not the one the supernode vouched for');
    expect(h.transfer.connectedParents).toBe(0);
  });

  it('without a vouched list a dial does not ask, and a list sent anyway teaches nothing', async () => {
    const { h } = await listed(false);
    const a = h.parents.get('a')!;
    expect(a.askedForHashes).toBe(false);
    a.sendHashes(packed(h.pieceHashes));
    await h.settle();
    expect(a.isClosed).toBe(false);
    expect(h.transfer.proofs.hashList()).toBeUndefined();
  });

  it('a list on a connection dialled before lists stopped is not taken, and that parent, which sends no proofs there, is asked only for pieces whose hash is known', async () => {
    const probe = start({ pieces: PIECES, parents: [] });
    const list = pieceHashList({ digest: probe.digest, pieceSize: PIECE_BYTES, hashes: probe.pieceHashes })!;
    const h = start({ pieces: PIECES, parents: ['a', 'b'], hashes: Array.from({ length: PIECES }, () => null), hashList: list, parentsSpeakProofs: true, signer });
    await h.settle();
    h.supernode.answer({ parents: ['a', 'b'].map((id) => ({ peerId: id, wireAddr: id })) });
    await h.settle();
    const [a, b] = [h.parents.get('a')!, h.parents.get('b')!];
    expect([a.askedForHashes, b.askedForHashes]).toEqual([true, true]);
    a.sendHashes(packed([...probe.pieceHashes].reverse()));
    await h.settle();
    b.sendHashes(packed(probe.pieceHashes));
    b.connect([0, 1, 2]);
    await h.settle();
    expect(h.transfer.proofs.hashList()).toBeUndefined();
    expect(b.requestedPieces()).toEqual(new Set());
  });
});
