// A transfer's verified bitfield in the peer's store (level), so a restarted peer resumes where it
// was instead of fetching the blob again. Writes are chained, so an older snapshot never lands
// last; coalesced, so a save asked while one waits its turn joins it and its snapshot is taken
// when it runs; and spaced at most one per `everyMs`: a 64 MiB layer verifies ~130 pieces in a
// few seconds, and a write per piece (a level put, its log write on the thread pool) bought
// nothing but a finer resume. A crash loses at most that long of verified pieces, fetched again
// after the restart; a shutdown writes the last snapshot (flush). remove() waits for the writes
// under way, then deletes: nothing lands after it.
import type { Clock, Timer } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import type { Bitfield } from '../../src/p2p/bitfield.ts';
import type { PieceKv } from './transfer-seams.ts';

/** At most one write of a transfer's bitfield this often. */
export const RECORD_EVERY_MS = 1_000;

export class BitfieldRecord {
  private readonly kv: PieceKv;
  private readonly clock: Clock;
  private readonly everyMs: number;
  private readonly digest: Digest;
  private readonly size: number;
  private readonly pieceSize: number;
  private readonly have: Bitfield;
  private chain: Promise<void> = Promise.resolve();
  private queued = false;
  private removed = false;
  /** When the last write was started (-Infinity: none yet, the first goes at once). */
  private lastAt = -Infinity;
  /** A save waiting for its turn in time. */
  private later: Timer | undefined;

  constructor(deps: { kv: PieceKv; clock: Clock }, options: { digest: Digest; size: number; pieceSize: number; have: Bitfield; everyMs?: number }) {
    this.kv = deps.kv;
    this.clock = deps.clock;
    this.everyMs = options.everyMs ?? RECORD_EVERY_MS;
    this.digest = options.digest;
    this.size = options.size;
    this.pieceSize = options.pieceSize;
    this.have = options.have;
  }

  /**
   * Asks for a write holding every piece verified so far: now when the last one started `everyMs`
   * ago or more, else once that long has passed. Does not wait for it (see flush).
   */
  save(): void {
    if (this.removed || this.later || this.queued) return;
    const wait = this.lastAt + this.everyMs - this.clock.now();
    if (wait > 0) this.later = this.clock.setTimeout(() => void this.flush(), wait);
    else void this.write();
  }

  /** Writes now what a waiting save would have written; resolves once the writes asked have landed (or failed: a resume is best effort). */
  flush(): Promise<void> {
    if (this.later) {
      this.later.cancel();
      this.later = undefined;
      return this.write();
    }
    return this.chain;
  }

  /** Deletes the record once the writes under way have landed; later saves write nothing. */
  async remove(): Promise<void> {
    this.removed = true;
    this.later?.cancel();
    this.later = undefined;
    await this.chain;
    await this.kv.del(this.digest).catch(() => {});
  }

  private write(): Promise<void> {
    if (this.removed) return this.chain;
    if (this.queued) return this.chain;
    this.queued = true;
    this.lastAt = this.clock.now();
    this.chain = this.chain
      .then(() => {
        this.queued = false;
        if (this.removed) return;
        return this.kv.put(this.digest, { size: this.size, pieceSize: this.pieceSize, pieces: this.have.toBase64() });
      })
      .catch(() => {});
    return this.chain;
  }
}
