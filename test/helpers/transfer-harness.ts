// In-memory parts for driving one P2pTransfer on a ManualClock: scripted parent connections (the
// test says when a parent is ready, unchokes, announces and delivers), a supernode client whose
// sync answers the test gives, an in-memory blob target. Every request a transfer makes is logged
// in one list, so a test can compare the decisions of two transfers.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { ManualClock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { BLOCK_BYTES } from '../../src/p2p/metainfo.ts';
import { ProofVerifier, type PieceProof, type PieceSigner } from '../../src/p2p/piece-proof.ts';
import type { ExpiringBans } from '../../src/p2p/wire-bans.ts';
import type { MetainfoBody, SyncRequest, SyncResponse, TaskAnswer } from '../../src/p2p/supernode-api.ts';
import { P2pTransfer } from '../../peer/p2p/p2p-transfer.ts';
import { DEFAULT_TIMINGS, type TransferDeps, type TransferTimings } from '../../peer/p2p/transfer-seams.ts';
import type { ProofCheck } from '../../peer/p2p/transfer-proofs.ts';
import type { SeedPieceAnswer } from '../../peer/p2p/supernode-answers.ts';
import type { ParentConnection, ParentDialer, TransferClient, UpstreamFetch } from '../../peer/p2p/transfer-seams.ts';

export const PIECE_BYTES = 2 * BLOCK_BYTES;

interface PendingBlock {
  index: number;
  offset: number;
  length: number;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

export class ScriptedParent extends EventEmitter implements ParentConnection {
  readonly ready: Promise<void>;
  isClosed = false;
  peerChoking = true;
  closeReason: string | undefined;
  /** Whether it sends piece proofs (set before it connects). */
  speaksProofs = false;
  readonly held = new Set<number>();
  readonly pending: PendingBlock[] = [];
  readonly cancelled: Array<[number, number]> = [];
  private open!: () => void;

  constructor(
    readonly peerId: string,
    private readonly blob: Buffer,
    private readonly log: string[],
    private readonly decisions: string[],
    private readonly pieceBytes = PIECE_BYTES,
  ) {
    super();
    this.ready = new Promise((r) => (this.open = r));
  }

  /** Handshakes done, with these pieces; unchoked at once unless told otherwise. */
  connect(pieces: Iterable<number>, unchoke = true): void {
    for (const i of pieces) this.held.add(i);
    this.emit('bitfield');
    if (unchoke) this.peerChoking = false;
    this.open();
    if (unchoke) this.emit('unchoke');
  }

  /** The handshakes finish with this bitfield (the parent still chokes). */
  handshake(pieces: Iterable<number>): void {
    for (const i of pieces) this.held.add(i);
    this.open();
    this.emit('bitfield');
  }

  unchokeNow(): void {
    this.peerChoking = false;
    this.emit('unchoke');
  }

  /** Answers the request for this block. */
  deliverBlock(index: number, offset: number): void {
    const k = this.pending.findIndex((r) => r.index === index && r.offset === offset);
    if (k < 0) throw new Error(`${this.peerId}: no request for ${index}/${offset}`);
    const r = this.pending.splice(k, 1)[0]!;
    const start = r.index * this.pieceBytes + r.offset;
    r.resolve(Buffer.from(this.blob.subarray(start, start + r.length)));
  }

  /** A piece proof, as the wire hands one over. */
  sendProof(proof: PieceProof): void {
    this.emit('proof', proof);
  }

  /** A hash list (wire-extensions.ts HASHES_EXT), as the wire hands one over. */
  sendHashes(list: Buffer): void {
    this.emit('hashes', list);
  }

  /** Whether the dial that opened it asked for the hash list. */
  askedForHashes = false;

  /** A have, passed on only for a piece not announced before (as bittorrent-protocol does). */
  announce(i: number): void {
    if (this.held.has(i)) return;
    this.held.add(i);
    this.emit('have', i);
  }

  peerHas(i: number): boolean {
    return this.held.has(i);
  }

