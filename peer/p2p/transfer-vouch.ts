// Whether a transfer may commit its blob without hashing it whole. The supernode's task answer
// vouches for the blob's piece hashes once its seed holds the blob verified against the digest
// (TaskAnswer.hashList, pieceHashList of src/p2p/metainfo.ts). Every piece a transfer writes from
// a parent or the seed was checked against its hash first (ParentRequests, SeedGrants); if those
// are exactly the vouched list, the file holds the bytes the seed verified, and the second sha256
// pass over the blob (in order as it is written, reading back what came out of order) is not
// needed: on loopback it was a fifth of a downloading peer's CPU (bench:peer-cpu). A piece from the
// registry fallback (whose hash may not have been known when it was written) or one written by an
// earlier run leaves the commit to hash the file as before.
import type { MetainfoBody } from '../../src/p2p/supernode-api.ts';
import { pieceHashList } from '../../src/p2p/metainfo.ts';

export class TransferVouch {
  private readonly hashList: string | undefined;
  /** The hash each piece was checked against before it was written (by index). */
  private readonly checked: Array<string | undefined>;
  private unchecked = false;

  /** `resumed`: the transfer starts with pieces an earlier run wrote (checked then, not here). */
  constructor(pieceCount: number, hashList: string | undefined, resumed: boolean) {
    this.hashList = hashList;
    this.checked = new Array<string | undefined>(pieceCount);
    this.unchecked = resumed;
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
