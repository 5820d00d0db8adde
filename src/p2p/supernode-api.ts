// The HTTP API between peers and the supernode: request and response bodies shared by both
// daemons (which never import each other). All bodies are JSON; bitfields are base64.
import type { Digest } from '../digest.ts';

export const CLUSTER_TOKEN_HEADER = 'x-pollen-cluster';

export const API = {
  register: '/api/v1/peers',
  heartbeat: (peerId: string) => `/api/v1/peers/${encodeURIComponent(peerId)}/heartbeat`,
  task: '/api/v1/tasks',
  sync: (digest: Digest) => `/api/v1/tasks/${digest}/sync`,
  // peer identity: from the authenticated request once api lands (then `peer` goes)
  seedPiece: (digest: Digest, index: number, peerId: string) => `/api/v1/seed/${digest}/pieces/${index}?peer=${encodeURIComponent(peerId)}`,
} as const;

export interface Holding {
  readonly digest: Digest;
  /** base64 bitfield of the pieces held. */
  readonly pieces: string;
}

export interface RegisterRequest {
  readonly peerId: string;
  /** HOST:PORT where the peer's wire listens. */
  readonly wireAddr: string;
  readonly uploadSlots: number;
  /** What the peer holds, so a restarted supernode rebuilds piece availability. */
  readonly holdings: readonly Holding[];
}

export interface RegisterResponse {
  readonly heartbeatMs: number;
}

export interface TaskRequest {
  readonly peerId: string;
  readonly digest: Digest;
  /** The blob's size as the peer saw it (manifest descriptor or its own HEAD): the registry must declare the same. */
  readonly sizeHint?: number;
  readonly upstream: TaskUpstream;
}

/**
 * Which registry object the task is, and who asks. The supernode reaches only the registries it is
 * configured with (`registry` is the host key of its --registry/--upstream list, never a URL), and
 * sends the registry nothing of the caller's but `authorization`: the client's own credential, with
 * which it checks that the client may read this blob before it gives out metainfo or pieces.
 */
export interface TaskUpstream {
  /** Registry host as clients name it, e.g. `registry.example` or `127.0.0.1:5000`. */
  readonly registry: string;
  /** Repository name (distribution grammar). */
  readonly name: string;
  /** The client's Authorization header value: `Basic …` or `Bearer …` only. */
  readonly authorization?: string;
}

export interface MetainfoBody {
  readonly digest: Digest;
  readonly size: number;
  readonly pieceSize: number;
  readonly pieceCount: number;
  readonly hashes: ReadonlyArray<string | null>;
}

export interface SyncRequest {
  readonly peerId: string;
  /** Pieces verified since the last sync. */
  readonly have: readonly number[];
  /** How many seed pieces the peer would fetch now. */
  readonly wantSeed: number;
  /** Parents that failed us (stalled, unreachable): they are offered less. */
  readonly badParents: readonly string[];
  /**
   * Parents that sent a piece that failed verification: offered less, and their pieces no longer
   * count as held, so the seed may serve those pieces. A slow parent still holds what it holds.
   */
  readonly corruptParents?: readonly string[];
  /**
   * Set when no piece has arrived for a while although some are missing: the seed may then serve
   * pieces that peers hold (they are not delivering them to this peer).
   */
  readonly starved?: boolean;
  /** How many piece hashes, from the first, the peer already knows: the answer sends only the rest. */
  readonly knownHashes?: number;
  /** Set when the peer gives up the task (done or fallen back). */
  readonly leave?: boolean;
}

export interface ParentInfo {
  readonly peerId: string;
  readonly wireAddr: string;
}

export interface SyncResponse {
  /** Piece hashes from index `hashesFrom` on (0 when absent), `null` where the seed has none yet. */
  readonly hashes: ReadonlyArray<string | null>;
  readonly hashesFrom?: number;
  readonly parents: readonly ParentInfo[];
  /** Pieces this peer may fetch from the seed (no peer holds them, nobody else is fetching them). */
  readonly seedGrants: readonly number[];
  /** How many peers hold each piece (rarest-first guidance). */
  readonly availability: readonly number[];
  /** The seed failed (e.g. digest mismatch): the peer must fall back. */
  readonly failed?: string;
}

export interface ApiErrorBody {
  readonly code: string;
  readonly message: string;
}
