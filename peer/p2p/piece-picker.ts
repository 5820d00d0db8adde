// Which piece to ask a parent for next. The first few missing pieces come first, in order (a
// waiting engine streams the blob in order); beyond that window, rarest first over what the
// connected parents and the supernode report, lowest index on ties. In endgame (every missing
// piece already requested somewhere, as BitTorrent's) a piece may be asked of a second parent.
// A missing piece that no source offers yet (the seed has not had it from the registry) keeps the
// peer out of endgame: the simulation running this picker found a peer caught up with the swarm's
// frontier otherwise asked second copies of everything in flight, 2 x S of duplicates at N = 16.
import type { Bitfield } from '../../src/p2p/bitfield.ts';

/** Missing pieces at the head of the blob fetched in order before rarest-first applies. */
export const STREAM_AHEAD_PIECES = 2;
export const ENDGAME_COPIES = 2;

export interface PickInput {
  readonly have: Bitfield;
  /** How many parents each piece is currently requested from. */
  readonly inFlight: ReadonlyMap<number, number>;
  /** Whether this parent can give piece i (it holds it and its hash is known). */
  readonly canGet: (i: number) => boolean;
  /** Holders of piece i known to us (connected parents + supernode availability). */
  readonly availability: (i: number) => number;
  /** Pieces this parent is already fetching (never asked twice of one parent). */
  readonly mine: { has(i: number): boolean };
}

/**
 * Each pick reads every missing piece (the counts of pending and unrequested ones decide endgame),
 * so the scans read the bitfield's bytes and step over a byte whose eight pieces are all held.
 */
export function pickPiece(input: PickInput): number | undefined {
  const { have, inFlight, canGet, availability, mine } = input;
  const n = have.length;
  const held = have.bytes;
  const first = have.prefixLength();
  let ahead = 0;
  for (let i = first; i < n && ahead < STREAM_AHEAD_PIECES; i++) {
    if (isHeld(held, i)) continue;
    ahead++;
    if (!inFlight.has(i) && canGet(i)) return i;
  }
  let best: number | undefined;
  let bestAvail = Infinity;
  let pending = 0;
  let unrequested = 0;
  for (let i = first; i < n; i++) {
    if ((i & 7) === 0 && held[i >> 3] === 0xff) {
      i += 7;
      continue;
    }
    if (isHeld(held, i)) continue;
    if (inFlight.has(i)) {
      pending++;
      continue;
    }
    unrequested++;
    if (!canGet(i)) continue;
    const a = availability(i);
    if (a < bestAvail) {
      best = i;
      bestAvail = a;
    }
  }
  if (best !== undefined) return best;
  // Endgame: every missing piece is already requested somewhere.
  if (pending === 0 || unrequested > 0) return undefined;
  for (let i = first; i < n; i++) {
    if (isHeld(held, i) || mine.has(i)) continue;
    const copies = inFlight.get(i) ?? 0;
    if (copies > 0 && copies < ENDGAME_COPIES && canGet(i)) return i;
  }
  return undefined;
}

/** Bit `i` of a bitfield's bytes (BitTorrent order), without Bitfield.has's checks of `i`. */
function isHeld(bytes: Uint8Array, i: number): boolean {
  return (bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0;
}
