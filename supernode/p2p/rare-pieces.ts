// The holders of a task's stranded pieces: pieces that at most RARE_HOLDERS peers have held for
// STRANDED_AFTER_MS or longer, with the peers that hold them, oldest first. A parent scan reads a
// random window of the holders (scan-window.ts), so a piece one peer holds is in an asker's window
// one scan in swarm / scanLimit (1 in 20 at 1,000 peers), and a holder with no children in that task
// keeps it to itself: its pieces reach the others only through the askers that happen to see it.
// Simulated 1,000 peers, the bed's four-layer 64 MiB image, paced to 2.5 s (`bench sim --layers bed
// --sync-rate 400`, seed 1): at 6 s pieces of the second and third layers had 1-4 holders while
// the seed's newer ones had 800-900, and with 12 upload slots the whole swarm waited 2.5 s for one
// piece of the first layer that one peer without children in that layer had held since 5.9 s.
// Pieces the seed has just sent are rare too, but moving: their holders' children fetch them
// within a fraction of a second. Only pieces rare for a second are offered out of the window, and
// one holder a scan, ranked above the window's holders (scheduler.ts pickParents).
import type { PeerRecord } from './tracker.ts';

/** A piece is rare while this many holders or fewer have it. */
export const RARE_HOLDERS = 2;
/** A rare piece is stranded once it has been rare this long (since its first holder got it). */
export const STRANDED_AFTER_MS = 1_000;
/** Rare pieces a scan reads at most (the oldest first): bounds the work when many are rare. */
const RARE_PIECES_READ = 32;

interface RarePiece {
  /** When its first holder got it. */
  readonly since: number;
  readonly holders: PeerRecord[];
}

export class RarePieces {
  /** Rare pieces and their holders, in the order they were first held (oldest first). */
  private readonly pieces = new Map<number, RarePiece>();

  /** `peer` got piece `i`, which `held` peers hold now (it included). */
  held(i: number, peer: PeerRecord, held: number, now: number): void {
    if (held > RARE_HOLDERS) {
      // Only a piece that came up from one holder is tracked, so it goes as it passes the line.
      if (held === RARE_HOLDERS + 1) this.pieces.delete(i);
      return;
    }
    const rare = this.pieces.get(i);
    if (rare) {
      if (!rare.holders.some((h) => h.peerId === peer.peerId)) rare.holders.push(peer);
    } else if (held === 1) this.pieces.set(i, { since: now, holders: [peer] });
    // A piece that fell back to RARE_HOLDERS holders from more (holders left) is not tracked: its
    // holders are not known without a scan, and they got it from each other or the seed, together.
  }

  /** `peer` no longer holds piece `i` (it left the task); `held` peers still do. */
  released(i: number, peer: PeerRecord, held: number): void {
    const rare = this.pieces.get(i);
    if (!rare) return;
    const at = rare.holders.findIndex((h) => h.peerId === peer.peerId);
    if (at >= 0) rare.holders.splice(at, 1);
    if (held === 0 || rare.holders.length === 0) this.pieces.delete(i);
  }

  /**
   * A holder (not `asker`, not `skip`) of a piece stranded at `now` that the asker `lacks`, the
   * longest stranded first; undefined if none.
   */
  holderFor(lacks: (i: number) => boolean, asker: string, now: number, skip: (peer: PeerRecord) => boolean): PeerRecord | undefined {
    let read = 0;
    for (const [i, rare] of this.pieces) {
      if (now - rare.since < STRANDED_AFTER_MS || ++read > RARE_PIECES_READ) return undefined;
      if (!lacks(i)) continue;
      for (const peer of rare.holders) if (peer.peerId !== asker && !skip(peer)) return peer;
    }
    return undefined;
  }

  /** Rare pieces tracked (tests). */
  get size(): number {
    return this.pieces.size;
  }
}
