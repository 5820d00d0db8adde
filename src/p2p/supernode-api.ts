// The HTTP API between peers and the supernode: request and response bodies shared by both
// daemons (which never import each other). All bodies are JSON; bitfields are base64.
// Trust: with a cluster secret the API is TLS 1.3 with a key derived from it (src/cluster-tls.ts),
// so only members connect. Registration (POST /peers) needs only that; it returns a token of this
// peer alone, and every other call names its peer by presenting that token
// (`Authorization: Bearer TOKEN`): the supernode takes the peer id from the token, never from a
// body or a path. Errors are OCI error bodies (src/oci/error-body.ts) with `detail.pollenCode`.
import type { Digest } from '../digest.ts';
import { ERROR_CODES, PollenError, type ErrorCode } from '../errors.ts';

export const API = {
  register: '/api/v1/peers',
  /** The calling peer (named by its token) is alive. */
  heartbeat: '/api/v1/peers/self/heartbeat',
  task: '/api/v1/tasks',
  sync: (digest: Digest) => `/api/v1/tasks/${digest}/sync`,
  /** Several tasks' syncs in one request (what the peer sends: its transfers sync on the same ticks). */
  syncs: '/api/v1/syncs',
  /** The calling peer no longer holds this blob (evicted from its store): it stops being a parent of it. */
  drop: (digest: Digest) => `/api/v1/tasks/${digest}/drop`,
  seedPiece: (digest: Digest, index: number) => `/api/v1/seed/${digest}/pieces/${index}`,
} as const;

/**
 * The sha256 (hex) of a seed piece, sent with the piece: in the head when the seed had the whole
 * piece, else as a trailer once the registry's bytes came through (the body is chunked then). The
 * peer verifies the piece against it at once instead of syncing for the hash first: a third of the
 * seed's pieces on the 8-host bed, each a round trip through the supernode's full uplink (p90 142 ms).
 */
export const PIECE_HASH_HEADER = 'x-pollen-piece-sha256';
/** The supernode's signature of the piece's hash (base64; see src/p2p/piece-proof.ts), beside PIECE_HASH_HEADER. */
export const PIECE_SIGNATURE_HEADER = 'x-pollen-piece-signature';
/** With a seed piece once the seed holds the blob verified: TaskAnswer.hashList, learnt with the next piece, not at half the blob (transfer-vouch.ts). */
export const PIECE_HASH_LIST_HEADER = 'x-pollen-hash-list';
/** The seed piece's length when its body is chunked (no content-length): what the supernode's metrics count. */
export const PIECE_LENGTH_HEADER = 'x-pollen-piece-length';

export interface Holding {
  readonly digest: Digest;
  /** base64 bitfield of the pieces held. */
  readonly pieces: string;
  /**
   * The layout of `pieces` (metainfo.ts holdingBits): a download's piece size; absent, the size's
   * default layout, in which a peer reports a blob it holds whole.
   */
  readonly pieceSize?: number;
}

/** Bounds of the request bodies (the supernode's schemas refuse more). */
export const API_LIMITS = {
  peerIdChars: 128,
  holdings: 5_000,
  reportedParents: 64,
  wantSeed: 64,
  declinedGrants: 64,
  uploadSlots: 10_000,
  syncsPerBatch: 64,
} as const;

/**
 * The longest wait between syncs a sync's answer asks for (`syncMs`: the supernode's pacing of a
 * large swarm, supernode/p2p/sync-pacer.ts). The peer holds to it too, so no answer silences a
 * peer for longer; well within the peer's 30 s "supernode unreachable" limit.
 */
export const MAX_SYNC_PACE_MS = 4_000;

/**
 * A paced peer's heartbeats (and the reports its syncs carry instead) go every this many of its
 * sync waits: what the supernode asks in a heartbeat's `busyHeartbeatMs`, and what a peer that
 * only syncs reads from its answers' `syncMs`, so that at 10,000 peers the reports stay a
 * fraction of the syncs (supernode/p2p/sync-pacer.ts).
 */
export const HEARTBEATS_PER_SYNC_WAIT = 4;

/** Peer ids: letters, digits, `-` and `_` (the agent uses 40 hex digits). */
export const PEER_ID_PATTERN = '^[A-Za-z0-9_-]{1,128}$';

