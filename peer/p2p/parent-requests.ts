// What a transfer asks of its parents over the wire: each unchoked parent is kept busy up to its
// window of blocks with the piece the picker chooses for it (piece-picker.ts), a piece that came
// whole is checked against its hash and handed to the transfer's one store path, and a parent that
// sent a bad one is banned. Requests taken back (a parent gone, a copy that is no longer needed)
// count their bytes as duplicates by cause. The transfer (p2p-transfer.ts) owns the sources and the
// phase; this part owns only the requests to parents.
import type { Logger } from 'pino';
import type { Clock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { BLOCK_BYTES, pieceRange } from '../../src/p2p/metainfo.ts';
import type { MetainfoBody } from '../../src/p2p/supernode-api.ts';
import { releaseBlock } from '../../src/p2p/wire-blocks.ts';
import type { Assignment, ParentLink } from './parent-link.ts';
import { USELESS_PATIENCE_MS, type ParentPool } from './parent-pool.ts';
import type { DuplicateCause, PieceLedger } from './piece-ledger.ts';
import { ENDGAME_LAG_MS, pickPiece } from './piece-picker.ts';
import type { TransferPhase } from './transfer-state.ts';
import { hashKnown } from './transfer-sync.ts';

/** What the requests to parents need of their transfer. */
export interface ParentRequestsPort {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly digest: Digest;
  readonly ledger: PieceLedger;
  readonly pool: ParentPool;
  /** Breaks ties between equally rare pieces (piece-picker.ts). */
  readonly random: () => number;
  meta(): MetainfoBody;
  phase(): TransferPhase;
  /** Holders of each piece the supernode reported with its last answer. */
  availability(): readonly number[];
  /** Piece hashes learned so far (with the ledger's `freed`, the pick epoch: see pump). */
  hashUpdates(): number;
  verify(index: number, data: readonly Buffer[]): boolean;
  /** Whether `parent` may be asked for a piece whose hash is not known yet (it sends proofs: transfer-proofs.ts). */
  vouches(parent: ParentLink): boolean;
  /** Stores a verified piece; `written` runs once `data` is no longer needed. */
  store(index: number, data: readonly Buffer[], written: () => void): void;
  wasted(cause: DuplicateCause, bytes: number): void;
  /** A block came (the transfer's progress clock). */
  progressed(now: number): void;
  /** A parent sent a bad piece (the peer bans it for all its transfers). */
  onBan(peerId: string): void;
}

export class ParentRequests {
  private readonly port: ParentRequestsPort;
  private pumpQueued = false;

  constructor(port: ParentRequestsPort) {
    this.port = port;
  }

  /**
   * One pump for a burst of events: every parent announces every piece it verifies, so with 16
   * parents a 256-piece blob brings thousands of 'have' messages, each of which used to scan every
   * piece for every parent.
   */
  pumpSoon(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    this.port.clock.soon(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /** Bans a parent that lied about the blob (a bad piece, a false hash list), for every transfer of this peer. */
  ban(parent: ParentLink, reason?: string): void {
    this.port.onBan(parent.peerId);
    this.port.pool.ban(parent, reason);
  }

  /**
   * Asks every unchoked parent for blocks up to its window. A parent that had no piece to give is
   * not asked again (a scan of every piece) until it announces more or the pick epoch moves: a
   * piece requested elsewhere was taken back, a write failed, hashes were learned. Only those make
   * a piece it holds gettable, except in endgame, where every request changes the second copies it
   * may give (simulated, 300 peers: 97 % of the scans found nothing, and with the pump they were
   * 46 % of the simulation's CPU; the decisions are the same).
   */
  pump(): void {
    const { ledger, pool } = this.port;
    if (this.port.phase() !== 'p2p') return;
    const meta = this.port.meta();
    const missing = meta.pieceCount - ledger.have.count;
    const epoch = ledger.freed + this.port.hashUpdates();
    const availability = this.port.availability();
    const now = this.port.clock.now();
    for (const parent of pool.ready()) {
      if (parent.conn.isClosed || parent.conn.peerChoking) continue;
      const window = parent.window;
      const vouches = this.port.vouches(parent);
      while (parent.outstanding < window) {
        let a = parent.unfinished();
        if (!a) {
          if (parent.emptyAt === epoch && ledger.inFlight.size < missing) break;
          const connected = pool.holders(meta.pieceCount);
          const index = pickPiece({
            have: ledger.have,
            inFlight: ledger.inFlight,
            canGet: (i) => parent.conn.peerHas(i) && (vouches || hashKnown(meta, i)) && !ledger.isWriting(i),
            availability: (i) => (availability[i] ?? 0) + connected[i]!,
            mine: parent.assignments,
            overdue: (i) => this.overdue(i, now),
            random: this.port.random,
          });
          if (index === undefined) {
            parent.emptyAt = epoch;
            break;
          }
          a = parent.assign(index, pieceRange(meta.size, meta.pieceSize, index).length);
          ledger.request(index, parent.peerId);
        }
        this.requestBlock(parent, a);
      }
    }
  }

  /**
   * Whether every parent fetching piece `index` has sent none of it for ENDGAME_LAG_MS (endgame's
   * second copy waits for that). A piece fetched from the seed alone is not: the seed's grants have
   * their own stall (seed-grants.ts).
   */
  private overdue(index: number, now: number): boolean {
    let fetched = false;
    for (const parent of this.port.pool.ready()) {
      const a = parent.assignments.get(index);
      if (!a) continue;
      if (now - a.lastBlockAt < ENDGAME_LAG_MS) return false;
      fetched = true;
    }
    return fetched;
  }

  /**
   * How long a parent that holds nothing we lack is kept before it makes room for a fresh one
   * (parent-pool.ts USELESS_PATIENCE_MS); none while no parent has a piece asked of it or anything we
   * lack and another peer holds a piece we lack (the supernode's counts): waiting on the parents
   * then gains nothing, and a paced peer waited its patience and then a sync for a fresh parent.
   * Simulated 1,000 peers, the bed's four layers, paced to 2.5 s, 12 upload slots (seed 2): the
   * swarm waited from 6 s to 9.4 s for two pieces one peer each held (their holders were offered,
   * rare-pieces.ts, but the askers' pools of idle parents had no room); with none, all-done 7.61 s.
   */
  uselessPatienceMs(): number {
    const { have } = this.port.ledger;
    for (const parent of this.port.pool.ready()) if (parent.assignments.size > 0 || parent.lacked > 0) return USELESS_PATIENCE_MS;
    const availability = this.port.availability();
    for (let i = 0; i < availability.length; i++) if (availability[i]! > 0 && !have.has(i)) return 0;
    return USELESS_PATIENCE_MS;
  }

  /** The parent's connection closed: what it was asked for can be asked elsewhere. */
  parentClosed(parent: ParentLink): void {
    const { failure } = parent.conn;
    if (failure) this.port.logger.error({ digest: this.port.digest, parent: parent.peerId, err: failure }, 'wire connection to a parent closed by an error of ours');
    const phase = this.port.phase();
    const { ledger } = this.port;
    for (const a of parent.assignments.values()) {
      const cause: DuplicateCause = phase === 'fallback' ? 'fallback-overlap' : phase !== 'p2p' ? ledger.copyCause(a.index) : parent.stalled ? 'stall-reassign' : 'parent-lost';
      this.dropAssignment(parent, a, cause);
    }
    parent.assignments.clear();
    this.pump();
  }

  /** Cancels the request for `index` to the parent `peerId` (a copy of the piece is being stored). */
  cancel(index: number, peerId: string, cause: DuplicateCause): void {
    for (const parent of this.port.pool.ready()) {
      if (parent.peerId !== peerId) continue;
      const a = parent.assignments.get(index);
      if (!a) continue;
      this.dropAssignment(parent, a, cause);
      for (let off = 0; off < a.nextOffset; off += BLOCK_BYTES) parent.conn.cancel(index, off, Math.min(BLOCK_BYTES, a.length - off));
    }
  }

  /**
   * A parent sent a block no request waited for: it crossed the link, so it counts as received,
   * and as wasted: after our cancel (a copy of the piece came first) under the reason the piece was
   * asked twice, otherwise (never asked, or asked before a choke) as unasked, no second copy.
   */
  discarded(index: number, bytes: number, cancelled: boolean): void {
    if (!(index >= 0 && index < this.port.meta().pieceCount)) return; // no piece of this blob: nothing of ours
    this.port.ledger.received(bytes);
    this.port.wasted(cancelled ? this.port.ledger.copyCause(index) : 'unasked', bytes);
  }

  /** Takes an assignment back: its blocks so far are wasted, blocks still to come count as wasted too. */
  private dropAssignment(parent: ParentLink, a: Assignment, cause: DuplicateCause): void {
    a.dropped = cause;
    this.port.wasted(cause, a.received);
    for (const b of a.blocks) if (b) releaseBlock(b);
    a.blocks.fill(undefined);
    if (parent.assignments.get(a.index) === a) parent.assignments.delete(a.index);
    this.port.ledger.release(a.index, parent.peerId);
  }

  private requestBlock(parent: ParentLink, a: Assignment): void {
    const { ledger } = this.port;
    const offset = a.nextOffset;
    const len = Math.min(BLOCK_BYTES, a.length - offset);
    a.nextOffset += len;
    parent.outstanding++;
    parent.conn.request(a.index, offset, len).then(
      (block) => {
        parent.outstanding--;
        const now = this.port.clock.now();
        parent.sample(len, now);
        ledger.received(len);
        if (parent.assignments.get(a.index) !== a) {
          releaseBlock(block);
          this.port.wasted(a.dropped ?? 'late-arrival', len);
          return this.pump();
        }
        a.blocks[offset / BLOCK_BYTES] = block;
        a.received += len;
        a.lastBlockAt = now;
        this.port.progressed(now);
        if (a.received === a.length) {
          parent.assignments.delete(a.index);
          ledger.release(a.index, parent.peerId, 'arrived');
          // The blocks stay separate (no 1 MiB copy per piece): hashed in order, written vectored.
          const data = a.blocks as Buffer[];
          // The blocks' buffers go back to the wire's pool once stored (or refused): not before.
          const done = (): void => data.forEach(releaseBlock);
          if (!hashKnown(this.port.meta(), a.index)) {
            // Asked before its hash was known, and no proof came with it: the parent has none (no
            // fault of its own). Asked again, and of this parent only for pieces with known hashes.
            done();
            ledger.lost();
            this.port.wasted('unproved', a.length);
            parent.withoutProofs = true;
          } else if (!this.port.verify(a.index, data)) {
            done();
            ledger.lost();
            this.port.wasted('corrupt', a.length);
            this.port.logger.warn({ digest: this.port.digest, parent: parent.peerId, piece: a.index }, 'bad piece from a parent; banning it');
            this.ban(parent);
          } else {
            this.port.store(a.index, data, done);
          }
        }
        this.pump();
      },
      () => {
        parent.outstanding = Math.max(0, parent.outstanding - 1);
        // The blocks already in hand go back to the pool and count as wasted, as for any dropped copy.
        if (parent.assignments.get(a.index) === a) this.dropAssignment(parent, a, 'parent-lost');
      },
    );
  }
}