  request(index: number, offset: number, length: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.isClosed) return reject(new Error('closed'));
      this.log.push(`${this.peerId}:${index}/${offset / BLOCK_BYTES}`);
      this.decisions.push(`${this.peerId}:${index}/${offset / BLOCK_BYTES}`);
      this.pending.push({ index, offset, length, resolve, reject });
    });
  }

  /** Answers up to `n` pending requests, oldest first (with a flipped first byte when `corrupt`). */
  deliver(n = Infinity, corrupt = false): number {
    let k = 0;
    while (k < n && this.pending.length > 0) {
      const r = this.pending.shift()!;
      const start = r.index * this.pieceBytes + r.offset;
      const block = Buffer.from(this.blob.subarray(start, start + r.length));
      if (corrupt) block[0] = block[0]! ^ 0xff;
      r.resolve(block);
      k++;
    }
    return k;
  }

  requestedPieces(): Set<number> {
    return new Set(this.pending.map((r) => r.index));
  }

  cancel(index: number, offset: number): void {
    const k = this.pending.findIndex((r) => r.index === index && r.offset === offset);
    if (k < 0) return;
    this.cancelled.push([index, offset]);
    this.pending.splice(k, 1)[0]!.reject(new Error('request was cancelled'));
  }

  /** What the transfer last told this parent (BEP 3): interested or not. */
  isInterested = false;

  interested(wants = true): void {
    this.isInterested = wants;
  }

  destroy(reason = 'closed'): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeReason = reason;
    for (const r of this.pending.splice(0)) r.reject(new Error('closed'));
    this.emit('close', reason);
  }
}

export class ScriptedSupernode implements TransferClient {
  readonly syncs: Array<{ body: SyncRequest; answer: (res: SyncResponse) => void; fail: (e: Error) => void }> = [];
  readonly seedAsked: number[] = [];
  /** Every sync body, in order. */
  readonly bodies: SyncRequest[] = [];
  /** Seed pieces asked and not answered yet (answered by `serveSeed`). */
  private readonly seedPending = new Map<number, (answer: SeedPieceAnswer) => void>();

  constructor(
    private readonly meta: MetainfoBody,
    private readonly blob: Buffer,
    private readonly decisions: string[],
  ) {}

  sync(_url: string, _digest: Digest, body: SyncRequest): Promise<SyncResponse> {
    this.bodies.push(body);
    return new Promise((answer, fail) => this.syncs.push({ body, answer, fail }));
  }

  /** Answers the oldest open sync with exactly this response. */
  answerWith(res: SyncResponse): void {
    const s = this.syncs.shift();
    if (!s) throw new Error('no sync waiting');
    s.answer(res);
  }

  /** Answers the oldest open sync (hashes all known). */
  answer(res: Partial<SyncResponse> = {}): SyncRequest {
    const s = this.syncs.shift();
    if (!s) throw new Error('no sync waiting');
    s.answer({ hashes: this.meta.hashes, parents: [], seedGrants: [], availability: [], ...res });
    return s.body;
  }

  createTask(): Promise<TaskAnswer> {
    return Promise.resolve(this.meta);
  }

  seedPiece(_url: string, _digest: Digest, index: number): Promise<SeedPieceAnswer> {
    this.seedAsked.push(index);
    this.decisions.push(`seed:${index}`);
    return new Promise((r) => this.seedPending.set(index, r));
  }

  /** Answers the seed piece asked for; `hash`: the sha256 the seed sends with it (none by default, as an older supernode), `signature` its proof's, `hashList` the blob's vouched list. */
  serveSeed(index: number, options: { hash?: string; signature?: Buffer; hashList?: string } = {}): void {
    const r = this.seedPending.get(index);
    if (!r) throw new Error(`seed piece ${index} not asked`);
    this.seedPending.delete(index);
    const pieceBytes = this.meta.pieceSize;
    r({ body: Readable.from([Buffer.from(this.blob.subarray(index * pieceBytes, (index + 1) * pieceBytes))]), pieceHash: () => options.hash, pieceSignature: () => options.signature, hashList: () => options.hashList });
  }
}

