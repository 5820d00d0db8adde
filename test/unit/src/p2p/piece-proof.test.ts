// Piece proofs (src/p2p/piece-proof.ts): the supernode's Ed25519 signature over (digest, index,
// hash), checked against its public key; the key kept in a file; the 100-byte wire record.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeProof, encodeProof, PieceSigner, PROOF_BYTES, ProofSet, ProofVerifier, signatureOf, type PieceProof } from '../../../../src/p2p/piece-proof.ts';

const digest = `sha256:${'ab'.repeat(32)}`;
const hash = 'cd'.repeat(32);
const signer = PieceSigner.generate();
const verifier = new ProofVerifier(signer.publicKey);
const proof = (over: Partial<PieceProof> = {}): PieceProof => ({ index: 7, hash, signature: Buffer.from(signer.sign(digest, 7, hash), 'base64'), ...over });

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('piece proofs', () => {
  it("check against the signer's public key, and only for the digest, index and hash signed", () => {
    expect(verifier.verify(digest, proof())).toBe(true);
    expect(verifier.verify(`sha256:${'ac'.repeat(32)}`, proof())).toBe(false);
    expect(verifier.verify(digest, proof({ index: 8 }))).toBe(false);
    expect(verifier.verify(digest, proof({ hash: 'ce'.repeat(32) }))).toBe(false);
    const flipped = Buffer.from(proof().signature);
    flipped[10] = flipped[10]! ^ 1;
    expect(verifier.verify(digest, proof({ signature: flipped }))).toBe(false);
    expect(new ProofVerifier(PieceSigner.generate().publicKey).verify(digest, proof())).toBe(false);
  });

  it('a proof of a layout other than the default checks only with that piece size named, and a default one only without', () => {
    const inSmall = proof({ signature: Buffer.from(signer.sign(digest, 7, hash, 262144), 'base64') });
    expect(verifier.verify(digest, inSmall, 262144)).toBe(true);
    expect(verifier.verify(digest, inSmall)).toBe(false);
    expect(verifier.verify(digest, inSmall, 524288)).toBe(false);
    expect(verifier.verify(digest, proof(), 262144)).toBe(false);
  });

  it('malformed parts are refused without a check: a short signature, a hash that is not 64 hex digits, a negative index', () => {
    expect(verifier.verify(digest, proof({ signature: Buffer.alloc(63) }))).toBe(false);
    expect(verifier.verify(digest, proof({ hash: 'CD'.repeat(32) }))).toBe(false);
    expect(verifier.verify(digest, proof({ index: -1 }))).toBe(false);
  });

  it('a public key that is not 32 bytes of base64url is refused', () => {
    expect(() => new ProofVerifier('abc')).toThrow(/not 32 bytes/);
    expect(() => new ProofVerifier(`${signer.publicKey}=`)).toThrow(/not 32 bytes/);
  });

  it('the signature header: 64 bytes of canonical base64, else nothing', () => {
    const b64 = signer.sign(digest, 7, hash);
    expect(signatureOf(b64)?.equals(proof().signature)).toBe(true);
    expect(signatureOf(b64.slice(0, -4))).toBeUndefined();
    expect(signatureOf(`${b64} `)).toBeUndefined();
    expect(signatureOf(undefined)).toBeUndefined();
  });

  it('the wire record is 100 bytes and reads back as sent; another length is none', () => {
    const bytes = encodeProof(proof());
    expect(bytes.length).toBe(PROOF_BYTES);
    const back = decodeProof(bytes)!;
    expect(back.index).toBe(7);
    expect(back.hash).toBe(hash);
    expect(verifier.verify(digest, back)).toBe(true);
    expect(decodeProof(bytes.subarray(0, 99))).toBeUndefined();
    expect(decodeProof(Buffer.concat([bytes, Buffer.alloc(1)]))).toBeUndefined();
  });

  it('a set keeps the first proof of each piece, none outside the blob', () => {
    const set = new ProofSet(8);
    set.set(proof());
    set.set(proof({ hash: 'ee'.repeat(32) }));
    set.set(proof({ index: 8 }));
    expect(set.get(7)?.hash).toBe(hash);
    expect(verifier.verify(digest, set.get(7)!)).toBe(true);
    expect(set.get(0)).toBeUndefined();
    expect(set.get(8)).toBeUndefined();
  });

  it('the key is created in its file (mode 0600) once, and the same key is read back after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pollen-key-'));
    dirs.push(dir);
    const path = join(dir, 'piece-key.pem');
    const first = await PieceSigner.loadOrCreate(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const again = await PieceSigner.loadOrCreate(path);
    expect(again.publicKey).toBe(first.publicKey);
    expect(new ProofVerifier(first.publicKey).verify(digest, { index: 1, hash, signature: Buffer.from(again.sign(digest, 1, hash), 'base64') })).toBe(true);
    expect(await readFile(path, 'utf8')).toMatch(/BEGIN PRIVATE KEY/);
  });

  it('a key file that is not an ed25519 key stops the start with a clear error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pollen-key-'));
    dirs.push(dir);
    const path = join(dir, 'piece-key.pem');
    await writeFile(path, 'not a key');
    await expect(PieceSigner.loadOrCreate(path)).rejects.toThrow(/piece key .* is not an ed25519 private key/);
  });
});

