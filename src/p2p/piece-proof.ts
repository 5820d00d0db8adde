// Piece proofs: the supernode's Ed25519 signature over (digest, piece index, piece sha256). The seed
// signs a piece's hash as it serves the piece; a peer keeps the signature beside the hash and hands
// both to its children on the wire (src/p2p/wire-connection.ts, `pollen_proof`) before the piece's
// first block. A child checks the signature against the supernode's public key, which it got over
// the authenticated cluster API (the registration answer), so a parent can pass on a hash but not
// make one up: the hashes no longer all travel through the supernode's uplink (every hash once per
// peer and blob: 0.8 x the blob's size at 10,000 simulated peers), yet every piece is still checked
// against a hash the supernode vouched for, as before (docs/security.md).
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { isSha256Hex } from '../digest.ts';
import { PollenError } from '../errors.ts';

/** Bytes of a proof on the wire: index (4), sha256 (32), Ed25519 signature (64). */
export const PROOF_BYTES = 100;
const SIGNATURE_BYTES = 64;
const CONTEXT = Buffer.from('pollen piece proof v1\n', 'latin1');

export interface PieceProof {
  readonly index: number;
  /** Hex sha256 of the piece. */
  readonly hash: string;
  readonly signature: Buffer;
}

/**
 * `layout`: the piece size when the blob is not in its size's default layout (metainfo.ts
 * namedLayout), signed too so that a proof checks in one layout only.
 */
function signedBytes(digest: string, index: number, hash: string, layout: number | undefined): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(index);
  const line = layout === undefined ? '\n' : `\npieces of ${layout}\n`;
  return Buffer.concat([CONTEXT, Buffer.from(digest, 'latin1'), Buffer.from(line, 'latin1'), head, Buffer.from(hash, 'hex')]);
}

/** The supernode's signing key. */
export class PieceSigner {
  private readonly privateKey: KeyObject;
  /** The public key as the peers get it: the raw 32 bytes, base64url (a JWK's `x`). */
  readonly publicKey: string;

  constructor(privateKey: KeyObject) {
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new PollenError('ERR_INVALID_CONFIG', `piece key is ${privateKey.asymmetricKeyType}, not ed25519`);
    this.privateKey = privateKey;
    this.publicKey = String(createPublicKey(privateKey).export({ format: 'jwk' }).x);
  }

  static generate(): PieceSigner {
    return new PieceSigner(generateKeyPairSync('ed25519').privateKey);
  }

  /**
   * The key in `path` (PKCS#8 PEM), created there (mode 0600) if the file does not exist: peers
   * keep proofs across a supernode restart only if its key stays.
   */
  static async loadOrCreate(path: string): Promise<PieceSigner> {
    const pem = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (pem !== undefined) {
      try {
        return new PieceSigner(createPrivateKey(pem));
      } catch (err) {
        throw new PollenError('ERR_INVALID_CONFIG', `piece key ${path} is not an ed25519 private key: ${(err as Error).message}`);
      }
    }
    const signer = PieceSigner.generate();
    await writeFile(path, signer.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
    return signer;
  }

  /** The signature (base64) of piece `index` of `digest` (in layout `layout`, see signedBytes) having sha256 `hash` (hex). */
  sign(digest: string, index: number, hash: string, layout?: number): string {
    return sign(null, signedBytes(digest, index, hash, layout), this.privateKey).toString('base64');
  }
}

/** Checks proofs against one supernode's public key. */
export class ProofVerifier {
  private readonly key: KeyObject;

  /** `publicKey`: the raw 32 bytes, base64url, as PieceSigner.publicKey; throws if it is not one. */
  constructor(publicKey: string) {
    if (!/^[A-Za-z0-9_-]{43}$/.test(publicKey)) throw new PollenError('ERR_INVALID_CONFIG', 'piece key is not 32 bytes of base64url');
    this.key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' });
  }

