// The piece proofs of one transfer (src/p2p/piece-proof.ts): the supernode's signatures of piece
// hashes, which come with the seed's pieces and from parents on the wire before a piece's first
// block. A proof the supernode's key checks gives the transfer the piece's hash, so it may ask a
// parent that sends proofs for a piece whose hash it has not learned yet, and its syncs need not
// carry hashes at all: the supernode's uplink then carries no piece hashes (at 10,000 simulated
// peers, every hash once per peer was 0.8 x the blob's size there). A proof kept is one this peer
// may hand on to its own children (checked first, ProofSet.get). A parent that has no proof for a
// piece it sends (it learned the hash from a sync or a hash list, or restarted since) is asked only
// for pieces whose hash is known from then. Once the supernode vouched for the hash of the blob's
// piece-hash list, a parent's list (fromList) teaches every hash with no proof at all.
import type { Logger } from 'pino';
import type { Digest } from '../../src/digest.ts';
import { namedLayout, pieceHashList } from '../../src/p2p/metainfo.ts';
import { ProofSet, type PieceProof, type ProofVerifier } from '../../src/p2p/piece-proof.ts';
import type { Bitfield } from '../../src/p2p/bitfield.ts';
import type { ParentLink } from './parent-link.ts';

export type ProofCheck = Pick<ProofVerifier, 'verify'>;

/** The transfer's piece hashes as the proofs need them. */
export interface HashPort {
  /** The hash known for piece `i` (null or undefined while unknown). */
  known(i: number): string | null | undefined;
  /** Learns piece `i`'s hash (it was unknown). */
  learn(i: number, hash: string): void;
  /** Learns every piece's hash at once (those known stay). */
  learnAll(hashes: readonly string[]): void;
  /** The hash of the piece-hash list the supernode vouched for (transfer-vouch.ts), once it did. */
  vouched(): string | undefined;
}

/** The key getter of a transfer without one (made here: a closure made in the transfer would hold it, see checkBy). */
export const NO_KEY = (): ProofCheck | undefined => undefined;

export class TransferProofs {
  readonly kept: ProofSet;
  private readonly digest: Digest;
  private readonly pieceSize: number;
  /** What the proofs bind besides the piece (metainfo.ts namedLayout). */
  private readonly layout: number | undefined;
  private readonly verifier: () => ProofCheck | undefined;
  private readonly hashes: HashPort;

  /** A list did not match the vouched value (fromList): none is asked for again. */
  private listsOff = false;
  /** Where a parent whose hash list lies is logged and banned (fromList). */
  private readonly bad: { readonly logger: Pick<Logger, 'warn'>; ban(parent: ParentLink): void };

  constructor(meta: { digest: Digest; size: number; pieceSize: number; pieceCount: number }, verifier: () => ProofCheck | undefined, hashes: HashPort, bad: TransferProofs['bad']) {
    this.digest = meta.digest;
    this.pieceSize = meta.pieceSize;
    this.bad = bad;
    this.layout = namedLayout(meta.size, meta.pieceSize);
    this.kept = new ProofSet(meta.pieceCount);
    this.kept.checkWith(checkBy(verifier, this.digest, this.layout));
    this.verifier = verifier;
    this.hashes = hashes;
  }

  /** Whether `parent` may be asked for a piece whose hash is not known yet. */
  vouches(parent: ParentLink): boolean {
    return parent.conn.speaksProofs === true && !parent.withoutProofs && this.verifier() !== undefined;
  }

  /**
   * The seed's piece came with its hash (as trusted as a sync answer's: learned) and perhaps its
   * proof (kept to hand on to children; its signature checked when it is first handed on).
   */
  fromSeed(index: number, hash: string, signature: Buffer | undefined): void {
    if (this.hashes.known(index) == null) this.hashes.learn(index, hash);
    if (signature) this.take({ index, hash, signature });
  }

  /**
   * Keeps `proof` if it agrees with the hash already known for the piece (then its signature is
   * checked only if it is handed on), or, for a piece whose hash is not known, if the supernode's
   * key checks it; true when kept. A piece's proof already kept is not checked again.
   */
  private take(proof: PieceProof): boolean {
    const known = this.hashes.known(proof.index);
    if (typeof known === 'string' && known !== proof.hash) return false;
    if (this.kept.hasProof(proof.index) && this.kept.hashOf(proof.index) === proof.hash) return true;
    // The hash is known from the supernode (its answers, the list, or a proof checked before): the
    // proof teaches nothing, and its signature is checked only if it is handed on (ProofSet.get).
    if (typeof known === 'string') {
      this.kept.set(proof, false);
      return true;
    }
    const verifier = this.verifier();
    if (!verifier?.verify(this.digest, proof, this.layout)) return false;
    this.kept.set(proof);
    return true;
  }

