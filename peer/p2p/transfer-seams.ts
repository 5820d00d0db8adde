// The seams of a P2pTransfer: what it needs from a parent connection, the dialler, the supernode
// client, the blob it fills and the peer's piece registry, each as the small interface the transfer
// uses. Production passes the real parts (WireDialer, SupernodeClient, PartialBlob, LocalPieces);
// the simulation (bench/sim) passes parts that move bytes over its network model on simulated
// time, so the model runs the peer's own transfer logic and not a copy of it.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../../src/clock.ts';
import type { Ingest } from '../../src/content-store.ts';
import type { Kv } from '../../src/db.ts';
import type { Digest } from '../../src/digest.ts';
import type { PartialBlob } from '../../src/partial-blob.ts';
import type { PieceProof } from '../../src/p2p/piece-proof.ts';
import type { ExpiringBans } from '../../src/p2p/wire-bans.ts';
import type { Throttle } from '../../src/rate/throttle.ts';
import type { fetchRangeFromUpstream } from '../mirror/upstream-ranges.ts';
import type { LocalPieces } from './local-pieces.ts';
import type { DuplicateCause } from './piece-ledger.ts';
import type { SupernodeClient } from './supernode-client.ts';
import type { ProofCheck } from './transfer-proofs.ts';

/** One wire connection to a parent, as the transfer uses it (WireConnection implements it). */
export interface ParentConnection {
  /** Settles once the handshakes are done (rejects if they fail). */
  readonly ready: Promise<void>;
  readonly isClosed: boolean;
  /** Set when one of our own listeners threw (the connection closed; no fault of the parent's). */
  readonly failure?: Error;
  readonly peerChoking: boolean;
  peerHas(index: number): boolean;
  /** The parent sends piece proofs ('proof', before a piece's first block): it may be asked for pieces whose hash is not known yet. */
  readonly speaksProofs?: boolean;
  /** One block; rejects when the connection closes or the request is cancelled. */
  request(index: number, offset: number, length: number): Promise<Buffer>;
  cancel(index: number, offset: number, length: number): void;
  /** BEP 3: we want pieces it holds (its uploader gives us a slot), or (false) no longer do. */
  interested(wants?: boolean): void;
  destroy(reason?: string): void;
  on(event: 'have', fn: (index: number) => void): unknown;
  on(event: 'bitfield' | 'choke' | 'unchoke', fn: () => void): unknown;
  on(event: 'close', fn: (reason: string) => void): unknown;
  on(event: 'proof', fn: (proof: PieceProof) => void): unknown;
  /** The parent's hash list (wire-extensions.ts HASHES_EXT), if the dial asked for it. */
  on(event: 'hashes', fn: (list: Buffer) => void): unknown;
  /** A block came for no waiting request (`cancelled`: one we cancelled after the parent sent it): its bytes are lost. */
  on(event: 'discarded', fn: (index: number, bytes: number, cancelled: boolean) => void): unknown;
}

export interface ParentDialer {
  /** A connection asking `wireAddr` for `digest` in the layout named `layout` (metainfo.ts namedLayout), and for its hash list if `wantHashes`; undefined when that address is banned. */
  dial(wireAddr: string, digest: Digest, layout: number | undefined, wantHashes?: boolean): ParentConnection | undefined;
}

export type TransferClient = Pick<SupernodeClient, 'sync' | 'createTask' | 'seedPiece'>;
export type BlobTarget = Pick<PartialBlob, 'writeAt' | 'setAvailable' | 'commit' | 'fail' | 'forgoDigest'>;
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

export interface TransferTimings {
  readonly syncMs: number;
  /** A piece with no block for this long is taken back and asked elsewhere. */
  readonly pieceStallMs: number;
  /** No bytes from any source for this long: fall back to the registry. */
  readonly noProgressMs: number;
  /** The supernode unreachable for this long: fall back to the registry. */
  readonly supernodeDeadMs: number;
  /**
   * The supernode's host refused every sync for this long (nothing listens there: it is down, not
   * slow) and no bytes came for as long: fall back to the registry. A refusal is certain where a
   * timeout is not, so this is short: a pull whose pieces all came from the seed waited
   * supernodeDeadMs (30 s) when the supernode stopped.
   */
  readonly supernodeRefusedMs: number;
}

