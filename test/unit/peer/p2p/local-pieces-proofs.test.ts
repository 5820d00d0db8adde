// A committed blob's piece proofs outlive the peer's restart (LocalPieces with the peer's store):
// a restarted parent hands its children the proofs it had, so a child that asked it for a piece of
// unknown hash does not throw that piece away. Saved sets of blobs that are gone, and sets that are
// not whole, are deleted at start; an evicted blob's set goes with it. Hashes kept without a proof
// (from a parent's hash list) are saved beside the proofs, where older versions do not read them.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryKv } from '../../../../src/db.ts';
import { sha256Digest, type Digest } from '../../../../src/digest.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { PieceSigner, ProofSet, ProofVerifier } from '../../../../src/p2p/piece-proof.ts';
import { LocalPieces, type SavedProofs } from '../../../../peer/p2p/local-pieces.ts';
import { Bitfield } from '../../../../src/p2p/bitfield.ts';
import { SMALL_PIECE_BYTES } from '../../../../src/p2p/metainfo.ts';

const PIECE = 512 * 1024;

async function committedBlob(store: MemoryContentStore, pieces: number): Promise<{ digest: Digest; bytes: Buffer }> {
  const bytes = randomBytes(pieces * PIECE);
  const digest = sha256Digest(bytes);
  const ingest = await store.openIngest(digest);
  await ingest.writeAt(bytes, 0);
  await ingest.commit(bytes.length);
  return { digest, bytes };
}

