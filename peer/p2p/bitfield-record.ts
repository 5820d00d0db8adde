// A transfer's verified bitfield in the peer's store (level), so a restarted peer resumes where it
// was instead of fetching the blob again. Writes are chained, so an older snapshot never lands
// last, and coalesced: a save asked while one waits its turn joins it, and its snapshot is taken
// when it runs, with every piece verified until then (pieces verified faster than the store writes
// cost one write per turn, not one each: classic-level's put was 1.8 % of a peer's samples on the
// fan-out bed). remove() waits for the writes under way, then deletes: nothing lands after it.
import type { Digest } from '../../src/digest.ts';
import type { Bitfield } from '../../src/p2p/bitfield.ts';
import type { PieceKv } from './transfer-seams.ts';

export class BitfieldRecord {
  private readonly kv: PieceKv;
  private readonly digest: Digest;
  private readonly size: number;
  private readonly pieceSize: number;
  private readonly have: Bitfield;
  private chain: Promise<void> = Promise.resolve();
  private queued = false;
  private removed = false;

  constructor(deps: { kv: PieceKv }, options: { digest: Digest; size: number; pieceSize: number; have: Bitfield }) {
    this.kv = deps.kv;
    this.digest = options.digest;
    this.size = options.size;
    this.pieceSize = options.pieceSize;
    this.have = options.have;
  }

  /** Resolves once a write holding every piece verified so far has landed (or failed: a resume is best effort). */
  save(): Promise<void> {
    if (this.removed) return Promise.resolve();
    if (this.queued) return this.chain;
    this.queued = true;
    this.chain = this.chain
      .then(() => {
        this.queued = false;
        if (this.removed) return;
        return this.kv.put(this.digest, { size: this.size, pieceSize: this.pieceSize, pieces: this.have.toBase64() });
      })
      .catch(() => {});
    return this.chain;
  }

  /** Deletes the record once the writes under way have landed; later saves write nothing. */
  async remove(): Promise<void> {
    this.removed = true;
    await this.chain;
    await this.kv.del(this.digest).catch(() => {});
  }
}
