// The parents of one transfer: the connections being set up and the ones ready, the parents banned
// for a bad piece, and the reports owed to the supernode (parents that failed us, parents that sent
// a corrupt piece). It dials through the injected dialer and reads time from the injected clock;
// what to ask each parent for is the transfer's business, told through the callbacks.
import type { Clock } from '../../src/clock.ts';
import { namedLayout } from '../../src/p2p/metainfo.ts';
import type { Digest } from '../../src/digest.ts';
import type { PieceProof } from '../../src/p2p/piece-proof.ts';
import type { ParentInfo } from '../../src/p2p/supernode-api.ts';
import { ExpiringBans } from '../../src/p2p/wire-bans.ts';
import { ParentLink } from './parent-link.ts';
import type { ParentDialer } from './transfer-seams.ts';

/**
 * Parents connected at once. Five left peers starved in simulation: a child keeps a parent while it
 * holds anything useful, so a child whose few parents were all busy crawled while other uploads
 * idled. It stays below the uploaders' slots (12 by default): with more children asking than slots
 * to serve them, the children that came last waited choked behind the ones that never leave
 * (simulated 1,000 peers, 256 MiB, 100 Mbit/s: all-done 1.55 x T* with 8 parents and 8 slots,
 * 1.43 x with 8 and 10; bench/sim).
 */
export const MAX_PARENTS = 8;
/**
 * Parent connections one host keeps across all its transfers. A pull fetches its layers at once
 * (skopeo and containerd: 3-4), and each transfer dialling MAX_PARENTS gave every host ~32 incoming
 * TLS flows into one 100 Mbit/s link: on the fan-out bed (N = 8, 64 MiB) hosts received 1.20-1.27 x
 * what they needed, the excess being TCP retransmissions of that incast (the transfers' own
 * duplicates were 2 %); with at most 3 parents per transfer, 1.11 x.
 */
export const HOST_PARENT_BUDGET = 12;
export const MIN_PARENTS = 3;

/** Parents for each of `active` concurrent transfers: the host's budget shared, within [MIN, MAX]. */
export function parentsPerTransfer(active: number): number {
  return Math.max(MIN_PARENTS, Math.min(MAX_PARENTS, Math.floor(HOST_PARENT_BUDGET / Math.max(1, active))));
}
/** A parent that has kept us choked (all its upload slots taken) this long makes room for a fresh one. */
export const CHOKE_PATIENCE_MS = 1_000;
/**
 * A parent that holds nothing we lack, and was given no piece for this long, makes room for a fresh
 * one. In a fan-out every parent is downloading too: what it lacks now it announces a moment later.
 * Dropping it at the first offer of another parent made half of all dials on the bed (N = 16, 64 MiB:
 * ~1,050 dials, 519 of them closed as holding nothing, each a TLS and two wire handshakes). The
 * transfer waits none when no parent has anything for it and another peer holds what it lacks
 * (parent-requests.ts uselessPatienceMs).
 */
export const USELESS_PATIENCE_MS = 2_000;
/** Parents reported per sync and list (the supernode reads no more); the rest go with the next. */
const MAX_REPORTS_PER_SYNC = 64;

export interface ParentPoolEvents {
  /** The parent finished its handshakes and is in the pool. */
  onReady(parent: ParentLink): void;
  /** The parent's connection closed (its assignments are still on it). */
  onClose(parent: ParentLink): void;
  /** It announced pieces (have, bitfield): worth a pump soon. */
  onPieces(): void;
  onUnchoke(): void;
  /** It sent a piece proof. */
  onProof?(parent: ParentLink, proof: PieceProof): void;
  /** A parent sent the hash list a dial asked for (wantHashes). */
  onHashes?(parent: ParentLink, list: Buffer): void;
  /** Whether a dial now asks for the hash list (the transfer could check one and lacks hashes). */
  wantHashes?(): boolean;
  /** It sent a block of `index` no request waited for (ParentConnection 'discarded'; `cancelled`: ours, after it sent it). */
  onDiscarded?(index: number, bytes: number, cancelled: boolean): void;
  /** A connection to a parent is being opened (counted in the transfer's stats). */
  onDial?(): void;
  /** Whether connecting is still wanted (false once the transfer left P2P). */
  wanted(): boolean;
}