export interface RegisterRequest {
  /** The id the peer chose (random); a live peer's id is registered again only with its token. */
  readonly peerId: string;
  /** HOST:PORT where the peer's wire listens. */
  readonly wireAddr: string;
  readonly uploadSlots: number;
  /** What the peer holds, so a restarted supernode rebuilds piece availability. */
  readonly holdings: readonly Holding[];
}

/**
 * What a peer tells the supernode with each heartbeat, for the status page: all optional, so
 * either side may be older. Byte counts are running totals since the peer started.
 */
export interface HeartbeatBody {
  readonly version?: string;
  readonly storeBytes?: number;
  readonly storeQuotaBytes?: number;
  readonly uploadedBytes?: number;
  readonly downloadedBytes?: number;
}

export interface HeartbeatResponse {
  readonly ok: true;
  /**
   * How often a peer moving bytes should heart-beat now, in ms (a large swarm's pacing,
   * supernode/p2p/sync-pacer.ts); absent: every second.
   */
  readonly busyHeartbeatMs?: number;
}

export interface RegisterResponse {
  readonly peerId: string;
  /** This peer's credential for every later call (Authorization: Bearer TOKEN). */
  readonly token: string;
  readonly heartbeatMs: number;
  /**
   * The supernode's piece key (Ed25519, the raw 32 bytes as base64url): the seed signs each piece's
   * hash with it, and a peer takes a hash from another peer only with a signature this key checks
   * (src/p2p/piece-proof.ts). Absent from a supernode before piece proofs.
   */
  readonly pieceKey?: string;
  /**
   * Fields of a sync this supernode reads that one from before would drop (its schemas drop
   * unknown fields): a peer sends them only when named here (SYNC_FIELDS).
   */
  readonly syncFields?: readonly string[];
  /**
   * Calls the supernode's sync channel takes besides batches of syncs (CHANNEL_CALLS): a peer makes
   * them over HTTP with a supernode that names none.
   */
  readonly channelCalls?: readonly string[];
}

/**
 * What a supernode of this version names in its registrations' `syncFields`: `havePacked`
 * (SyncRequest), `task`, batch items named by their task's short name (SyncBatchItem), and
 * `reportChanges`, a report (HeartbeatBody, with a batch, a creation or a heartbeat) that carries
 * only the fields that changed since the last one it took: it keeps the others.
 */
export const SYNC_FIELDS = ['havePacked', 'task', 'reportChanges'] as const;

/**
 * What a supernode of this version names in its registrations' `channelCalls`: `task`, a task's
 * creation as a frame of the sync channel (src/p2p/sync-channel-frames.ts); `seed`, the seed's
 * pieces on a seed channel (src/p2p/seed-channel-frames.ts).
 */
export const CHANNEL_CALLS = ['task', 'seed'] as const;