  verify(digest: string, proof: PieceProof, layout?: number): boolean {
    if (!Number.isInteger(proof.index) || proof.index < 0 || proof.index > 0xffffffff || !isSha256Hex(proof.hash) || proof.signature.length !== SIGNATURE_BYTES) return false;
    return verify(null, signedBytes(digest, proof.index, proof.hash, layout), this.key, proof.signature);
  }
}

/** A signature as the seed's answer carries it (base64), or undefined if it is not one. */
export function signatureOf(value: string | undefined): Buffer | undefined {
  if (value === undefined || !/^[A-Za-z0-9+/]{86}==$/.test(value)) return undefined;
  return Buffer.from(value, 'base64');
}

export function encodeProof(proof: PieceProof): Buffer {
  const out = Buffer.allocUnsafe(PROOF_BYTES);
  out.writeUInt32BE(proof.index, 0);
  out.write(proof.hash, 4, 32, 'hex');
  proof.signature.copy(out, 36);
  return out;
}

/** A proof from the wire, or undefined if the payload is not one. */
export function decodeProof(payload: Uint8Array): PieceProof | undefined {
  if (payload.length !== PROOF_BYTES) return undefined;
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  return { index: b.readUInt32BE(0), hash: b.toString('hex', 4, 36), signature: Buffer.from(b.subarray(36)) };
}

const STORED_BYTES = 96;
/**
 * What a ProofSet holds of a piece: nothing, its hash and the supernode's signature (checked), its
 * hash alone, or its hash and a signature not checked yet (the hash was known from the supernode).
 */
const NONE = 0;
const PROOF = 1;
const HASH_ONLY = 2;
const UNCHECKED = 3;

/**
 * The proofs a peer holds for one blob's pieces, 96 bytes a piece in one buffer, not an object each;
 * and the hashes it learned without a proof (from a hash list the supernode vouched for, wire
 * `pollen_hashes`): once it holds every piece's hash it can hand its children the whole list. A
 * proof of a hash the peer already had from the supernode (the seed's answer, a sync, the list)
 * teaches nothing, so its signature is checked only when the proof is first handed on (`get`, with
 * the check given to `checkWith`): a proof that fails it is dropped and its hash kept alone. A peer
 * whose children take the list checks none of those. Saved, a proof never checked is kept as its
 * hash alone: whatever checks it then is gone with the transfer.
 */
export class ProofSet {
  readonly pieceCount: number;
  private readonly bytes: Buffer;
  private readonly present: Uint8Array;
  /** Pieces with a hash (proof or not): the list is whole at pieceCount. */
  private hashed = 0;
  /** Checks a signature not checked yet: true or false, or undefined while it cannot (no key: such a proof is not handed on now, and stays unchecked). */
  private check: ((proof: PieceProof) => boolean | undefined) | undefined;

  constructor(pieceCount: number) {
    this.pieceCount = pieceCount;
    this.bytes = Buffer.alloc(pieceCount * STORED_BYTES);
    this.present = new Uint8Array(pieceCount);
  }

  /** Memory held (for the peer's bound on proofs of committed blobs). */
  get size(): number {
    return this.bytes.length + this.present.length;
  }

  /**
   * Keeps a proof, checked by the caller or (`checked` false) to be checked before it is handed on;
   * the first one kept for a piece stays, and it takes the place of the same hash kept alone.
   */
  set(proof: PieceProof, checked = true): void {
    const i = proof.index;
    if (!this.slot(i) || this.present[i] === PROOF || this.present[i] === UNCHECKED || proof.signature.length !== SIGNATURE_BYTES || !isSha256Hex(proof.hash)) return;
    if (this.present[i] === HASH_ONLY && this.hashOf(i) !== proof.hash) return;
    if (this.present[i] === NONE) this.hashed++;
    this.bytes.write(proof.hash, i * STORED_BYTES, 32, 'hex');
    proof.signature.copy(this.bytes, i * STORED_BYTES + 32);
    this.present[i] = checked ? PROOF : UNCHECKED;
  }

  /** How a proof kept unchecked is checked when it is first handed on (undefined: not any more). */
  checkWith(check: ((proof: PieceProof) => boolean | undefined) | undefined): void {
    this.check = check;
  }

  /** Whether a proof (checked or not) is kept for piece `index`. */
  hasProof(index: number): boolean {
    return this.present[index] === PROOF || this.present[index] === UNCHECKED;
  }