export class ParentPool {
  private readonly parents = new Map<string, ParentLink>();
  private readonly connecting = new Set<string>();
  /** Parents that sent a bad piece: the peer's shared list, so no other transfer dials them either. */
  private readonly banned: ExpiringBans;
  private readonly badParents = new Set<string>();
  private readonly corruptParents = new Set<string>();
  private readonly dialer: ParentDialer;
  private readonly clock: Clock;
  private readonly digest: Digest;
  /** The transfer's layout as the wire names it (metainfo.ts namedLayout: undefined for the default one); a parent holding the whole blob serves either. */
  private readonly layout: number | undefined;
  private readonly events: ParentPoolEvents;
  /** How many parents this transfer may have now (the host's budget shared by its transfers). */
  private readonly limit: () => number;
  /** The pieces we hold (the transfer's ledger): what a parent's announcements are counted against. */
  private readonly have: { has(index: number): boolean };
  private readonly pieceCount: number;
  /** Holders of each piece among the ready parents; undefined once a parent came or went or sent a whole bitfield. */
  private counted: Uint16Array | undefined;

  constructor(deps: { dialer: ParentDialer; clock: Clock; events: ParentPoolEvents; bans?: ExpiringBans }, options: { digest: Digest; layout: { size: number; pieceSize: number }; have: { has(index: number): boolean }; maxParents?: () => number }) {
    this.dialer = deps.dialer;
    this.clock = deps.clock;
    this.banned = deps.bans ?? new ExpiringBans({ clock: deps.clock });
    this.events = deps.events;
    this.digest = options.digest;
    this.layout = namedLayout(options.layout.size, options.layout.pieceSize);
    this.limit = options.maxParents ?? (() => MAX_PARENTS);
    this.have = options.have;
    this.pieceCount = Math.ceil(options.layout.size / options.layout.pieceSize);
  }

  /** We stored piece `index`: parents holding it hold one piece fewer that we lack. */
  stored(index: number): void {
    for (const p of this.parents.values()) {
      if (p.lacked > 0 && p.conn.peerHas(index)) {
        p.lacked--;
        this.tellInterest(p);
      }
    }
  }

  /** The parents that are ready. */
  ready(): IterableIterator<ParentLink> {
    return this.parents.values();
  }

  /** How many ready parents hold each of `pieceCount` pieces (counted again only after a parent came or went or sent a bitfield; a have adds one). */
  holders(pieceCount: number): Uint16Array {
    if (this.counted?.length === pieceCount) return this.counted;
    const counted = new Uint16Array(pieceCount);
    for (const p of this.parents.values()) for (let i = 0; i < pieceCount; i++) if (p.conn.peerHas(i)) counted[i]!++;
    return (this.counted = counted);
  }

  /** Whether a ready parent sent a block (or came) within the last `ms`. */
  fedWithin(ms: number): boolean {
    const now = this.clock.now();
    for (const p of this.parents.values()) if (now - p.lastBlockAt < ms) return true;
    return false;
  }

  get size(): number {
    return this.parents.size + this.connecting.size;
  }

  private known(peerId: string): boolean {
    return this.parents.has(peerId) || this.connecting.has(peerId) || this.banned.isBanned(peerId);
  }

