// Which piece to ask a parent for next. The first few missing pieces come first, in order (a
// waiting engine streams the blob in order); beyond that window, rarest first over what the
// connected parents and the supernode report, a random one of the rarest on ties (libtorrent keeps
// each rarity's pieces in random order). The lowest index on ties had children that saw the same
// counts ask for the same pieces: simulated 1,000 peers, 64 MiB, with each transfer's periodic sync
// kept exactly to its period (a throwaway), the downlinks were 0.60-0.84 busy from 1.5 to 4.25 s
// against 0.77-0.92, and the swarm ended 0.3 s later (7.62 s against 7.32; random ties: 7.30); the
// syncs' spread the timers give by chance had hidden it. Seeds 1-4, the code as it is: medians 7.15
// / 7.14 / 7.16 / 7.16 -> 7.09 / 7.06 / 7.09 / 7.10 s, all-done 7.32 / 7.33 / 7.33 / 7.53 -> 7.33 /
// 7.19 / 7.21 / 7.38.
// In endgame (every missing piece already requested somewhere, as BitTorrent's) a piece may be
// asked of a second parent once its first copy is late (`overdue`: no block of it for
// ENDGAME_LAG_MS). Asked at once, as BitTorrent's endgame does, the second copy lost on the bed: a
// parent writes what a child asked into its socket when asked, so a cancel rarely stops it, and the
// hosts received the second copies too (N = 4 / 8 / 16, 64 MiB, two interleaved runs each, at once
// against never: all-done 7.65, 7.29 / 8.90, 9.31 / 16.01, 15.03 s against 7.64, 7.13 / 8.65, 8.63
// / 15.38, 14.63 s; received over needed 1.03-1.06 against 1.01-1.02, the busiest host up to 1.13 x
// the image; the daemons' CPU 3-16 % more). Late copies only (1 s): N = 8 8.40 / 8.34 s; N = 16,
// three pairs interleaved with the at-once endgame in a slow stretch of the machine, 18.47 / 15.05
// / 17.29 against 19.11 / 18.53 / 16.18 s, received over needed 1.011-1.013 against 1.021-1.034,
// the busiest host 1.02-1.03 against 1.05-1.12 x. A slow parent's last piece still gets its second
// copy two seconds in, not after the 8 s stall. The model at 1,000 peers (seeds 1 / 2): 8.19 /
// 8.20 s at once, 8.23 / 8.20 late or never, no duplicate bytes.
// Late by 2 s, not 1: where the cores are the limit (16 hosts, 256 MiB), a parent's next block
// often comes more than a second after its last, so the second copies went to pieces that were
// coming anyway, and cost the busy cores their bytes: five alternating pairs, 1 s against 2 s,
// duplicates 55-97 MB (endgame 20-71) against 21-44 MB (endgame 3-17), the busiest host
// 1.073-1.092 against 1.053-1.063 x the image, all-done 41.56 / 35.89 / 35.90 / 38.34 / 34.26
// against 38.29 / 35.13 / 32.72 / 36.82 / 35.05 s (medians 35.90 against 35.13). Where they are
// not (64 MiB, N = 8 and 4): 7.77 / 8.08 / 7.97 and 6.89 / 7.04 against 7.65 / 8.43 / 7.71 and
// 6.88 / 6.75 s. The model (free CPU, 1,000 peers, one blob and the bed's four layers): the same
// to the hundredth.
// A missing piece that no source offers yet (the seed has not had it from the registry) keeps the
// peer out of endgame: the simulation running this picker found a peer caught up with the swarm's
// frontier otherwise asked second copies of everything in flight, 2 x S of duplicates at N = 16.
import type { Bitfield } from '../../src/p2p/bitfield.ts';

/** Missing pieces at the head of the blob fetched in order before rarest-first applies. */
export const STREAM_AHEAD_PIECES = 2;
export const ENDGAME_COPIES = 2;
/** A piece in flight gets no second copy before its first went this long without a block. */
export const ENDGAME_LAG_MS = 2_000;

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
  /** Whether piece i, in flight, is late enough for a second copy (see ENDGAME_LAG_MS). */
  readonly overdue: (i: number) => boolean;
  /** Uniform in [0, 1): which of the equally rare pieces (default: the lowest index). */
  readonly random?: () => number;
}

/**
 * Each pick reads every missing piece (the counts of pending and unrequested ones decide endgame),
 * so the scans read the bitfield's bytes and step over a byte whose eight pieces are all held.
 */
export function pickPiece(input: PickInput): number | undefined {
  const { have, inFlight, canGet, availability, mine, overdue, random } = input;
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
  let ties = 0;
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
      ties = 1;
    } else if (a === bestAvail && random && random() * ++ties < 1) best = i; // each of the k tied kept with 1/k
  }
  if (best !== undefined) return best;
  // Endgame: every missing piece is already requested somewhere.
  if (pending === 0 || unrequested > 0) return undefined;
  for (let i = first; i < n; i++) {
    if (isHeld(held, i) || mine.has(i)) continue;
    const copies = inFlight.get(i) ?? 0;
    if (copies > 0 && copies < ENDGAME_COPIES && canGet(i) && overdue(i)) return i;
  }
  return undefined;
}

/** Bit `i` of a bitfield's bytes (BitTorrent order), without Bitfield.has's checks of `i`. */
function isHeld(bytes: Uint8Array, i: number): boolean {
  return (bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0;
}
