// A simulated Pollen peer: the behaviour of peer/p2p/p2p-transfer.ts (P2pTransfer) and peer/p2p/uploader.ts
// on the simulated network, with the REAL piece picker (peer/p2p/piece-picker.ts). What it models:
// - sync with the supernode every syncMs (tick every TICK_MS), after every 4 verified pieces and after
//   every seed piece, one sync at a time, a round trip away; heartbeats every HEARTBEAT_MS;
// - up to MAX_PARENTS parent connections from the parents the supernode offers (a connection takes
//   a round trip); idle parents that hold nothing we lack, or have kept us choked longer than
//   CHOKE_PATIENCE_MS, are dropped when fresh ones are offered;
// - per unchoked parent `piecesPerParent` pieces in flight, chosen by pickPiece (stream-ahead, rarest
//   first over supernode availability + connected holders, endgame copies), one fluid flow each;
// - seed grants fetched from the seed host at once (SEED_CONCURRENCY asked per sync);
// - the uploader: at most `uploadSlots` children unchoked, the others wait in FIFO order;
// - a finished peer closes its parent connections and keeps serving; no bytes arriving for
//   noProgressMs (checked every tick): fall back, fetching the rest from the registry host (the supernode is not told).
// Not modelled: block-level windows (a piece is one flow), per-block stall detection, write latency.
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { pickPiece } from '../../peer/p2p/piece-picker.ts';
import type { EventQueue } from './event-queue.ts';
import type { HostId, SimNetwork, Transfer } from './network.ts';
import type { SimSupernode, SimSyncAnswer } from './sim-supernode.ts';

/** Values of peer/p2p/p2p-transfer.ts and supernode/p2p/tracker.ts (not exported there). */
export const PEER_CONSTANTS = { MAX_PARENTS: 8, CHOKE_PATIENCE_MS: 1_000, SEED_CONCURRENCY: 3, TICK_MS: 250, HEARTBEAT_MS: 1_000, HAVES_PER_SYNC: 4, STARVED_MS: 5_000 } as const;

export interface SimPeerOptions {
  pieceCount: number;
  pieceBytes: number;
  uploadSlots: number;
  piecesPerParent: number;
  syncMs: number;
  noProgressMs: number;
}

export interface SimWorld {
  readonly queue: EventQueue;
  readonly network: SimNetwork;
  readonly supernode: SimSupernode;
  readonly seedHost: HostId;
  /** When piece i has arrived at the seed from the registry (the seed streams the blob once, in order). */
  seedReadyAtMs(i: number): number;
  readonly registryHost: HostId;
  readonly peers: ReadonlyMap<string, SimPeer>;
  /** One-way latency between two hosts, ms. */
  latency(a: HostId, b: HostId): number;
  onDone(peer: SimPeer): void;
  /** A piece from the seed has arrived at a peer. */
  onSeedPiece(atMs: number): void;
}

interface Link {
  readonly child: SimPeer;
  readonly parent: SimPeer;
  connecting: boolean;
  unchoked: boolean;
  closed: boolean;
  /** When the link came up: the parent has kept us choked since then while !unchoked. */
  connectedAt: number;
  readonly flights: Map<number, Transfer>;
}

export interface PeerCounters {
  fromPeers: number;
  fromSeed: number;
  fromRegistry: number;
  /** Bytes of pieces that arrived twice (endgame copies). */
  duplicate: number;
}

export class SimPeer {
  readonly have: Bitfield;
  readonly counters: PeerCounters = { fromPeers: 0, fromSeed: 0, fromRegistry: 0, duplicate: 0 };
  mode: 'idle' | 'p2p' | 'fallback' | 'done' = 'idle';
  doneMs = NaN;
  private readonly parents = new Map<string, Link>();
  private readonly inFlight = new Map<number, number>();
  private readonly seedFlights = new Map<number, { transfer?: Transfer; cancelled: boolean }>();
  private availability: readonly number[] = [];
  private pendingHaves: number[] = [];
  private syncing = false;
  private lastSyncAt = -Infinity;
  private lastProgressAt = 0;
  private lastPieceAt = 0;
  private readonly unchoked = new Set<Link>();
  private readonly waiting: Link[] = [];

  constructor(
    private readonly world: SimWorld,
    readonly peerId: string,
    readonly host: HostId,
    private readonly options: SimPeerOptions,
  ) {
    this.have = new Bitfield(options.pieceCount);
  }

  /** Parent links: connected and unchoked, connected but waiting for a slot, still connecting. */
  linkStates(): { unchoked: number; choked: number; connecting: number } {
    const r = { unchoked: 0, choked: 0, connecting: 0 };
    for (const l of this.parents.values()) r[l.connecting ? 'connecting' : l.unchoked ? 'unchoked' : 'choked']++;
    return r;
  }