describe('ProofSet with hashes kept alone (from a vouched hash list)', () => {
  const signer = PieceSigner.generate();
  const digest = 'sha256:' + 'ab'.repeat(32);
  const hashOf = (i: number): string => createHash('sha256').update(`piece ${i}`).digest('hex');
  const proofOf = (i: number, hash = hashOf(i)): PieceProof => ({ index: i, hash, signature: Buffer.from(signer.sign(digest, i, hash), 'base64') });

  it('hands on the whole list only once every piece has a hash, proofs only for pieces that have one, and keeps both kinds across a save', () => {
    const set = new ProofSet(3);
    set.set(proofOf(0));
    set.setHash(1, hashOf(1));
    expect(set.hashList()).toBeUndefined();
    set.setHash(2, hashOf(2));
    const list = Buffer.concat([0, 1, 2].map((i) => Buffer.from(hashOf(i), 'hex')));
    expect(set.hashList()).toEqual(list);
    expect(set.get(0)?.hash).toBe(hashOf(0));
    expect(set.get(1)).toBeUndefined();
    expect(set.hashOf(1)).toBe(hashOf(1));
    const back = ProofSet.fromBase64(3, set.toBase64(), set.hashesAlone())!;
    expect(back.hashList()).toEqual(list);
    expect(back.get(1)).toBeUndefined();
    expect(new ProofVerifier(signer.publicKey).verify(digest, back.get(0)!)).toBe(true);
    // A version from before hash lists reads only the first string: its one proof, nothing alone.
    const older = ProofSet.fromBase64(3, set.toBase64())!;
    expect([older.hasProof(0), older.hashOf(1), older.hashList()]).toEqual([true, undefined, undefined]);
    // The first builds with hash lists marked hashes alone and unchecked proofs (2, 3) in that string: hashes alone.
    const raw = Buffer.from(set.toBase64(), 'base64');
    raw[3 * 96 + 1] = 2;
    raw[3 * 96 + 2] = 3;
    const early = ProofSet.fromBase64(3, raw.toString('base64'))!;
    expect([early.hasProof(0), early.hasProof(1), early.hasProof(2), early.hashList()?.length]).toEqual([true, false, false, 96]);
  });

  it("a proof of a hash kept alone takes its place; one of another hash does not, and a piece's first hash stays", () => {
    const set = new ProofSet(2);
    set.setHash(0, hashOf(0));
    set.set(proofOf(0, hashOf(9)));
    expect(set.get(0)).toBeUndefined();
    set.set(proofOf(0));
    expect(set.get(0)?.hash).toBe(hashOf(0));
    set.setHash(1, hashOf(1));
    set.setHash(1, hashOf(8));
    expect(set.hashOf(1)).toBe(hashOf(1));
    for (const i of [-1, 2, 0.5]) set.setHash(i, hashOf(1));
    set.setHash(1, 'not a hash');
    expect(set.hashList()).toEqual(Buffer.concat([Buffer.from(hashOf(0), 'hex'), Buffer.from(hashOf(1), 'hex')]));
  });

  it('a proof kept unchecked is handed on only once the check given to checkWith passes (run once); one that fails leaves its hash alone; saved, it is its hash alone', () => {
    const set = new ProofSet(2);
    set.set(proofOf(0), false);
    set.set({ ...proofOf(1), signature: Buffer.alloc(64, 1) }, false);
    expect(set.hasProof(0)).toBe(true);
    expect(set.get(0)).toBeUndefined(); // no check given: not handed on
    set.checkWith(() => undefined); // no key yet: still not handed on, and still unchecked
    expect(set.get(0)).toBeUndefined();
    const restored = ProofSet.fromBase64(2, set.toBase64(), set.hashesAlone())!;
    let checks = 0;
    const verifier = new ProofVerifier(signer.publicKey);
    set.checkWith((p) => (checks++, verifier.verify(digest, p)));
    expect(set.get(0)?.hash).toBe(hashOf(0));
    expect(set.get(0)?.hash).toBe(hashOf(0));
    expect(set.get(1)).toBeUndefined();
    expect(set.get(1)).toBeUndefined();
    expect(checks).toBe(2);
    expect(set.hashOf(1)).toBe(hashOf(1));
    expect(set.hasProof(1)).toBe(false);
    expect(set.hashList()?.length).toBe(64);
    // Saved before any check: hashes alone (what would check them is gone after a restart).
    restored.checkWith((p) => (checks++, verifier.verify(digest, p)));
    expect([restored.get(0), restored.get(1), restored.hasProof(0)]).toEqual([undefined, undefined, false]);
    expect(restored.hashList()).toEqual(set.hashList());
    expect(checks).toBe(2);
  });
});
