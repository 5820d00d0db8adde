// Pieces of a blob: the supernode fixes a blob's layout when it first seeds it (layoutFor: 512 KiB
// pieces, or 128 KiB when the cluster is large, see SMALL_PIECES_FROM_PEERS; doubled until a blob
// has at most MAX_PIECES pieces; a small blob is one piece) and every peer takes it from the task's
// metainfo. A peer holding a whole blob serves it in whichever layout a child names on the wire.
// Metainfo adds the sha256 of each piece.
// Small, not Dragonfly's 4 MiB: a peer passes a piece on only once it has all of it and checked
// its hash, so each hop of a fan-out costs a piece time (42 ms at 100 Mbit/s instead of 336 ms);
// simulated, 100 peers at 100 Mbit/s pulling 256 MiB finished 1.6 x T* with 4 MiB pieces and
// 1.2 x T* (median) with 1 MiB (bench/sim, see bench/README.md). Every peer and supernode of a
// cluster must run the same layout (a version that changes it is a whole-cluster upgrade).
import { createHash } from 'node:crypto';
import { isSha256Hex, type Digest } from '../digest.ts';
import { Bitfield } from './bitfield.ts';
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
/**
 * The layout for a large cluster: a deep swarm passes each piece through more hops, and a hop costs
 * a piece time. Simulated 64 MiB at 100 Mbit/s with the peer's own transfer code (2026-12-04), 256
 * KiB against 512: 100 peers 7.75 -> 7.21 s, 300 peers 7.87 -> 7.06, 1,000 peers 8.19 -> 7.36 (1.52
 * -> 1.37 x T*); 16 and 32 peers no faster (the median peer is, the last one is not), 64 about even.
 * On the bed (8 and 16 peers on 2 cores) even in time and CPU. 128 KiB against 256 (2026-12-05, with
 * periodic syncs kept to the nearest tick, peer/p2p/transfer-sync.ts): 1,000 peers (seeds 1 / 2)
 * 7.33 / 7.19 -> 7.04 / 7.01 s (1.31 x T*), the median 7.09 / 7.06 -> 6.67 / 6.66; without that
 * sync rule 128 KiB left a tail (7.86 / 7.77 s). 10,000 peers (seed 1) 8.37 -> 8.04 s (1.56 ->
 * 1.50 x T*), the median 8.16 -> 7.81, the supernode 0.96 of a core at its peak. A piece costs a
 * peer CPU whatever its size (a have, a proof, a persisted bitfield, a sync's share: ~1.5 ms a
 * piece on the 2-core bed), so below SMALL_PIECES_FROM_PEERS live peers the supernode keeps
 * DEFAULT_PIECE_BYTES, as cheap per byte and fewer pieces to track. Every peer and supernode of a
 * cluster must agree on the small layout too: a peer refuses a layout it does not know (isLayout),
 * so this change is a whole-cluster upgrade.
 */
export const SMALL_PIECE_BYTES = 128 * 1024;
export const SMALL_PIECES_FROM_PEERS = 64;
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

/**
 * The small layout of a blob of `size` bytes, if it differs from the default one: a blob of at most
 * SMALL_PIECE_BYTES, or one so large that both double to the same size, has one layout only (so two
 * layouts of a blob never have the same piece count).
 */
function smallPieceSize(size: number): number | undefined {
  const small = pieceSizeFor(size, SMALL_PIECE_BYTES);
  return pieceCountFor(size, small) === pieceCountFor(size, pieceSizeFor(size)) ? undefined : small;
}

/** The piece size the supernode gives a new blob while `livePeers` peers are registered. */
export function pieceSizeForSwarm(size: number, livePeers: number, fromPeers = SMALL_PIECES_FROM_PEERS): number {
  return (livePeers >= fromPeers ? smallPieceSize(size) : undefined) ?? pieceSizeFor(size);
}

/** Whether `pieceSize` is a layout a supernode may give a blob of `size` bytes (the default or the small one). */
export function isLayout(size: number, pieceSize: number): boolean {
  return Number.isSafeInteger(size) && size >= 0 && (pieceSize === pieceSizeFor(size) || pieceSize === smallPieceSize(size));
}

/**
 * How a layout is named where it must be: nothing for the size's default layout (as before layouts
 * could differ, so older peers and saved proofs agree), else the piece size. A piece proof signs it
 * (a proof of one layout never checks in the other: the same index covers other bytes there), and
 * a child names it in the wire's handshake (a parent that does not serve it refuses the connection).
 */
export function namedLayout(size: number, pieceSize: number): number | undefined {
  return pieceSize === pieceSizeFor(size) ? undefined : pieceSize;
}

/** The layout of a blob of `size` bytes (hashes unknown): the default one unless `pieceSize` names another. */
export function layoutFor(digest: Digest, size: number, pieceSize = pieceSizeFor(size)): Metainfo {
  const pieceCount = pieceCountFor(size, pieceSize);
  return { digest, size, pieceSize, pieceCount, hashes: new Array<string | null>(pieceCount).fill(null) };
}

/**
 * A holding a peer reported, in the blob's layout `meta`: the pieces as sent when the holding is in
 * that layout (its `pieceSize`, or the size's default one when it names none); every piece when it
 * is whole in the other layout (a peer holding a blob whole serves it in any); else nothing (part
 * of a download in the other layout: its indexes mean other bytes here).
 */
export function holdingBits(meta: { size: number; pieceSize: number; pieceCount: number }, holding: { pieces: string; pieceSize?: number }): Bitfield {
  const bytes = Buffer.from(holding.pieces, 'base64');
  const layout = holding.pieceSize ?? pieceSizeFor(meta.size);
  if (layout === meta.pieceSize) return bytes.length === Math.ceil(meta.pieceCount / 8) ? new Bitfield(meta.pieceCount, bytes) : new Bitfield(meta.pieceCount);
  if (!isLayout(meta.size, layout)) return new Bitfield(meta.pieceCount);
  const whole = Bitfield.full(pieceCountFor(meta.size, layout)).bytes;
  return Buffer.compare(bytes, whole) === 0 ? Bitfield.full(meta.pieceCount) : new Bitfield(meta.pieceCount);
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

const HASH_LIST_CONTEXT = 'pollen piece hash list v1\n';

/**
 * The sha256 (hex) of a blob's piece hashes in order, bound to its digest and layout; undefined
 * while one is unknown (or not a sha256). The supernode's task and sync answers carry it (`hashList`) once
 * its seed holds the blob verified against the digest: a peer that checked every piece it wrote
 * against exactly those hashes has the bytes the seed verified, and commits without hashing the
 * whole blob again (peer/p2p/p2p-transfer.ts, Ingest.forgoDigest).
 */
export function pieceHashList(meta: { readonly digest: Digest; readonly pieceSize: number; readonly hashes: ReadonlyArray<string | null | undefined> }): string | undefined {
  const list = createHash('sha256').update(`${HASH_LIST_CONTEXT}${meta.digest}\n${meta.pieceSize}\n`, 'latin1');
  for (const h of meta.hashes) {
    if (!isSha256Hex(h)) return undefined;
    list.update(Buffer.from(h, 'hex'));
  }
  return list.digest('hex');
}
