// How a scan ranks the holders it reads as parents for one asker: a score, and the holders of what a
// starved asker lacks (or of a stranded piece, rare-pieces.ts) above every other, whatever their score.
import type { PeerRecord } from './tracker.ts';

/**
 * A parent's children per upload slot (parent-load.ts) weigh as much as its share of the pieces the
 * asker lacks: a parent whose slots are all taken ranks as one holding nothing more (Dragonfly 2's
 * evaluator weighs a parent's free uploads against its finished pieces alike). Figures: parent-load.ts.
 */
const LOAD_WEIGHT = 1;

export interface Ranked {
  readonly peer: PeerRecord;
  /** It holds what the asker must have from a peer (ranks above every holder that is not). */
  readonly needed: boolean;
  readonly score: number;
}

/** A holder's score as a parent: its share of what the asker lacks, its slots, recent picks, children per slot, failures. */
export function parentScore(peer: PeerRecord, useful: number, pieceCount: number): number {
  return useful / pieceCount + 0.05 * peer.uploadSlots - 0.1 * peer.picks - LOAD_WEIGHT * (peer.children / Math.max(1, peer.uploadSlots)) - 1.0 * peer.failures;
}

/** Keeps `peer` in `best` (at most `keep`, best first) if it ranks above the last kept: a sorted insert into a short list. */
export function keepRanked(best: Ranked[], keep: number, peer: PeerRecord, needed: boolean, score: number): void {
  if (best.length === keep && !ranksBelow(best[keep - 1]!, needed, score)) return;
  let at = best.length < keep ? best.length : keep - 1;
  while (at > 0 && ranksBelow(best[at - 1]!, needed, score)) at--;
  best.splice(at, 0, { peer, needed, score });
  if (best.length > keep) best.pop();
}

/** Whether a kept holder ranks below one that holds what the asker lacks (`needed`) with `score`. */
function ranksBelow(kept: { needed: boolean; score: number }, needed: boolean, score: number): boolean {
  return kept.needed === needed ? kept.score < score : needed;
}
