// One parent of a transfer: the wire connection, the pieces assigned to it with the blocks received
// so far, and a window of block requests in flight sized from the throughput measured on it (a
// fast parent gets more in flight, a slow one no more than it delivers in WINDOW_SECONDS).
import type { Clock } from '../../src/clock.ts';
import { BLOCK_BYTES } from '../../src/p2p/metainfo.ts';
import type { DuplicateCause } from './piece-ledger.ts';
import type { ParentConnection } from './transfer-seams.ts';

/**
 * Requests in flight to a parent before its throughput is known (and at least as many after). A
 * parent answers one child's requests in order, so a deep queue holds a fresh piece behind
 * everything asked before it: with 8 (2 MiB) and a parent sharing its link among 10 children, a
 * piece waited ~1.6 s per hop of the fan-out. Two blocks (512 KiB) still cover a slot's share of a
 * 100 Mbit/s link over a 50 ms round trip. bench sim, 64 MiB, free CPU: N = 100 1.56 -> 1.42 x T*,
 * N = 1,000 1.75 -> 1.67 x T* (median 8.9 -> 8.1 s); the bed (N = 8, 16) and bench:p2p unchanged
 * within their noise; 1 block was worse at N = 1,000 (1.84 x).
 */
export const MIN_WINDOW_BLOCKS = 2;
const MAX_WINDOW_BLOCKS = 64;
/** The window holds this much of a parent's measured throughput in flight. */
const WINDOW_SECONDS = 0.3;
/**
 * A piece is stalled when none of its blocks came for the stall time and its parent sent nothing
 * else meanwhile either; a parent that keeps delivering other blocks is slow, not gone (it answers
 * a child's requests in order, so the piece comes after them), and is dropped only once the piece
 * waited this many stall times. On the CPU-bound bed (256 MiB, N = 16) slow parents were dropped
 * as stalled 75-153 times a run: each drop a new TLS connection, a report against a working parent
 * and, while the pieces waited, seed pieces the supernode's link then carried twice (1.8-2.3 x S).
 */
export const SLOW_PARENT_STALL_FACTOR = 3;

export interface Assignment {
  readonly index: number;
  readonly length: number;
  readonly blocks: Array<Buffer | undefined>;
  nextOffset: number;
  received: number;
  lastBlockAt: number;
  /** Set when the assignment was taken back: blocks that still come count as wasted under this cause. */
  dropped?: DuplicateCause;
}

export class ParentLink {
  readonly peerId: string;
  readonly conn: ParentConnection;
  readonly assignments = new Map<number, Assignment>();
  /** Block requests sent and not answered yet. */
  outstanding = 0;
  /** Since when the parent has been choking us (Infinity while it is not). */
  chokedSince: number;
  /** Dropped for a stalled piece (its partial pieces count as stall duplicates). */
  stalled = false;
  /** Pieces this parent sent a proof of (transfer-proofs.ts: one each). */
  readonly proved = new Set<number>();
  /** It sent a piece we asked for without knowing its hash, and no proof with it: asked for known hashes only since. */
  withoutProofs = false;
  /** When the parent connected or was last given a piece, whichever came later. */
  lastAssignedAt: number;
  /** When the parent connected or last sent a block (of any piece), whichever came later. */
  lastBlockAt: number;
  /**
   * The transfer's pick epoch when this parent last had no piece to give us, or -1 once it
   * announced pieces since (ParentRequests.pump asks it again only then, or when the epoch moved).
   */
  emptyAt = -1;
  /** Pieces it announced that we lack (ParentPool keeps the count): we are interested (BEP 3) while there are any. */
  lacked = 0;
  /** What we last told it: interested or not (none said yet: not, as BEP 3 starts). */
  interested = false;
  private readonly clock: Clock;
  private bytesPerSecond = 0;

  constructor(peerId: string, conn: ParentConnection, clock: Clock) {
    this.peerId = peerId;
    this.conn = conn;
    this.clock = clock;
    this.chokedSince = this.lastAssignedAt = this.lastBlockAt = clock.now();
  }

  /** Whether `a`, assigned to this parent, is stalled at `now` (see SLOW_PARENT_STALL_FACTOR). */
  isStalled(a: Assignment, now: number, stallMs: number): boolean {
    const waited = now - a.lastBlockAt;
    return waited > stallMs && (now - this.lastBlockAt > stallMs || waited > SLOW_PARENT_STALL_FACTOR * stallMs);
  }

  /** Block requests to keep in flight. */
  get window(): number {
    return Math.min(MAX_WINDOW_BLOCKS, Math.max(MIN_WINDOW_BLOCKS, Math.ceil((this.bytesPerSecond * WINDOW_SECONDS) / BLOCK_BYTES)));
  }

  /** The assignment with blocks still to request, if any. */
  unfinished(): Assignment | undefined {
    for (const a of this.assignments.values()) if (a.nextOffset < a.length) return a;
    return undefined;
  }

  assign(index: number, length: number): Assignment {
    const a: Assignment = { index, length, blocks: new Array(Math.ceil(length / BLOCK_BYTES)), nextOffset: 0, received: 0, lastBlockAt: this.clock.now() };
    this.assignments.set(index, a);
    this.lastAssignedAt = a.lastBlockAt;
    return a;
  }

  /** A block of `bytes` arrived at `now`: folds it into the measured throughput. */
  sample(bytes: number, now: number): void {
    const dt = Math.max(1, now - this.lastBlockAt) / 1000;
    this.bytesPerSecond = 0.8 * this.bytesPerSecond + 0.2 * Math.min(bytes / dt, 4e9);
    this.lastBlockAt = now;
  }
}
