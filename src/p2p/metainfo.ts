// Pieces of a blob: the piece size is a pure function of the blob size (512 KiB by default, doubled
// until a blob has at most MAX_PIECES pieces; a small blob is one piece), so every peer and the
// supernode agree on the layout without exchanging it. Metainfo adds the sha256 of each piece.
// Small, not Dragonfly's 4 MiB: a peer passes a piece on only once it has all of it and checked
// its hash, so each hop of a fan-out costs a piece time (42 ms at 100 Mbit/s instead of 336 ms);
// simulated, 100 peers at 100 Mbit/s pulling 256 MiB finished 1.6 x T* with 4 MiB pieces and
// 1.2 x T* (median) with 1 MiB (bench/sim, see bench/README.md). Every peer and supernode of a
// cluster must run the same layout (a version that changes it is a whole-cluster upgrade).
import type { Digest } from '../digest.ts';
import { PollenError } from '../errors.ts';

/**
 * Pieces are what a peer can pass on once verified: smaller ones move through a swarm in more, shorter
 * hops. Simulated 64 MiB to 1,000 peers: 2.04 x T* with 1 MiB pieces, 1.77 with 512 KiB, 1.65 with
 * 256 KiB (200 peers: 1.89, 1.64, 1.52). On the CPU-bound 2-core bed 256 KiB cost 10-30 % more CPU
 * (a have, a persisted bitfield and a sync share per piece) and lost at N >= 8; 512 KiB matched 1 MiB
 * in time and CPU with fewer duplicate bytes (endgame copies are smaller). Measured again with the
 * code of 2026-12-02: simulated 1,000 peers 1.44 -> 1.28 x T* with 256 KiB; on the bed, three
 * interleaved pairs each, 64 MiB at N = 4, 8, 16 the same within the noise, 256 MiB lost (N = 8
 * 30.4 -> 34.6 s, N = 16 61.4 -> 68.7 s, the peers' CPU +16 % and +15 %: about 1.5 ms of CPU per
 * extra piece and peer, none of it seen on loopback with one parent). With the transfer's per-piece
 * counting made incremental, 256 MiB N = 8 was even (36.6 against 36.4 s) but N = 16 still lost
 * (74.0 -> 96.6 s, the peers' CPU +36 %, spread over V8 and the kernel). 256 KiB only for blobs of at
 * most 64 MiB cost the peers 6-9 % more CPU at N = 8 and lost there (64 MiB 11.03 -> 11.55 s, 256 MiB
 * 33.2 -> 35.9 s), even at N = 16. bench/README.md has the figures.
 */
export const DEFAULT_PIECE_BYTES = 512 * 1024;
export const MAX_PIECES = 1000;
/** Blocks are what one wire request asks for (BEP 3 "request"). */
export const BLOCK_BYTES = 256 * 1024;

export interface Metainfo {
  readonly digest: Digest;
  readonly size: number;
  readonly pieceSize: number;
  readonly pieceCount: number;
  /** sha256 hex of each piece, `null` while the seed has not seen it yet. */
  readonly hashes: ReadonlyArray<string | null>;
}

export function pieceSizeFor(size: number, basePieceBytes = DEFAULT_PIECE_BYTES): number {
  if (!Number.isSafeInteger(size) || size < 0) throw new PollenError('ERR_INVALID_REQUEST', `invalid blob size ${size}`, { size });
  let piece = basePieceBytes;
  while (Math.ceil(size / piece) > MAX_PIECES) piece *= 2;
  return piece;
}

export function pieceCountFor(size: number, pieceSize: number): number {
  return Math.max(1, Math.ceil(size / pieceSize));
}

/** Byte offset and length of piece `index`. */
export function pieceRange(size: number, pieceSize: number, index: number): { start: number; length: number } {
  const start = index * pieceSize;
  return { start, length: Math.max(0, Math.min(pieceSize, size - start)) };
}

/** The layout of a blob of `size` bytes (hashes unknown). */
export function layoutFor(digest: Digest, size: number): Metainfo {
  const pieceSize = pieceSizeFor(size);
  const pieceCount = pieceCountFor(size, pieceSize);
  return { digest, size, pieceSize, pieceCount, hashes: new Array<string | null>(pieceCount).fill(null) };
}

/**
 * The piece hashes a sync answer carries: from `known` (what the peer has) on, and with `trim` not
 * past the last one known (the seed learns them in order, so the rest would be nulls: 5 bytes each
 * in every answer while the seed streams the blob).
 */
export function hashesAfter(hashes: ReadonlyArray<string | null>, known: number, trim: boolean): Array<string | null> {
  let end = hashes.length;
  if (trim) while (end > known && hashes[end - 1] == null) end--;
  return hashes.slice(known, end);
}

/** Bytes of a sha256 piece hash. */
const HASH_BYTES = 32;

/**
 * Piece hashes as one base64 string: 32 bytes each, all zero for one not known yet (no piece has
 * that sha256). 43 bytes a hash in a sync answer instead of 67 as quoted hex: every peer of a
 * fan-out gets every hash of the blob from the supernode, on the uplink the seed's pieces use.
 */
export function packHashes(hashes: ReadonlyArray<string | null>): string {
  const packed = Buffer.alloc(hashes.length * HASH_BYTES);
  hashes.forEach((h, i) => {
    if (h != null) packed.write(h, i * HASH_BYTES, HASH_BYTES, 'hex');
  });
  return packed.toString('base64');
}

/** The hashes of packHashes, or undefined unless `packed` is canonical base64 of at most `max` whole hashes. */
export function unpackHashes(packed: unknown, max: number): Array<string | null> | undefined {
  if (typeof packed !== 'string' || packed.length > Math.ceil((max * HASH_BYTES) / 3) * 4) return undefined;
  const bytes = Buffer.from(packed, 'base64');
  // Node's decoder skips what is not base64; only its own encoding of the bytes is taken.
  if (bytes.length % HASH_BYTES !== 0 || bytes.toString('base64') !== packed) return undefined;
  const hashes: Array<string | null> = [];
  for (let at = 0; at < bytes.length; at += HASH_BYTES) {
    const h = bytes.subarray(at, at + HASH_BYTES);
    hashes.push(h.every((b) => b === 0) ? null : h.toString('hex'));
  }
  return hashes;
}