  /** The pull starts: register, create the task, sync, and tick from now on. */
  start(): void {
    const { queue, supernode } = this.world;
    this.mode = 'p2p';
    this.lastProgressAt = this.lastPieceAt = queue.now;
    const rtt = this.rtt();
    queue.after(rtt, () => {
      supernode.registerAndJoin(this.peerId, this.peerId, this.options.uploadSlots);
      const beat = (): void => {
        if (!supernode.heartbeat(this.peerId)) supernode.registerAndJoin(this.peerId, this.peerId, this.options.uploadSlots);
        queue.after(PEER_CONSTANTS.HEARTBEAT_MS, beat);
      };
      queue.after(PEER_CONSTANTS.HEARTBEAT_MS, beat);
      queue.after(rtt, () => {
        this.sync();
        const tick = (): void => {
          if (this.mode !== 'p2p') return;
          this.tick();
          queue.after(PEER_CONSTANTS.TICK_MS, tick);
        };
        queue.after(PEER_CONSTANTS.TICK_MS, tick);
      });
    });
  }

  private rtt(): number {
    return 2 * this.world.latency(this.host, this.world.seedHost);
  }

  private tick(): void {
    const now = this.world.queue.now;
    // Any bytes arriving count as progress (a moving fluid flow delivers bytes all the time).
    if (this.receiving()) this.lastProgressAt = now;
    if (now - this.lastProgressAt > this.options.noProgressMs) return this.fallBack();
    if (now - this.lastSyncAt >= this.options.syncMs) this.sync();
    this.pump();
  }

  private receiving(): boolean {
    for (const link of this.parents.values()) if (link.flights.size > 0) return true;
    for (const f of this.seedFlights.values()) if (f.transfer) return true;
    return false;
  }

  private sync(): void {
    if (this.syncing || this.mode !== 'p2p') return;
    this.syncing = true;
    const { queue, supernode } = this.world;
    this.lastSyncAt = queue.now;
    const have = this.pendingHaves;
    this.pendingHaves = [];
    const oneWay = this.rtt() / 2;
    const starved = !this.have.complete && queue.now - this.lastPieceAt > PEER_CONSTANTS.STARVED_MS;
    queue.after(oneWay, () => {
      const answer = supernode.sync(this.peerId, { have, wantSeed: PEER_CONSTANTS.SEED_CONCURRENCY, badParents: [], starved });
      queue.after(oneWay, () => {
        this.syncing = false;
        if (!answer) {
          // The supernode lost us (dropped for a missed heartbeat): register and create the task again.
          this.pendingHaves.push(...have);
          supernode.registerAndJoin(this.peerId, this.peerId, this.options.uploadSlots);
          return;
        }
        this.onSync(answer);
      });
    });
  }

  private onSync(res: SimSyncAnswer): void {
    if (this.mode !== 'p2p') return;
    this.availability = res.availability;
    const { MAX_PARENTS } = PEER_CONSTANTS;
    const fresh = res.parents.some((p) => !this.parents.has(p.peerId));
    if (fresh) {
      for (const link of [...this.parents.values()]) {
        if (this.parents.size < MAX_PARENTS) break;
        if (link.connecting || link.flights.size > 0) continue;
        const waitedTooLong = !link.unchoked && this.world.queue.now - link.connectedAt > PEER_CONSTANTS.CHOKE_PATIENCE_MS;
        if (waitedTooLong || !this.isUseful(link.parent)) this.closeLink(link);
      }
    }
    for (const p of res.parents) {
      if (this.parents.size >= MAX_PARENTS) break;
      const parent = this.world.peers.get(p.peerId);
      if (parent && parent !== this && !this.parents.has(p.peerId)) this.connect(parent);
    }
    for (const i of res.seedGrants) if (!this.have.has(i) && !this.seedFlights.has(i)) this.fetchFromSeed(i);
    this.pump();
  }

  private isUseful(parent: SimPeer): boolean {
    for (let i = 0; i < this.options.pieceCount; i++) if (!this.have.has(i) && parent.have.has(i)) return true;
    return false;
  }

  private connect(parent: SimPeer): void {
    const link: Link = { child: this, parent, connecting: true, unchoked: false, closed: false, connectedAt: Infinity, flights: new Map() };
    this.parents.set(parent.peerId, link);
    this.world.queue.after(2 * this.world.latency(this.host, parent.host), () => {
      if (link.closed) return;
      link.connecting = false;
      link.connectedAt = this.world.queue.now;
      if (this.mode !== 'p2p') return this.closeLink(link);
      parent.accept(link);
    });
  }

  /** Uploader side: unchoke while slots are free, otherwise wait in line. */
  private accept(link: Link): void {
    if (this.unchoked.size < this.options.uploadSlots) this.unchoke(link);
    else this.waiting.push(link);
  }

  private unchoke(link: Link): void {
    this.unchoked.add(link);
    link.unchoked = true;
    link.child.pump();
  }