export interface TaskRequest {
  /** Filled in by the supernode from the caller's token (a peer need not send it; it is ignored). */
  readonly peerId: string;
  readonly digest: Digest;
  /** The blob's size as the peer saw it (manifest descriptor or its own HEAD): the registry must declare the same. */
  readonly sizeHint?: number;
  readonly upstream: TaskUpstream;
  /**
   * The layout a peer downloads the blob in, when it creates the task again mid-transfer (the
   * supernode restarted or evicted the blob): a seed that begins the blob afresh keeps it.
   */
  readonly pieceSize?: number;
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

/**
 * What a peer sends to create a task: its id comes from its token. With `first`, the answer carries
 * the transfer's first schedule too (TaskAnswer), as Dragonfly's peer-task registration does: one
 * request and one round trip less per blob and peer than a creation followed by a sync.
 */
export type TaskBody = Omit<TaskRequest, 'peerId'> & {
  readonly peerId?: string;
  readonly first?: FirstSyncRequest;
  /** With `first`: what a heartbeat would report, as a sync batch carries it (the creation then counts as the peer's heartbeat). */
  readonly report?: HeartbeatBody;
  /**
   * The answer's hashes go trimmed of the unknown tail and packed (`hashesPacked`), and `first`
   * terse (src/p2p/sync-answer.ts taskAnswer); the client puts the list back (readTaskAnswer). A
   * supernode from before it drops the field (its schemas drop unknown fields) and answers whole.
   */
  readonly terse?: boolean;
  /**
   * The answer's metainfo carries no hashes (every piece's is null): the peer reads piece proofs,
   * which bring each piece's hash with the piece, and resumes nothing. A late joiner at thousands
   * of peers got every hash the seed knew, 43 bytes a piece on the supernode's uplink at the
   * pull's busiest moment; when a parent without proofs needs them, its syncs ask.
   */
  readonly withoutHashes?: boolean;
  /** With `terse`: the first schedule's parents go packed, as a sync's (SyncRequest.packParents). */
  readonly packParents?: boolean;
};

/** The first sync of a transfer that has nothing yet: only how many seed pieces it would fetch now. */
export interface FirstSyncRequest {
  readonly wantSeed: number;
}

/** The task's metainfo and, when the creation asked for it (`first`), the answer its first sync would have had. */
export interface TaskAnswer extends MetainfoBody {
  /**
   * Once the seed holds the blob whole and verified against its digest: pieceHashList of its
   * piece hashes (src/p2p/metainfo.ts). A peer that checked every piece against exactly those
   * commits without hashing the blob again; a peer from before ignores it.
   */
  readonly hashList?: string;
  /** The hashes packed, when the creation asked `terse` (then `hashes` is empty). */
  readonly hashesPacked?: string;
  readonly first?: SyncResponse;
  /** The creation counted as the peer's heartbeat (it carried `first` and `report`). */
  readonly reported?: true;
}

export interface SyncRequest {
  /** Ignored: the supernode takes the peer from the token. */
  readonly peerId?: string;
  /** Pieces verified since the last sync. */
  readonly have: readonly number[];
  /**
   * More of them, as a bitfield (src/p2p/sync-answer.ts packIndexes): sent, when shorter than the
   * list, only to a supernode whose registration names it in `syncFields` (one from before would
   * drop it, and the haves with it).
   */
  readonly havePacked?: string;
  /** How many seed pieces the peer would fetch now. */
  readonly wantSeed: number;
  /**
   * The transfer has no vouched hash list yet (TaskAnswer.hashList): the answer carries it once the
   * seed holds the blob verified. A supernode from before drops the field and answers as before.
   */
  readonly wantHashList?: boolean;
  /**
   * Parents that failed us (stalled, unreachable): they are offered less. Only parents the
   * supernode offered this peer for this task count, each offer at most once.
   */
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
  /**
   * Seed grants the peer declined since its last sync (a live parent had the piece in flight): the
   * supernode drops those leases and grants other pieces, if any, in this answer.
   */
  readonly declined?: readonly number[];
  /**
   * Parents the transfer would dial from this answer now (free room in its pool, and parents it
   * would let go for fresh ones): the answer offers no more. Absent: as many as the supernode offers.
   * A supernode from before it drops it (its schemas drop unknown fields) and offers as before.
   */
  readonly wantParents?: number;
  /** How many piece hashes, from the first, the peer already knows: the answer sends only the rest. */
  readonly knownHashes?: number;
  /**
   * The answer's hashes may end at the last one the seed knows (what would follow are nulls): a
   * peer that sets it reads a shorter list so. Peers now ask `terse`, which implies it; the field
   * stays for the peers that asked it alone.
   */
  readonly trimHashes?: boolean;
  /**
   * The answer carries its hashes packed (`hashesPacked`, src/p2p/metainfo.ts packHashes) and
   * `hashes` empty; the peer's client unpacks them. Implied by `terse`, as trimHashes is.
   */
  readonly packHashes?: boolean;
  /**
   * The answer leaves out its empty fields, and a batch item its digest, and packs its holder
   * counts a byte a piece, and its hashes trimmed and packed (src/p2p/sync-answer.ts). A
   * supernode from before it drops the field and answers whole; one that refuses it, the client
   * asks again without (peer/p2p/supernode-client.ts).
   */
  readonly terse?: boolean;
  /**
   * With `terse`: the answer's parents go packed (`parentsPacked`, src/p2p/sync-answer.ts
   * packParents) when each is an agent's id and an IPv4 address. A supernode from before drops the
   * field and sends the list.
   */
  readonly packParents?: boolean;
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
  /** The same hashes packed, when the sync asked `packHashes` (then `hashes` is empty). */
  readonly hashesPacked?: string;
  readonly parents: readonly ParentInfo[];
  /** Pieces this peer may fetch from the seed (no peer holds them, nobody else is fetching them). */
  readonly seedGrants: readonly number[];
  /**
   * How many peers hold each piece (rarest-first guidance). Sent at most once a second per peer
   * and task (supernode/p2p/scheduler-options.ts); empty between: the last one stands.
   */
  readonly availability: readonly number[];
  /** The seed failed (e.g. digest mismatch): the peer must fall back. */
  readonly failed?: string;
  /** Asked with `wantHashList`, once the seed holds the blob verified: TaskAnswer.hashList. */
  readonly hashList?: string;
  /**
   * Wait this many ms after this sync before the next routine one (the supernode paces a large
   * swarm's syncs: supernode/p2p/sync-pacer.ts); absent or 0: the peer's own timing.
   */
  readonly syncMs?: number;
}

/**
 * One task's sync in a batch: its SyncRequest (whose empty lists, false flags and, named by `task`,
 * zero `wantSeed` may be left out: the supernode reads them absent as empty), and its task, by
 * `digest` or, to a supernode whose registration names `task` in `syncFields`, by `task`: the first
 * TASK_NAME_HEX hex digits of the digest, looked up among the tasks of the calling peer only (so it
 * reaches nothing the digest would not). An item named so asks the answer options every such peer
 * asks (`terse`, `packParents`) without sending them. At 10,000 simulated peers the digest and the
 * options were 115 of a sync's ~200 bytes, on the supernode host's downlink beside the seed's
 * stream from the registry (bench/README.md).
 */
export type SyncBatchItem = Omit<SyncRequest, 'have' | 'wantSeed' | 'badParents'> &
  Partial<Pick<SyncRequest, 'have' | 'wantSeed' | 'badParents'>> &
  ({ readonly digest: Digest; readonly task?: undefined } | { readonly task: string; readonly digest?: undefined });

export interface SyncBatchRequest {
  readonly syncs: readonly SyncBatchItem[];
  /**
   * What a heartbeat would report (its body). A batch that carries it counts as the peer's
   * heartbeat, so a peer that syncs need not also heart-beat (supernode/p2p/tracker.ts).
   */
  readonly report?: HeartbeatBody;
}

/**
 * A batch item's answer, in the order asked: the task's SyncResponse, or the status and OCI error
 * body it would have answered alone; with its digest unless the item asked `terse`.
 */
export type SyncBatchAnswer = { readonly digest?: Digest; readonly answer: SyncResponse | Partial<SyncResponse> } | { readonly digest?: Digest; readonly status: number; readonly error: unknown };

export interface SyncBatchResponse {
  readonly syncs: readonly SyncBatchAnswer[];
  /** The batch counted as the peer's heartbeat (a supernode that predates `report` leaves it out). */
  readonly reported?: true;
}

/** The OCI error body the supernode answers with (src/oci/error-body.ts). */
export interface ApiErrorBody {
  readonly errors: ReadonlyArray<{ readonly code: string; readonly message: string; readonly detail?: { readonly pollenCode?: string } }>;
}

/** The PollenError an API error answer stands for: its `detail.pollenCode` (when known) and message. */
export function apiErrorOf(status: number, text: string, fallback: ErrorCode, where: Record<string, unknown>): PollenError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    // not an error body: keep the generic error
  }
  return apiErrorFrom(status, body, fallback, where);
}

/** As apiErrorOf, from an error body already parsed (a batch answer's item). */
export function apiErrorFrom(status: number, body: unknown, fallback: ErrorCode, where: Record<string, unknown>): PollenError {
  let code: ErrorCode = fallback;
  let message = `answered ${status}`;
  const first = body && typeof body === 'object' ? (body as Partial<ApiErrorBody>).errors?.[0] : undefined;
  const pollenCode = first?.detail?.pollenCode;
  if (status < 500 && typeof pollenCode === 'string' && pollenCode in ERROR_CODES) code = pollenCode as ErrorCode;
  if (typeof first?.message === 'string') message = first.message.slice(0, 500);
  // A refusal's wait (429: the peer's allowance of calls), whole seconds, kept when sane.
  const retryAfter = (first?.detail as { retryAfter?: unknown } | undefined)?.retryAfter;
  const wait = status === 429 && typeof retryAfter === 'number' && Number.isSafeInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 3600 ? { retryAfter } : {};
  return new PollenError(code, message, { ...where, status, ...wait });
}