export interface Harness {
  readonly clock: ManualClock;
  readonly transfer: P2pTransfer;
  readonly supernode: ScriptedSupernode;
  readonly parents: Map<string, ScriptedParent>;
  /** Every block request, `peer:piece/block`, in the order the transfer made them. */
  readonly log: string[];
  /** `dial:<parent>`, `<parent>:<piece>/<block>`, `seed:<piece>`, in order (the simulation's trace uses the same). */
  readonly decisions: string[];
  readonly dialled: string[];
  readonly upstreamRanges: Array<{ start: number; end: number }>;
  /** The options of each commit of the blob (whether the transfer vouched for it). */
  readonly commits: Array<{ vouched?: boolean }>;
  /** Each time the transfer told its blob to stop hashing in order (forgoDigest). */
  readonly forgone: true[];
  readonly digest: Digest;
  /** The sha256 of each piece (whatever the transfer starts knowing). */
  readonly pieceHashes: readonly string[];
  /** Lets promise callbacks and `soon` work run (no clock time passes). */
  settle(): Promise<void>;
  /** Moves the clock `ms` forward, settling after each step of `stepMs`. */
  advance(ms: number, stepMs?: number): Promise<void>;
}

/** A transfer of a `pieces`-piece blob (PIECE_BYTES each), started; `parents` are dialled when offered. */
export interface HarnessOptions {
  pieces: number;
  parents: readonly string[];
  timings?: Partial<TransferTimings>;
  have?: readonly number[];
  /** Piece size (default PIECE_BYTES). */
  pieceBytes?: number;
  /** The clock's time when the transfer starts. */
  startAt?: number;
  /** The hashes the transfer starts with, and how it hashes pieces (default: sha256, all known). */
  hashes?: ReadonlyArray<string | null>;
  hashPiece?: (data: readonly Buffer[]) => string;
  /** The peer's shared bans of parents that sent bad pieces (default: the transfer's own). */
  parentBans?: ExpiringBans;
  /** The transfer's share of the host's parent budget (default: MAX_PARENTS). */
  maxParents?: () => number;
  /** The transfer's share of the host's seed leases (default: HOST_SEED_LEASES). */
  seedLeases?: () => number;
  /** Children the host serves the blob to (default: not counted). */
  children?: () => number;
  /** Where its ticks fall (default: the start, so it ticks every TICK_MS from there). */
  tickPhaseMs?: number;
  /** Where the verified bitfield is persisted (default: nowhere, at once). */
  kv?: TransferDeps['kv'];
  /** The first schedule, as it comes with the task's creation (default: none, the transfer syncs for it). */
  first?: SyncResponse;
  /** The supernode's piece key, whose public half the transfer checks proofs with (default: none). */
  signer?: PieceSigner;
  /** Checks proofs instead of a signer's key (the simulation's replay: every proof passes). */
  proofCheck?: ProofCheck;
  /** The parents send piece proofs (default: not). */
  parentsSpeakProofs?: boolean;
  /** The piece hashes the supernode vouched for with the task (TaskAnswer.hashList; default: none). */
  hashList?: string;
  /** The transfer's numbers, for its picker's ties (default: numbers that never move a tie off the lowest index). */
  random?: () => number;
}