  /**
   * Takes the parents the supernode offers: for each one we do not know that the pool has no room
   * for, an idle parent that kept us choked past CHOKE_PATIENCE_MS, or that holds nothing we lack
   * and was given no piece for USELESS_PATIENCE_MS, makes room;
   * then fresh parents are dialled up to the limit (MAX_PARENTS, or the host's share).
   */
  offer(offered: readonly ParentInfo[], uselessPatienceMs = USELESS_PATIENCE_MS): void {
    const limit = this.limit();
    // A parent dropped to make room is not dialled again from the same offer.
    const dropped = new Set<string>();
    const fresh = new Set(offered.filter((p) => !this.known(p.peerId)).map((p) => p.peerId)).size;
    if (fresh > 0) {
      const now = this.clock.now();
      for (const parent of [...this.parents.values()]) {
        if (this.size <= limit - fresh) break;
        const reason = replaceable(parent, now, uselessPatienceMs);
        if (!reason) continue;
        dropped.add(parent.peerId);
        parent.conn.destroy(reason);
      }
    }
    for (const p of offered) {
      if (this.size >= limit) break;
      if (!this.known(p.peerId) && !dropped.has(p.peerId)) this.connect(p.peerId, p.wireAddr);
    }
  }

  /**
   * How many of the parents an offer brings would be dialled now (the sync's `wantParents`): the
   * pool's free room and every parent that would make room for a fresh one (see offer). An offer to
   * a full pool of busy parents was dropped unread: 86 bytes a parent on the supernode's uplink. A
   * paced peer meets the supernode every few seconds, and counting one replaceable parent at most
   * left it behind three that had choked it (simulated 1,000 peers, syncs every ~4 s) for a sync each.
   */
  room(uselessPatienceMs = USELESS_PATIENCE_MS): number {
    let room = Math.max(0, this.limit() - this.size);
    const now = this.clock.now();
    for (const parent of this.parents.values()) if (replaceable(parent, now, uselessPatienceMs)) room++;
    return room;
  }

  private connect(peerId: string, wireAddr: string): void {
    const conn = this.dialer.dial(wireAddr, this.digest, this.layout, this.events.wantHashes?.() === true);
    if (!conn) return; // its address broke the wire protocol: banned for a while
    this.events.onDial?.();
    this.connecting.add(peerId);
    const parent = new ParentLink(peerId, conn, this.clock);
    conn.on('close', () => {
      this.connecting.delete(peerId);
      if (this.parents.get(peerId) === parent) this.parents.delete(peerId);
      this.counted = undefined;
      this.events.onClose(parent);
    });
    // Bitfield and unchoke may arrive in the same read as the proof: listen before 'ready'.
    conn.on('unchoke', () => {
      parent.chokedSince = Infinity;
      this.events.onUnchoke();
    });
    conn.on('choke', () => (parent.chokedSince = this.clock.now()));
    const announced = (): void => {
      parent.emptyAt = -1;
      this.events.onPieces();
    };
    // A ready parent's new piece adds one holder to the count (a parent not in the pool yet is
    // counted whole when it comes); a whole bitfield has the count made again. Counting again at
    // every have was ~750 counts of 4,000 bits per peer and 256 MiB on the fan-out bed (8 parents,
    // 512 pieces), and four times that with pieces half the size.
    conn.on('have', (index: number) => {
      if (this.parents.get(peerId) === parent) {
        if (this.counted && index < this.counted.length) this.counted[index]!++;
        if (index < this.pieceCount && !this.have.has(index)) {
          parent.lacked++;
          this.tellInterest(parent);
        }
      }
      announced();
    });
    conn.on('bitfield', () => {
      this.counted = undefined;
      if (this.parents.get(peerId) === parent) this.countLacked(parent);
      announced();
    });
    conn.on('proof', (proof: PieceProof) => this.events.onProof?.(parent, proof));
    conn.on('hashes', (list: Buffer) => this.events.onHashes?.(parent, list));
    conn.on('discarded', (index: number, bytes: number, cancelled: boolean) => this.events.onDiscarded?.(index, bytes, cancelled));
    conn.ready.then(
      () => {
        // Closed already (its 'close' ran and cleared it): e.g. for a hash list handed on ahead of 'ready' (an older parent: wire-hash-list.ts).
        if (conn.isClosed) return;
        this.connecting.delete(peerId);
        if (!this.events.wanted()) return conn.destroy('transfer over');
        this.parents.set(peerId, parent);
        this.counted = undefined;
        this.countLacked(parent);
        this.events.onReady(parent);
      },
      () => this.badParents.add(peerId),
    );
  }