  private release(link: Link): void {
    if (this.unchoked.delete(link)) {
      while (this.unchoked.size < this.options.uploadSlots) {
        const next = this.waiting.shift();
        if (!next) break;
        if (!next.closed) this.unchoke(next);
      }
    } else {
      const w = this.waiting.indexOf(link);
      if (w >= 0) this.waiting.splice(w, 1);
    }
  }

  private closeLink(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    for (const [i, t] of link.flights) {
      this.world.network.cancel(t);
      this.releasePiece(i);
    }
    link.flights.clear();
    if (this.parents.get(link.parent.peerId) === link) this.parents.delete(link.parent.peerId);
    link.parent.release(link);
  }

  private releasePiece(i: number): void {
    const n = (this.inFlight.get(i) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(i);
    else this.inFlight.set(i, n);
  }

  private connectedHolders(i: number): number {
    let n = 0;
    for (const l of this.parents.values()) if (!l.connecting && l.parent.have.has(i)) n++;
    return n;
  }

  pump(): void {
    if (this.mode !== 'p2p') return;
    for (const link of this.parents.values()) {
      if (!link.unchoked || link.closed) continue;
      while (link.flights.size < this.options.piecesPerParent) {
        const index = pickPiece({
          have: this.have,
          inFlight: this.inFlight,
          canGet: (i) => link.parent.have.has(i),
          availability: (i) => (this.availability[i] ?? 0) + this.connectedHolders(i),
          mine: new Set(link.flights.keys()),
        });
        if (index === undefined) break;
        this.inFlight.set(index, (this.inFlight.get(index) ?? 0) + 1);
        const t = this.world.network.transfer(link.parent.host, this.host, this.options.pieceBytes, () => {
          link.flights.delete(index);
          this.releasePiece(index);
          this.store(index, 'fromPeers');
          this.pump();
        });
        link.flights.set(index, t);
      }
    }
  }

  /** GET /seed/:digest/pieces/:i: the seed answers once the piece has come from the registry. */
  private fetchFromSeed(i: number): void {
    this.inFlight.set(i, (this.inFlight.get(i) ?? 0) + 1);
    const fetch: { transfer?: Transfer; cancelled: boolean } = { cancelled: false };
    this.seedFlights.set(i, fetch);
    const { queue, network, seedHost } = this.world;
    queue.at(Math.max(queue.now, this.world.seedReadyAtMs(i)), () => {
      if (fetch.cancelled) return;
      fetch.transfer = network.transfer(seedHost, this.host, this.options.pieceBytes, () => {
        this.seedFlights.delete(i);
        this.releasePiece(i);
        this.world.onSeedPiece(queue.now);
        this.store(i, 'fromSeed');
        this.sync();
        this.pump();
      });
    });
  }

  private store(i: number, from: 'fromPeers' | 'fromSeed'): void {
    if (this.mode === 'done' || this.have.has(i)) {
      this.counters.duplicate += this.options.pieceBytes;
      return;
    }
    this.have.set(i);
    this.counters[from] += this.options.pieceBytes;
    this.lastProgressAt = this.lastPieceAt = this.world.queue.now;
    this.pendingHaves.push(i);
    // 'have' to the children we serve: their pump may now pick this piece.
    for (const link of this.unchoked) link.child.pump();
    if (this.have.complete) this.finish();
    else if (this.pendingHaves.length >= PEER_CONSTANTS.HAVES_PER_SYNC) this.sync();
  }

  private finish(): void {
    if (this.mode === 'done') return;
    const wasP2p = this.mode === 'p2p';
    this.mode = 'done';
    this.doneMs = this.world.queue.now;
    this.stopFetching();
    if (wasP2p) {
      const have = this.pendingHaves;
      this.pendingHaves = [];
      this.world.queue.after(this.rtt() / 2, () => this.world.supernode.sync(this.peerId, { have, wantSeed: 0, badParents: [] }));
    }
    this.world.onDone(this);
  }

  private fallBack(): void {
    if (this.mode !== 'p2p') return;
    this.mode = 'fallback';
    this.stopFetching();
    const missing = this.options.pieceCount - this.have.count;
    this.world.network.transfer(this.world.registryHost, this.host, missing * this.options.pieceBytes, () => {
      for (let i = 0; i < this.options.pieceCount; i++) this.have.set(i);
      this.counters.fromRegistry += missing * this.options.pieceBytes;
      for (const link of this.unchoked) link.child.pump();
      this.finish();
    });
  }

  private stopFetching(): void {
    for (const link of [...this.parents.values()]) this.closeLink(link);
    for (const [i, f] of this.seedFlights) {
      f.cancelled = true;
      if (f.transfer) this.world.network.cancel(f.transfer);
      this.releasePiece(i);
    }
    this.seedFlights.clear();
  }
}