  /**
   * A parent's proof: one per piece and connection, of a piece it holds (the uploader sends each
   * once, as it serves the piece), so a parent costs at most one signature check per piece of the
   * blob; anything else closes the connection. A kept proof of a piece whose hash was unknown
   * teaches the hash.
   */
  fromParent(parent: ParentLink, proof: PieceProof): void {
    if (proof.index >= this.kept.pieceCount || !parent.conn.peerHas(proof.index)) return parent.conn.destroy('piece proof of a piece it does not hold');
    if (parent.proved.has(proof.index)) return parent.conn.destroy('piece proof repeated');
    parent.proved.add(proof.index);
    const unknown = this.hashes.known(proof.index) == null;
    if (this.take(proof) && unknown) this.hashes.learn(proof.index, proof.hash);
  }

  /** Whether a parent dialled now is asked for its hash list: the supernode vouched for one, hashes are still unknown, and no list failed to match. */
  wantList(): boolean {
    if (this.listsOff || this.hashes.vouched() === undefined) return false;
    for (let i = 0; i < this.kept.pieceCount; i++) if (this.hashes.known(i) == null) return true;
    return false;
  }

  /**
   * A parent's hash list (wire-extensions.ts HASHES_EXT), asked for when the supernode had vouched
   * for the list's hash: every piece's hash, if the list hashes to that (pieceHashList). A list of
   * another length, or one that contradicts a hash already known (from the supernode, the seed or a
   * checked proof), is a lie about the blob: the parent is banned, as for a bad piece. One that
   * only fails to hash to the vouched value could also mean the vouched value is wrong: the parent
   * is closed, not banned, and no parent is asked for a list again in this transfer.
   */
  fromList(parent: ParentLink, list: Buffer): void {
    const vouched = this.hashes.vouched();
    // Not taken (it came on a dial from before lists stopped): that parent sends no proofs here either.
    if (vouched === undefined || this.listsOff) {
      parent.withoutProofs = true;
      return;
    }
    const hashes: string[] = [];
    for (let i = 0; i < this.kept.pieceCount && list.length === this.kept.pieceCount * 32; i++) hashes.push(list.toString('hex', i * 32, i * 32 + 32));
    if (pieceHashList({ digest: this.digest, pieceSize: this.pieceSize, hashes }) === vouched && hashes.length > 0) {
      this.hashes.learnAll(hashes);
      hashes.forEach((h, i) => this.kept.setHash(i, h));
      return;
    }
    const lie = hashes.length === 0 || hashes.some((h, i) => {
      const known = this.hashes.known(i);
      return typeof known === 'string' && known !== h;
    });
    this.bad.logger.warn({ digest: this.digest, parent: parent.peerId, lie }, lie ? 'hash list from a parent contradicts the known hashes; banning it' : 'hash list from a parent is not the one the supernode vouched for; no more lists for this blob');
    if (lie) return this.bad.ban(parent);
    this.listsOff = true;
    parent.conn.destroy('hash list not the one the supernode vouched for');
  }

  /**
   * The proofs and hashes kept, with every hash the transfer knows (its pieces were all checked
   * against them): what a committed blob's children get (LocalPieces keeps it, and with it the
   * check of its unchecked proofs, which holds only the key's getter, the digest and the layout).
   */
  committed(): ProofSet {
    for (let i = 0; i < this.kept.pieceCount; i++) {
      const h = this.hashes.known(i);
      if (typeof h === 'string') this.kept.setHash(i, h);
    }
    return this.kept;
  }

  /**
   * Whether the next sync asks the supernode for hashes: without its key (a supernode from before
   * proofs), or while a ready parent that sends no proofs holds a piece we lack and whose hash we
   * do not know. Otherwise every piece we may ask for comes with its hash.
   */
  askSupernode(parents: Iterable<ParentLink>, have: Bitfield): boolean {
    if (this.verifier() === undefined) return true;
    for (const parent of parents) {
      if (this.vouches(parent) || parent.conn.isClosed) continue;
      for (let i = 0; i < have.length; i++) if (!have.has(i) && this.hashes.known(i) == null && parent.conn.peerHas(i)) return true;
    }
    return false;
  }
}

/**
 * The check of unchecked proofs (ProofSet.checkWith): by the key `key()` gives when it runs, put off
 * while there is none. Made here so that it holds its arguments and nothing of the transfer (a
 * committed blob's proofs keep it; the getter is made apart for the same reason, p2p-downloader.ts).
 */
function checkBy(key: () => ProofCheck | undefined, digest: Digest, layout: number | undefined): (proof: PieceProof) => boolean | undefined {
  return (proof) => key()?.verify(digest, proof, layout);
}