  /** Counts the pieces `parent` holds that we lack, and tells it whether we are interested. */
  private countLacked(parent: ParentLink): void {
    let n = 0;
    for (let i = 0; i < this.pieceCount; i++) if (!this.have.has(i) && parent.conn.peerHas(i)) n++;
    parent.lacked = n;
    this.tellInterest(parent);
  }

  /**
   * BEP 3 interest, told to the parent as it changes: interested while it holds a piece we lack.
   * Its uploader unchokes only children that are, so a child that has all its parent holds gives
   * its slot to one that wants pieces (upload-slots.ts).
   */
  private tellInterest(parent: ParentLink): void {
    const want = parent.lacked > 0;
    if (want === parent.interested) return;
    parent.interested = want;
    if (!want) return parent.conn.interested(false);
    // CHOKE_PATIENCE_MS counts from when we asked: a choke while we wanted nothing is not the parent's doing.
    if (parent.chokedSince !== Infinity) parent.chokedSince = this.clock.now();
    parent.conn.interested();
  }

  /** Parents with a stalled piece (ParentLink.isStalled: no block of it for `stallMs`, and none of anything else either), each once. */
  stalled(stallMs: number): Array<{ parent: ParentLink; piece: number }> {
    const now = this.clock.now();
    const out: Array<{ parent: ParentLink; piece: number }> = [];
    for (const parent of this.parents.values()) {
      for (const a of parent.assignments.values()) {
        if (parent.isStalled(a, now, stallMs)) {
          out.push({ parent, piece: a.index });
          break;
        }
      }
    }
    return out;
  }

  /** Drops a parent that stalled; the supernode hears of it with the next sync. */
  dropStalled(parent: ParentLink): void {
    parent.stalled = true;
    this.badParents.add(parent.peerId);
    parent.conn.destroy('stalled');
  }

  /** Bans a parent that sent a bad piece: not dialled again (by any transfer sharing the bans), reported as corrupt. */
  ban(parent: ParentLink, reason = 'sent a bad piece'): void {
    this.banned.ban(parent.peerId);
    this.corruptParents.add(parent.peerId);
    parent.conn.destroy(reason);
  }

  /** Whether the parent is ready and has a piece of `index` assigned that is not stalled (ParentLink.isStalled). */
  liveHolder(peerId: string, index: number, stallMs: number): boolean {
    const parent = this.parents.get(peerId);
    const a = parent?.assignments.get(index);
    return parent !== undefined && a !== undefined && !parent.isStalled(a, this.clock.now(), stallMs);
  }

  /** The reports for the next sync, taken out (give them back with `restoreReports` if it fails). */
  takeReports(): { badParents: string[]; corruptParents: string[] } {
    return { badParents: take(this.badParents), corruptParents: take(this.corruptParents) };
  }

  restoreReports(r: { badParents: readonly string[]; corruptParents: readonly string[] }): void {
    for (const p of r.badParents) this.badParents.add(p);
    for (const p of r.corruptParents) this.corruptParents.add(p);
  }

  closeAll(): void {
    for (const p of [...this.parents.values()]) p.conn.destroy('transfer over');
    this.parents.clear();
    this.counted = undefined;
  }
}

/** Up to MAX_REPORTS_PER_SYNC entries of `set` (what a supernode reads), taken out of it. */
function take(set: Set<string>): string[] {
  const out: string[] = [];
  for (const id of set) {
    if (out.length >= MAX_REPORTS_PER_SYNC) break;
    out.push(id);
    set.delete(id);
  }
  return out;
}

/** Why `parent` would make room for a fresh one now (see ParentPool.offer), or undefined. */
function replaceable(parent: ParentLink, now: number, uselessPatienceMs: number): string | undefined {
  if (parent.assignments.size > 0) return undefined;
  if (parent.interested && now - parent.chokedSince > CHOKE_PATIENCE_MS) return 'kept us choked';
  return now - parent.lastAssignedAt > uselessPatienceMs && parent.lacked === 0 ? 'holds nothing we need' : undefined;
}
