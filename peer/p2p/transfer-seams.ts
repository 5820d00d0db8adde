// The seams of a P2pTransfer: what it needs from a parent connection, the dialler, the supernode
// client, the blob it fills and the peer's piece registry, each as the small interface the transfer
// uses. Production passes the real parts (WireDialer, SupernodeClient, PartialBlob, LocalPieces);
// the simulation (bench/sim) passes parts that move bytes over its network model on simulated
// time, so the model runs the peer's own transfer logic and not a copy of it.
import { createHash } from 'node:crypto';
import type { Ingest } from '../../src/content-store.ts';
import type { Kv } from '../../src/db.ts';
import type { Digest } from '../../src/digest.ts';
import type { PartialBlob } from '../../src/partial-blob.ts';
import type { fetchRangeFromUpstream } from '../mirror/upstream-ranges.ts';
import type { LocalPieces } from './local-pieces.ts';
import type { SupernodeClient } from './supernode-client.ts';

/** One wire connection to a parent, as the transfer uses it (WireConnection implements it). */
export interface ParentConnection {
  /** Settles once the handshakes are done (rejects if they fail). */
  readonly ready: Promise<void>;
  readonly isClosed: boolean;
  readonly peerChoking: boolean;
  peerHas(index: number): boolean;
  /** One block; rejects when the connection closes or the request is cancelled. */
  request(index: number, offset: number, length: number): Promise<Buffer>;
  cancel(index: number, offset: number, length: number): void;
  interested(): void;
  destroy(reason?: string): void;
  on(event: 'have', fn: (index: number) => void): unknown;
  on(event: 'bitfield' | 'choke' | 'unchoke', fn: () => void): unknown;
  on(event: 'close', fn: (reason: string) => void): unknown;
}

export interface ParentDialer {
  /** A connection asking `wireAddr` for `digest`; undefined when that address is banned. */
  dial(wireAddr: string, digest: Digest): ParentConnection | undefined;
}

export type TransferClient = Pick<SupernodeClient, 'sync' | 'createTask' | 'seedPiece'>;
export type BlobTarget = Pick<PartialBlob, 'writeAt' | 'setAvailable' | 'commit' | 'fail'>;
export type PieceRegistry = Pick<LocalPieces, 'addActive' | 'removeActive' | 'announce' | 'markCommitted'>;
export type BlobReader = Pick<Ingest, 'readAt'>;
export type UpstreamFetch = typeof fetchRangeFromUpstream;

export interface PersistedPieces {
  readonly size: number;
  readonly pieceSize: number;
  readonly pieces: string;
}

export type PieceKv = Pick<Kv<PersistedPieces>, 'put' | 'del'>;

/** The hash a piece is checked against (hex sha256 of its bytes). */
export type PieceHasher = (data: readonly Buffer[]) => string;

export const sha256Piece: PieceHasher = (data) => {
  const hash = createHash('sha256');
  for (const b of data) hash.update(b);
  return hash.digest('hex');
};