// syncMs: the periodic sync (twice as often while a transfer holds less than a quarter, half as
// often once it holds that and its parent pool is full: syncInterval, QUIET_SYNC_FACTOR).
// 500 until the supernode's API was counted on its links and hashes became piece proofs; then a
// sync's fixed cost (~800 bytes of the supernode's links) was most of what it carried, and every
// second (every 500 ms early): bench sim, 64 MiB, 1,000 peers 8.6 -> 8.3 s (1.60 -> 1.54 x T*, the
// API 0.17 / 0.19 -> 0.11 / 0.12 x S), 3,000 peers 10.1 -> 9.7 s (1.87 -> 1.80; 2,000 ms: 1.87);
// the bed (N = 4, 8, 64 MiB) 7.20 / 9.11 s, within its runs' spread.
// Generous: on a starved machine a fallback that comes too early sends the registry every byte again.
// The fan-out bed (16 peers on 2 cores, every link full) lost syncs for over 15 s while P2P was
// still the best way forward: 31 fallbacks sent the registry 12 x S.
export const DEFAULT_TIMINGS: TransferTimings = { syncMs: 1_000, pieceStallMs: 8_000, noProgressMs: 30_000, supernodeDeadMs: 30_000, supernodeRefusedMs: 3_000 };

/** The transfer's tick (stall and progress checks, periodic sync) runs this often at most: see tickMs. */
export const TICK_MS = 250;
/**
 * Where in each TICK_MS this process's transfers tick: all at the same instants, so their periodic
 * syncs leave in one request (the supernode client sends the syncs of one turn together), at a
 * phase of the process's own so that a cluster's peers do not all sync in the same millisecond.
 */
export const PROCESS_TICK_PHASE_MS = Math.floor(Math.random() * TICK_MS);

/** The transfer's tick period: TICK_MS, or syncMs if that is shorter (a test's fast syncs). */
export function tickMs(timings: TransferTimings): number {
  return Math.min(TICK_MS, timings.syncMs);
}

export interface TransferCounters {
  peer: number;
  seed: number;
  upstream: number;
}

/** What the peer counts (Prometheus) as a transfer runs. */
export type TransferEvent = { kind: 'duplicate'; cause: DuplicateCause; bytes: number } | { kind: 'fallback' } | { kind: 'stall' } | { kind: 'starved-grant' };

/** Everything a transfer is given: the parties it talks to, time, and the peer's shared budgets. */
export interface TransferDeps {
  readonly client: TransferClient;
  readonly supernode: string;
  readonly pieces: PieceRegistry;
  readonly kv: PieceKv;
  readonly logger: Logger;
  /** Opens wire connections (TLS with the cluster key; skips banned addresses). */
  readonly dialer: ParentDialer;
  readonly peerId: string;
  readonly onBytes: (from: keyof TransferCounters, bytes: number) => void;
  readonly onBan: (peerId: string) => void;
  readonly onEvent?: (e: TransferEvent) => void;
  /** The peer's bans of parents that sent bad pieces, shared by its transfers (default: this transfer's own). */
  readonly parentBans?: ExpiringBans;
  /** The host's download budget for seed pieces (wire reads are paced by the dialer). */
  readonly downloads?: Throttle | undefined;
  /** Parents this transfer may have now (default MAX_PARENTS; the peer shares a host budget). */
  readonly maxParents?: () => number;
  /** Seed leases this transfer may hold now (default HOST_SEED_LEASES; the peer shares them: seedLeasesPerTransfer). */
  readonly seedLeases?: () => number;
  /** Children this host serves the blob to now (the uploader's connections for its digest; default: none counted, every lease asked). */
  readonly children?: () => number;
  /** Time (default the system clock). */
  readonly clock?: Clock;
  /** Checks piece proofs against the supernode's key (none: hashes come from syncs only, as from a supernode before proofs). */
  readonly proofs?: () => ProofCheck | undefined;
  /** The piece hash (default sha256; the simulation names pieces without hashing them). */
  readonly hashPiece?: PieceHasher;
  /** The registry range GET of the fallback (default fetchRangeFromUpstream). */
  readonly fetchUpstream?: UpstreamFetch;
  /** Ticks fall on times t with (t - tickPhaseMs) a multiple of the tick (default: this process's phase). */
  readonly tickPhaseMs?: number;
  /** Uniform in [0, 1) (default Math.random; the simulation's is seeded): ties of the piece picker. */
  readonly random?: () => number;
}
