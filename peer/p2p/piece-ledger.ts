// The piece accounting of one transfer, pure (no I/O, no time): which pieces are verified, which
// are being written, which sources (parents by peer id, or the seed) each piece is requested from
// and why, and every byte that arrived without becoming a stored piece, by cause. The fan-out bed
// found 30-45 % of the bytes a Pollen peer received were duplicates; these counters say where
// they come from.
import type { Bitfield } from '../../src/p2p/bitfield.ts';

/** The key the seed holds its requests under (parents hold theirs under their peer id). */
export const SEED_SOURCE = 'seed';

/** Why a piece was requested from a source. */
export type RequestReason = 'first' | 'endgame' | 'starved-seed-grant';

export const DUPLICATE_CAUSES = ['endgame', 'starved-seed-grant', 'stall-reassign', 'parent-lost', 'fallback-overlap', 'late-arrival', 'corrupt', 'unproved', 'unasked'] as const;
/**
 * Why received bytes were thrown away: a second copy asked in endgame or by a seed grant for a
 * piece already in flight; the partial piece of a parent dropped for stalling, or of one that went
 * away; what was in flight when the transfer fell back to the registry (or registry bytes of pieces
 * already held); a block that came after its piece was settled; a piece that failed its hash; a
 * piece asked of a parent that speaks piece proofs before its hash was known, which came without
 * a proof (transfer-proofs.ts); a block a parent sent that we had not asked for, or no longer
 * but not by a cancel (a choke came between): no second copy of anything.
 */
export type DuplicateCause = (typeof DUPLICATE_CAUSES)[number];

export interface TransferStats {
  /** Every byte that arrived, from parents, the seed and the registry. */
  receivedBytes: number;
  duplicateBytes: Record<DuplicateCause, number>;
  fallbacks: number;
  /** Parents dropped because a piece got no block for pieceStallMs. */
  stalls: number;
  /** Seed grants declined because the piece was in flight to a live parent (each piece once). */
  starvedGrants: number;
  /** Wire connections opened to parents. */
  dials: number;
  /** Syncs with the supernode that were answered. */
  syncs: number;
}

export function emptyStats(): TransferStats {
  return { receivedBytes: 0, duplicateBytes: Object.fromEntries(DUPLICATE_CAUSES.map((c) => [c, 0])) as Record<DuplicateCause, number>, fallbacks: 0, stalls: 0, starvedGrants: 0, dials: 0, syncs: 0 };
}

export class PieceLedger {
  readonly have: Bitfield;
  readonly stats: TransferStats = emptyStats();
  private readonly requests = new Map<number, Map<string, RequestReason>>();
  private readonly counts = new Map<number, number>();
  private readonly writing = new Set<number>();
  /** Why a piece was ever asked of two sources at once (the cause its wasted copies count under). */
  private readonly copyReason = new Map<number, RequestReason>();
  /**
   * Counts the times a missing piece may have become requestable again: a request taken back
   * without its bytes, a write that failed. Between two changes of it, and outside endgame, a
   * parent that had no piece to give still has none unless it announced more (ParentRequests.pump).
   */
  freed = 0;

  constructor(have: Bitfield) {
    this.have = have;
  }

  /** How many sources each piece is requested from now (what the piece picker reads). */
  get inFlight(): ReadonlyMap<number, number> {
    return this.counts;
  }

  holders(index: number): string[] {
    return [...(this.requests.get(index)?.keys() ?? [])];
  }

  isWriting(index: number): boolean {
    return this.writing.has(index);
  }

  /** Neither verified nor being written. */
  isMissing(index: number): boolean {
    return !this.have.has(index) && !this.writing.has(index);
  }

  /** Records that `source` is asked for piece `index`; the reason is 'first' unless another source already has it. */
  request(index: number, source: string, reason: RequestReason = 'first'): RequestReason {
    let held = this.requests.get(index);
    if (!held) this.requests.set(index, (held = new Map()));
    if (held.has(source)) throw new Error(`piece ${index} is already requested from ${source}`);
    const why: RequestReason = held.size > 0 && reason === 'first' ? 'endgame' : held.size > 0 ? reason : 'first';
    held.set(source, why);
    this.counts.set(index, held.size);
    if (why !== 'first') this.copyReason.set(index, why);
    return why;
  }

  /**
   * `source` is no longer asked for piece `index`: 'dropped', the piece may be asked elsewhere
   * again; 'arrived', its bytes are in hand and go to be verified and written at once (if they
   * fail, the caller says so with `lost`).
   */
  release(index: number, source: string, why: 'dropped' | 'arrived' = 'dropped'): void {
    const held = this.requests.get(index);
    if (!held?.delete(source)) return;
    if (why === 'dropped') this.freed++;
    if (held.size === 0) {
      this.requests.delete(index);
      this.counts.delete(index);
    } else this.counts.set(index, held.size);
  }

  /** Starts writing a verified piece; false when it is already held or being written (a copy). */
  beginWrite(index: number): boolean {
    if (!this.isMissing(index)) return false;
    this.writing.add(index);
    return true;
  }

  endWrite(index: number, stored: boolean): void {
    this.writing.delete(index);
    if (stored) this.have.set(index);
    else this.freed++;
  }

  /** A piece released as arrived failed its hash: it is missing and requestable again. */
  lost(): void {
    this.freed++;
  }

  received(bytes: number): void {
    this.stats.receivedBytes += bytes;
  }

  wasted(cause: DuplicateCause, bytes: number): void {
    if (bytes > 0) this.stats.duplicateBytes[cause] += bytes;
  }

  /** The cause a redundant copy of `index` counts under. */
  copyCause(index: number): DuplicateCause {
    const why = this.copyReason.get(index);
    return why === undefined || why === 'first' ? 'late-arrival' : why;
  }

  get duplicateBytes(): number {
    let n = 0;
    for (const c of DUPLICATE_CAUSES) n += this.stats.duplicateBytes[c];
    return n;
  }
}
