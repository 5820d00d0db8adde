// The image's blobs as the model names them (sizes, pieces) and when the seed has each piece: the
// seed streams every blob from the registry at once and in order (seed-stream.ts), and a piece is
// the seed's to send once its last byte has come.
import { createHash } from 'node:crypto';
import type { Digest } from '../../src/digest.ts';
import { pieceCountFor, pieceSizeForSwarm } from '../../src/p2p/metainfo.ts';
import { SLACK_BYTES, type SeedStream } from './seed-stream.ts';

/** One blob of the image as the model names it: its size and pieces (when the seed has them: SimBlob). */
export interface SimBlobShape {
  readonly digest: Digest;
  readonly bytes: number;
  readonly pieceBytes: number;
  readonly pieceCount: number;
}

/**
 * The blobs S is split into: shares of S, each at least 1 KiB as the bed's layers are; in the layout
 * the supernode gives a blob while `peers` are registered (pieceSizeForSwarm), unless `pieceBytes` names one.
 */
export function simBlobs(imageBytes: number, shares: readonly number[], pieceBytes: number | undefined, peers = 0): SimBlobShape[] {
  if (shares.length === 0 || !shares.every((x) => x > 0 && Number.isFinite(x))) throw new Error(`layer shares must be positive numbers, not ${shares.join(',')}`);
  const sizes = shares.map((share) => (share === 1 ? imageBytes : Math.max(1024, Math.floor(imageBytes * share))));
  return sizes.map((bytes, k) => {
    const piece = pieceBytes ?? pieceSizeForSwarm(bytes, peers);
    return { digest: `sha256:${createHash('sha256').update(`sim-${bytes}-${k}`).digest('hex')}` as Digest, bytes, pieceBytes: piece, pieceCount: pieceCountFor(bytes, piece) };
  });
}

/** The blobs with the seed's streams of them (seed-stream.ts): a piece is the seed's once its last byte came. */
export function seededBlobs(shapes: readonly SimBlobShape[], stream: SeedStream): SimBlob[] {
  return shapes.map((shape) => {
    const end = (i: number): number => Math.min((i + 1) * shape.pieceBytes, shape.bytes);
    return {
      ...shape,
      seedHas: (i: number) => stream.has(end(i)),
      // The prefix seedHas says the seed has (the same slack: a piece counted here is one it has).
      seedPieces: () => {
        const p = stream.progress() + SLACK_BYTES;
        return p >= shape.bytes ? shape.pieceCount : Math.min(shape.pieceCount, Math.floor(p / shape.pieceBytes));
      },
      whenSeedHasStart: (i: number, then: () => void) => stream.whenHas(i * shape.pieceBytes, then),
      whenSeedHas: (i: number, then: () => void) => stream.whenHas(end(i), then),
    };
  });
}

/** One blob every peer pulls (an image's layer), with the seed's stream of it. */
export interface SimBlob extends SimBlobShape {
  /** Piece i has arrived at the seed from the registry (the seed streams each blob once, in order: seed-stream.ts). */
  seedHas(i: number): boolean;
  /** The pieces the seed has now (a prefix). */
  seedPieces(): number;
  /** Runs `then` once piece i's first byte has arrived at the seed. */
  whenSeedHasStart(i: number, then: () => void): void;
  /** Runs `then` once piece i has arrived there whole. */
  whenSeedHas(i: number, then: () => void): void;
}