export function harness(options: HarnessOptions): Harness {
  const pieceBytes = options.pieceBytes ?? PIECE_BYTES;
  const clock = new ManualClock(options.startAt ?? 1_000_000);
  const blob = Buffer.alloc(options.pieces * pieceBytes);
  for (let i = 0; i < blob.length; i += 4) blob.writeUInt32BE(i * 2654435761 >>> 0, i);
  const pieceHashes = Array.from({ length: options.pieces }, (_, i) => createHash('sha256').update(blob.subarray(i * pieceBytes, (i + 1) * pieceBytes)).digest('hex'));
  const hashes = options.hashes ?? pieceHashes;
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest;
  const meta: MetainfoBody = { digest, size: blob.length, pieceSize: pieceBytes, pieceCount: options.pieces, hashes };
  const log: string[] = [];
  const decisions: string[] = [];
  const dialled: string[] = [];
  const parents = new Map(options.parents.map((id) => [id, new ScriptedParent(id, blob, log, decisions, pieceBytes)]));
  for (const p of parents.values()) p.speaksProofs = options.parentsSpeakProofs ?? false;
  const dialer: ParentDialer = {
    dial: (wireAddr, _digest, _layout, wantHashes) => {
      dialled.push(wireAddr);
      decisions.push(`dial:${wireAddr}`);
      const parent = parents.get(wireAddr);
      if (parent) parent.askedForHashes = wantHashes === true;
      return parent;
    },
  };
  const supernode = new ScriptedSupernode(meta, blob, decisions);
  const upstreamRanges: Array<{ start: number; end: number }> = [];
  const commits: Array<{ vouched?: boolean }> = [];
  const forgone: true[] = [];
  const fetchUpstream: UpstreamFetch = async (_u, _d, range, _signal, onPiece, pieceSize) => {
    upstreamRanges.push(range);
    for (let off = range.start, k = 0; off <= range.end; off += pieceSize, k++) await onPiece(k, Buffer.from(blob.subarray(off, Math.min(range.end + 1, off + pieceSize))));
  };
  const target = Buffer.alloc(blob.length);
  const verifier: ProofCheck | undefined = options.proofCheck ?? (options.signer ? new ProofVerifier(options.signer.publicKey) : undefined);
  const deps: TransferDeps = {
    client: supernode,
    supernode: 'https://supernode.test',
    pieces: { addActive() {}, removeActive() {}, announce() {}, markCommitted() {} },
    kv: options.kv ?? { put: async () => {}, del: async () => {} },
    logger: pino({ level: 'silent' }),
    dialer,
    peerId: 'child',
    onBytes: () => {},
    onBan: () => {},
    clock,
    fetchUpstream,
    // Ticks every TICK_MS from the start, as a transfer started on the grid.
    tickPhaseMs: options.tickPhaseMs ?? options.startAt ?? 1_000_000,
    ...(options.hashPiece ? { hashPiece: options.hashPiece } : {}),
    ...(verifier ? { proofs: () => verifier } : {}),
    ...(options.maxParents ? { maxParents: options.maxParents } : {}),
    ...(options.seedLeases ? { seedLeases: options.seedLeases } : {}),
    ...(options.children ? { children: options.children } : {}),
    ...(options.parentBans ? { parentBans: options.parentBans } : {}),
    random: options.random ?? (() => 0.99),
  };
  const have = new Bitfield(options.pieces);
  for (const i of options.have ?? []) have.set(i);
  const partial = {
    writeAt: async (data: Uint8Array | readonly Uint8Array[], offset: number) => {
      let o = offset;
      for (const b of Array.isArray(data) ? data : [data as Uint8Array]) {
        target.set(b, o);
        o += b.length;
      }
    },
    setAvailable: () => {},
    forgoDigest: () => void forgone.push(true),
    commit: async (how: { vouched?: boolean } = {}) => {
      commits.push(how);
      if (!options.hashPiece && !target.equals(blob)) throw new Error('blob differs');
      return { digest, size: blob.length } as never;
    },
    fail: async () => {},
  };
  const transfer = new P2pTransfer(
    deps,
    { request: { digest, sizeHint: blob.length, upstream: { baseUrl: 'http://registry.test', name: 'x', authorization: undefined } }, meta, partial, ingest: { readAt: async () => 0 }, have, ...(options.first ? { first: options.first } : {}), ...(options.hashList !== undefined ? { hashList: options.hashList } : {}) },
    { ...DEFAULT_TIMINGS, ...options.timings },
  );
  const settle = async (): Promise<void> => {
    for (let k = 0; k < 8; k++) {
      clock.advance(0);
      await new Promise((r) => setImmediate(r));
    }
  };
  const advance = async (ms: number, stepMs = 50): Promise<void> => {
    for (let t = 0; t < ms; t += stepMs) {
      clock.advance(Math.min(stepMs, ms - t));
      await settle();
    }
  };
  transfer.start();
  return { clock, transfer, supernode, parents, log, decisions, dialled, upstreamRanges, commits, forgone, digest, pieceHashes, settle, advance };
}

/** Offers parents in the next sync answer and makes them ready with the pieces given. */
export async function offerParents(h: Harness, held: Record<string, Iterable<number>>, extra: Partial<SyncResponse> = {}): Promise<void> {
  await h.settle();
  h.supernode.answer({ parents: Object.keys(held).map((id) => ({ peerId: id, wireAddr: id })), ...extra });
  await h.settle();
  for (const [id, pieces] of Object.entries(held)) h.parents.get(id)!.connect(pieces);
  await h.settle();
}
