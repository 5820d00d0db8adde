// Counts over the holders' bitfields that the scheduler's scan makes: how many hold a piece, and how
// many pieces one holds that another lacks.
import type { Bitfield } from '../../src/p2p/bitfield.ts';

/** How many of `bitfields` hold piece `i`. */
export function heldBy(bitfields: readonly Bitfield[], i: number): number {
  let n = 0;
  for (const b of bitfields) if (b.has(i)) n++;
  return n;
}

/** Set bits of each byte value. */
const POPCOUNT8 = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let x = b; x; x &= x - 1) n++;
  return n;
});

/** Pieces `theirs` holds that `mine` lacks. */
export function countUseful(theirs: Bitfield, mine: Bitfield): number {
  const t = theirs.bytes;
  const m = mine.bytes;
  let n = 0;
  for (let b = 0; b < t.length; b++) n += POPCOUNT8[t[b]! & ~m[b]! & 0xff]!;
  return n;
}