  /** Keeps piece `i`'s hash without a proof (one the caller knows from the supernode); a piece's first hash stays. */
  setHash(i: number, hash: string): void {
    if (!this.slot(i) || this.present[i] !== NONE || !isSha256Hex(hash)) return;
    this.bytes.write(hash, i * STORED_BYTES, 32, 'hex');
    this.present[i] = HASH_ONLY;
    this.hashed++;
  }

  /** A kept proof whose signature checks (a hash kept alone is none); one not checked yet is checked now, once. */
  get(index: number): PieceProof | undefined {
    const state = this.present[index];
    if (state !== PROOF && state !== UNCHECKED) return undefined;
    const at = index * STORED_BYTES;
    const proof = { index, hash: this.bytes.toString('hex', at, at + 32), signature: this.bytes.subarray(at + 32, at + STORED_BYTES) };
    if (state === PROOF) return proof;
    const good = this.check?.(proof);
    if (good === undefined) return undefined;
    this.present[index] = good ? PROOF : HASH_ONLY;
    return good ? proof : undefined;
  }

  /** The hash kept for piece `index`, with its proof or alone. */
  hashOf(index: number): string | undefined {
    if (!this.present[index]) return undefined;
    const at = index * STORED_BYTES;
    return this.bytes.toString('hex', at, at + 32);
  }

  /** Every piece's sha256, 32 bytes each in piece order (a `pollen_hashes` payload), once every piece has one. */
  hashList(): Buffer | undefined {
    if (this.hashed < this.pieceCount) return undefined;
    const out = Buffer.allocUnsafe(this.pieceCount * 32);
    for (let i = 0; i < this.pieceCount; i++) this.bytes.copy(out, i * 32, i * STORED_BYTES, i * STORED_BYTES + 32);
    return out;
  }

  private slot(i: number): boolean {
    return Number.isInteger(i) && i >= 0 && i < this.pieceCount;
  }

  /**
   * The set as one string for the peer's store: 96 bytes a piece, then a byte a piece, 1 for a
   * checked proof (what versions before hash lists read: a nonzero byte is a proof to hand on).
   * Hashes kept alone, and proofs never checked (nothing can check them after a restart), go in
   * hashesAlone, which those versions do not read.
   */
  toBase64(): string {
    return Buffer.concat([this.bytes, this.present.map((kind) => (kind === PROOF ? 1 : 0))]).toString('base64');
  }

  /** Which pieces have a hash but no checked proof, a byte each (undefined: none). */
  hashesAlone(): string | undefined {
    const alone = this.present.map((kind) => (kind === HASH_ONLY || kind === UNCHECKED ? 1 : 0));
    return alone.includes(1) ? Buffer.from(alone).toString('base64') : undefined;
  }

  /** A set of toBase64 (and hashesAlone), or undefined unless `text` is one of `pieceCount` pieces. */
  static fromBase64(pieceCount: number, text: unknown, hashesAlone?: unknown): ProofSet | undefined {
    if (typeof text !== 'string' || !Number.isInteger(pieceCount) || pieceCount <= 0) return undefined;
    const raw = Buffer.from(text, 'base64');
    if (raw.length !== pieceCount * (STORED_BYTES + 1)) return undefined;
    const alone = typeof hashesAlone === 'string' ? Buffer.from(hashesAlone, 'base64') : undefined;
    const set = new ProofSet(pieceCount);
    raw.copy(set.bytes, 0, 0, pieceCount * STORED_BYTES);
    for (let i = 0; i < pieceCount; i++) {
      // 1: a checked proof. 2 and 3 (a hash alone, a proof unchecked), as the first builds with hash lists saved them: hashes alone.
      const byte = raw[pieceCount * STORED_BYTES + i];
      const kind = byte === PROOF ? PROOF : byte === HASH_ONLY || byte === UNCHECKED || (alone?.length === pieceCount && alone[i]) ? HASH_ONLY : NONE;
      set.present[i] = kind;
      if (kind !== NONE) set.hashed++;
    }
    return set;
  }
}
