// Whether a transfer may commit its blob without hashing it whole. The supernode vouches for the
// blob's piece hashes once its seed holds the blob verified against the digest: pieceHashList of
// src/p2p/metainfo.ts, in the task's creation answer or, asked (`wantHashList`), in a sync answer
// once the seed is done. Every piece a transfer writes from a parent or the seed was checked
// against its hash first (ParentRequests, SeedGrants); if those are exactly the vouched list, the
// file holds the bytes the seed verified, and the second sha256 pass over the blob (in order as it
// is written, reading back what came out of order) is not needed: on loopback it was a fifth of a
// downloading peer's CPU (bench:peer-cpu). So the ingest stops hashing as soon as a list comes. A
// piece from the registry fallback (whose hash may not have been known when it was written) or
// from an earlier run leaves the commit to hash the whole file.
import { isSha256Hex } from '../../src/digest.ts';
import type { MetainfoBody } from '../../src/p2p/supernode-api.ts';
import { pieceHashList } from '../../src/p2p/metainfo.ts';

export class TransferVouch {
  private hashList: string | undefined;
  /** The vouched value as a parent's hash list is checked against: taken also by a transfer that may not commit on it (resumed). */
  private listHash: string | undefined;
  /** The hash each piece was checked against before it was written (by index). */
  private readonly checked: Array<string | undefined>;
  private unchecked: boolean;
  private readonly forgoDigest: () => void;

  /**
   * `resumed`: the transfer starts with pieces an earlier run wrote; `forgoDigest`: the ingest may
   * stop hashing the blob; `hashList`: the one the task's creation answer brought, if any.
   */
  constructor(pieceCount: number, resumed: boolean, forgoDigest: () => void, hashList?: string) {
    this.checked = new Array<string | undefined>(pieceCount);
    this.unchecked = resumed;
    this.forgoDigest = forgoDigest;
    this.learn(hashList);
  }

  /**
   * Whether a sync should ask for the list: none yet, it could be used, and the transfer holds half
   * the blob. Every piece starts at the seed, so the seed, done only once it holds them all, is
   * rarely done before a peer holds half: asked from the start, the flag rode on every sync of a
   * fan-out's busiest seconds (the model's 1,000 peers: 6 % more request bytes) for nothing.
   */
  wants(held: number): boolean {
    return this.hashList === undefined && !this.unchecked && 2 * held >= this.checked.length;
  }

  /** The hash of the piece-hash list the supernode vouched for, once it did: what a parent's list must hash to (transfer-proofs.ts fromList). */
  get list(): string | undefined {
    return this.listHash;
  }

  /** A list the supernode sent (the first one counts; one that is no sha256 is ignored). */
  learn(hashList: unknown): void {
    if (!isSha256Hex(hashList)) return;
    this.listHash ??= hashList;
    if (this.hashList !== undefined || this.unchecked) return;
    this.hashList = hashList;
    this.forgoDigest();
  }

  /** Piece `index` is written after it checked against `hash`; undefined: unchecked (the registry fallback). */
  wrote(index: number, hash: string | null | undefined): void {
    if (typeof hash === 'string') this.checked[index] = hash;
    else this.unchecked = true;
  }

  /** Whether the commit may skip the digest: every piece written here, checked against the vouched list. */
  vouches(meta: Pick<MetainfoBody, 'digest' | 'pieceSize' | 'pieceCount'>): boolean {
    if (this.hashList === undefined || this.unchecked || this.checked.length !== meta.pieceCount) return false;
    return pieceHashList({ digest: meta.digest, pieceSize: meta.pieceSize, hashes: this.checked }) === this.hashList;
  }
}