function proofsOf(signer: PieceSigner, digest: Digest, bytes: Buffer, pieces: number): ProofSet {
  const set = new ProofSet(pieces);
  for (let i = 0; i < pieces; i++) {
    const hash = createHash('sha256').update(bytes.subarray(i * PIECE, (i + 1) * PIECE)).digest('hex');
    set.set({ index: i, hash, signature: Buffer.from(signer.sign(digest, i, hash), 'base64') });
  }
  return set;
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("a committed blob's piece proofs", () => {
  it('are served again after a restart, and still check against the key that signed them', async () => {
    const store = new MemoryContentStore();
    const kv = new MemoryKv<SavedProofs>();
    const signer = PieceSigner.generate();
    const { digest, bytes } = await committedBlob(store, 3);
    const before = new LocalPieces({ store, proofs: kv });
    await before.start();
    before.markCommitted(digest, bytes.length, proofsOf(signer, digest, bytes, 3));
    await settle();

    const after = new LocalPieces({ store, proofs: kv });
    await after.start();
    const verifier = new ProofVerifier(signer.publicKey);
    for (let i = 0; i < 3; i++) {
      const proof = after.source(digest)?.proof?.(i);
      expect(proof?.index).toBe(i);
      expect(verifier.verify(digest, proof!)).toBe(true);
    }
    // Without the store for proofs: none after a restart, as before.
    const memoryOnly = new LocalPieces({ store });
    await memoryOnly.start();
    expect(memoryOnly.source(digest)?.proof?.(0)).toBeUndefined();
  });

  it('hashes kept alone (from a hash list) are saved too: after a restart the peer hands on the whole list, and proofs only where it had checked ones', async () => {
    const store = new MemoryContentStore();
    const kv = new MemoryKv<SavedProofs>();
    const signer = PieceSigner.generate();
    const { digest, bytes } = await committedBlob(store, 3);
    const full = proofsOf(signer, digest, bytes, 3);
    const set = new ProofSet(3);
    set.set(full.get(0)!);
    set.setHash(1, full.hashOf(1)!);
    set.set(full.get(2)!, false); // a proof of a hash already known, never handed on: not checked
    const before = new LocalPieces({ store, proofs: kv });
    await before.start();
    before.markCommitted(digest, bytes.length, set);
    await settle();
    const after = new LocalPieces({ store, proofs: kv });
    await after.start();
    const source = after.source(digest)!;
    expect(source.hashes()).toEqual(full.hashList());
    expect([0, 1, 2].map((i) => source.proof(i)?.hash)).toEqual([full.hashOf(0), undefined, undefined]);
  });

  it('go with an evicted blob, and a saved set whose blob is gone or that is not whole is deleted at start', async () => {
    const store = new MemoryContentStore();
    const kv = new MemoryKv<SavedProofs>();
    const signer = PieceSigner.generate();
    const kept = await committedBlob(store, 2);
    const evicted = await committedBlob(store, 2);
    const pieces = new LocalPieces({ store, proofs: kv });
    await pieces.start();
    pieces.markCommitted(kept.digest, kept.bytes.length, proofsOf(signer, kept.digest, kept.bytes, 2));
    pieces.markCommitted(evicted.digest, evicted.bytes.length, proofsOf(signer, evicted.digest, evicted.bytes, 2));
    await settle();
    await store.delete(evicted.digest);
    pieces.forget(evicted.digest);
    await settle();
    expect(await kv.get(evicted.digest)).toBeUndefined();

    const gone = sha256Digest('a blob this peer no longer has');
    await kv.put(gone, (await kv.get(kept.digest))!);
    const truncated = await committedBlob(store, 2);
    await kv.put(truncated.digest, { pieceCount: 2, proofs: (await kv.get(kept.digest))!.proofs.slice(0, 40) });
    const odd = await committedBlob(store, 1);
    await kv.put(odd.digest, null as unknown as SavedProofs);
    const restarted = new LocalPieces({ store, proofs: kv });
    await restarted.start();
    expect(restarted.source(kept.digest)?.proof?.(1)?.index).toBe(1);
    expect(restarted.source(truncated.digest)?.proof?.(0)).toBeUndefined();
    expect(await kv.get(gone)).toBeUndefined();
    expect(await kv.get(truncated.digest)).toBeUndefined();
    expect(await kv.get(odd.digest)).toBeUndefined();
  });
});

describe('ProofSet as saved', () => {
  it('reads back the proofs it held and only those, and refuses text that is not a set of that many pieces', () => {
    const signer = PieceSigner.generate();
    const set = new ProofSet(4);
    const hash = 'ab'.repeat(32);
    set.set({ index: 2, hash, signature: Buffer.from(signer.sign('sha256:x', 2, hash), 'base64') });
    const back = ProofSet.fromBase64(4, set.toBase64())!;
    expect(back.get(2)).toEqual(set.get(2));
    expect([0, 1, 3].map((i) => back.get(i))).toEqual([undefined, undefined, undefined]);
    for (const [count, text] of [[5, set.toBase64()], [4, set.toBase64().slice(8)], [4, 42], [0, '']] as const) expect(ProofSet.fromBase64(count, text)).toBeUndefined();
  });

  it('a committed blob is served in either layout a child names, its proofs only in the layout they came in; a download only in its own', async () => {
    const store = new MemoryContentStore();
    const signer = PieceSigner.generate();
    const { digest, bytes } = await committedBlob(store, 4);
    const pieces = new LocalPieces({ store });
    await pieces.start();
    pieces.markCommitted(digest, bytes.length, proofsOf(signer, digest, bytes, 4));
    const small = SMALL_PIECE_BYTES;
    const smallCount = (4 * PIECE) / small;
    expect(pieces.knows(digest)).toBe(true);
    expect(pieces.knows(digest, small)).toBe(true);
    expect(pieces.knows(digest, PIECE * 2)).toBe(false);
    const asDefault = pieces.source(digest)!;
    const asSmall = pieces.source(digest, small)!;
    expect([asDefault.pieceSize, asDefault.pieceCount]).toEqual([PIECE, 4]);
    expect([asSmall.pieceSize, asSmall.pieceCount]).toEqual([small, smallCount]);
    expect(asSmall.has(smallCount - 1)).toBe(true);
    expect(Buffer.compare(await asSmall.read((smallCount - 1) * small, small), bytes.subarray((smallCount - 1) * small))).toBe(0);
    expect(asDefault.proof(3)?.index).toBe(3);
    expect(asSmall.proof(3)).toBeUndefined();

    // A blob being downloaded: only in the transfer's layout.
    const other = sha256Digest('downloading');
    const have = new Bitfield(8);
    have.set(2);
    pieces.addActive(other, { size: 8 * small, pieceSize: small, pieces: have, readInto: async () => {} });
    expect(pieces.knows(other, small)).toBe(true);
    expect(pieces.knows(other)).toBe(false);
    expect(pieces.knows(other, PIECE)).toBe(false);
    expect(pieces.source(other, small)?.pieceCount).toBe(8);
    expect(pieces.source(other)).toBeUndefined();
  });
});

