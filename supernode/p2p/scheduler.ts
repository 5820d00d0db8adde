// Per-task piece availability and parent choice. Parents are peers first (scored by pieces held,
// upload slots as registered, children per slot, recent picks and failure history; never the
// asker), and the seed only for pieces no peer holds, each leased to one peer at a time so the
// seed sends a piece about once (peers starved of pieces may share a lease: seed-leases.ts).
// Work per request is bounded: at most scanLimit holders are scored, whatever the swarm size, in a
// window drawn at random (scan-window.ts), and one holder of a piece stranded with few holders
// (rare-pieces.ts).
// Reports are believed only as far as the scheduler can check them: a peer reports a parent only
// if this task's schedule offered it that parent, and each offer once. A dropped peer leaves no
// trace: its holdings, leases, offers and pending holdings go with it.
import type { Clock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { holdingBits } from '../../src/p2p/metainfo.ts';
import type { Holding, ParentInfo } from '../../src/p2p/supernode-api.ts';
import { addTask, clearTasks, removeTask, type PeerRecord } from './tracker.ts';
import { countUseful, heldBy } from './bitfield-counts.ts';
import { scanWindow, windowPositions } from './scan-window.ts';
import { ParentLoad } from './parent-load.ts';
import { RarePieces } from './rare-pieces.ts';
import { keepRanked, parentScore, type Ranked } from './parent-rank.ts';
import { DEFAULT_SCHEDULER_OPTIONS, MAX_OFFERED_PARENTS, type SchedulerOptions } from './scheduler-options.ts';
import { SeedLeases, STARVED_SEED_LEASES, type SeedGrantCounts } from './seed-leases.ts';

const MAX_PENDING_TASKS = 10_000;
/** Parents remembered per asker and task as offered (the most recent ones). */
const MAX_OFFERS_PER_ASKER = 64;

interface TaskAvailability {
  readonly pieceCount: number;
  readonly availability: Uint32Array;
  /** Pieces no holder has (availability 0): without any, and without distrusted holders, no piece is the seed's to grant. */
  unheld: number;
  readonly holders: Map<string, Bitfield>;
  /**
   * The holders' records in an array, so each request scans a window of them drawn at random
   * (scan-window.ts). Records, not ids: a holder is in a task only while the tracker keeps it (its drop
   * calls dropPeer), and a map lookup per holder scanned was a fifth of a sync's CPU at 10,000 peers.
   */
  readonly order: PeerRecord[];
  /** The holders' bitfields in the same order (the scan reads them without a map lookup each). */
  readonly orderBits: Bitfield[];
  readonly position: Map<string, number>;
  readonly leases: SeedLeases;
  /** Parents each asker was offered and has not reported yet (insertion order: oldest first). */
  readonly offered: Map<string, Set<string>>;
  /** When each asker's last parent scan ran (its last offer of parents). */
  readonly scannedAt: Map<string, number>;
  /** When each asker was last sent the availability. */
  readonly availabilityAt: Map<string, number>;
  /** The children the offers gave each parent (PeerRecord.children). */
  readonly load: ParentLoad;
  /** Pieces few holders have, and who (rare-pieces.ts): a scan offers their holders out of its window. */
  readonly rare: RarePieces;
}

export interface Schedule {
  readonly parents: ParentInfo[];
  readonly seedGrants: number[];
  readonly availability: number[];
}

/** What a sync asks of the scheduler beyond the asker and its allowance. */
export interface ScheduleAsk {
  /** Whether the seed has piece `i` already (default: every piece). */
  readonly seedHas?: ((i: number) => boolean) | undefined;
  /** The asker got no piece for a while. */
  readonly starved?: boolean | undefined;
  /** Pieces whose seed grants the asker declined since its last sync. */
  readonly declined?: readonly number[] | undefined;
  /** Parents the asker would dial now (SyncRequest.wantParents): no more are offered, and none without a scan. */
  readonly wantParents?: number | undefined;
  readonly aheadMs?: number | undefined; // the wait this answer asks (the pacer's): see parentCredit
}

export class Scheduler {
  private readonly clock: Clock;
  private readonly options: SchedulerOptions;
  private readonly tasks = new Map<Digest, TaskAvailability>();
  /** Parent scans run (a sync within offerIntervalMs of its asker's last scan runs none). */
  scans = 0;
  /**
   * Seed leases handed out (renewals not counted): `unheld`, pieces no trusted peer holds (the seed's
   * first copy); `starved`, pieces for a peer that got no piece for a while, held by peers or not.
   */
  readonly seedGrants: SeedGrantCounts = { unheld: 0, starved: 0 };

  /** Where each scan's window of holders falls (scan-window.ts): a seam, so the simulation's runs repeat. */
  private readonly random: () => number;

  constructor(deps: { clock: Clock; random?: () => number }, options: Partial<SchedulerOptions> = {}) {
    this.clock = deps.clock;
    this.random = deps.random ?? Math.random;
    this.options = { ...DEFAULT_SCHEDULER_OPTIONS, ...options };
  }

  /** Holdings reported for a task the supernode does not know yet (e.g. after a restart). */
  private readonly pendingHoldings = new Map<Digest, Map<string, Pick<Holding, 'pieces' | 'pieceSize'>>>();
  /** The digests each peer has pending holdings of (pruned when the peer is dropped). */
  private readonly pendingByPeer = new Map<string, Set<Digest>>();

  rememberHolding(digest: Digest, peerId: string, holding: Pick<Holding, 'pieces' | 'pieceSize'>): void {
    let m = this.pendingHoldings.get(digest);
    if (!m) {
      if (this.pendingHoldings.size >= MAX_PENDING_TASKS) return;
      m = new Map();
      this.pendingHoldings.set(digest, m);
    }
    m.set(peerId, holding);
    let mine = this.pendingByPeer.get(peerId);
    if (!mine) this.pendingByPeer.set(peerId, (mine = new Set()));
    mine.add(digest);
  }

  /** Tasks and pending-holding digests the scheduler keeps (tests watch them shrink). */
  get sizes(): { tasks: number; pendingTasks: number; pendingPeers: number } {
    return { tasks: this.tasks.size, pendingTasks: this.pendingHoldings.size, pendingPeers: this.pendingByPeer.size };
  }

  /** Each task's holders and the pieces they hold, read-only (the status page draws them). */
  *taskViews(): IterableIterator<{ readonly digest: Digest; readonly pieceCount: number; readonly holders: ReadonlyMap<string, Bitfield> }> {
    for (const [digest, task] of this.tasks) yield { digest, pieceCount: task.pieceCount, holders: task.holders };
  }

  /** The piece count of the scheduler's task of `digest` (the layout it counts in), if it has one. */
  pieceCountOf(digest: Digest): number | undefined {
    return this.tasks.get(digest)?.pieceCount;
  }

  /** Applies remembered holdings once the task exists (in its layout `meta`, see holdingBits). */
  adoptPending(digest: Digest, meta: { size: number; pieceSize: number; pieceCount: number }, lookup: (peerId: string) => PeerRecord | undefined): void {
    const m = this.pendingHoldings.get(digest);
    if (!m) return;
    this.pendingHoldings.delete(digest);
    for (const [peerId, holding] of m) {
      this.forgetPending(peerId, digest);
      const peer = lookup(peerId);
      if (peer && !this.holds(digest, peerId)) this.join(digest, meta.pieceCount, peer, holdingBits(meta, holding));
    }
  }

  private forgetPending(peerId: string, digest: Digest): void {
    const mine = this.pendingByPeer.get(peerId);
    mine?.delete(digest);
    if (mine?.size === 0) this.pendingByPeer.delete(peerId);
  }

  /** Adds `peer` to the task (with the pieces it holds, if any). */
  join(digest: Digest, pieceCount: number, peer: PeerRecord, pieces?: Bitfield): void {
    let task = this.tasks.get(digest);
    if (!task || task.pieceCount !== pieceCount) {
      if (task) this.forgetTask(digest);
      const availability = new Uint32Array(pieceCount);
      task = { pieceCount, availability, unheld: pieceCount, holders: new Map(), order: [], orderBits: [], position: new Map(), leases: new SeedLeases(pieceCount, availability, this.seedGrants), offered: new Map(), scannedAt: new Map(), availabilityAt: new Map(), load: new ParentLoad(), rare: new RarePieces() };
      this.tasks.set(digest, task);
    }
    const old = task.holders.get(peer.peerId);
    const bits = pieces && pieces.length === pieceCount ? pieces : new Bitfield(pieceCount);
    if (old) for (const i of old.indexes()) release(task, i, peer);
    const now = this.clock.now();
    for (const i of bits.indexes()) hold(task, i, peer, now);
    task.holders.set(peer.peerId, bits);
    const at = task.position.get(peer.peerId);
    if (at !== undefined) {
      task.order[at] = peer;
      task.orderBits[at] = bits;
    } else {
      task.position.set(peer.peerId, task.order.length);
      task.order.push(peer);
      task.orderBits.push(bits);
    }
    addTask(peer, digest);
  }

  leave(digest: Digest, peerId: string): void {
    const task = this.tasks.get(digest);
    const bits = task?.holders.get(peerId);
    if (!task || !bits) return;
    const at = task.position.get(peerId)!;
    for (const i of bits.indexes()) release(task, i, task.order[at]!);
    task.holders.delete(peerId);
    removeTask(task.order[at]!, digest);
    const last = task.order.pop()!;
    const lastBits = task.orderBits.pop()!;
    if (last.peerId !== peerId) {
      task.order[at] = last;
      task.orderBits[at] = lastBits;
      task.position.set(last.peerId, at);
    }
    task.position.delete(peerId);
    task.offered.delete(peerId);
    task.load.done(peerId);
    task.scannedAt.delete(peerId);
    task.availabilityAt.delete(peerId);
    task.leases.forgetPeer(peerId);
    if (task.holders.size === 0) this.tasks.delete(digest);
  }

  /** Forgets everything about a dropped peer: what it held, its leases and offers, its pending holdings. */
  dropPeer(peer: PeerRecord): void {
    for (const digest of [...peer.tasks]) this.leave(digest, peer.peerId);
    clearTasks(peer);
    for (const digest of this.pendingByPeer.get(peer.peerId) ?? []) {
      const m = this.pendingHoldings.get(digest);
      m?.delete(peer.peerId);
      if (m?.size === 0) this.pendingHoldings.delete(digest);
    }
    this.pendingByPeer.delete(peer.peerId);
  }

  /**
   * Whether `asker` may report `parent` in this task: only a parent its schedule offered it, and
   * each offer once (the offer is used up).
   */
  takeOffer(digest: Digest, asker: string, parent: string): boolean {
    return this.tasks.get(digest)?.offered.get(asker)?.delete(parent) ?? false;
  }

  /** Forgets the task and that its holders were in it (a peer of the task begun again joins it anew). */
  forgetTask(digest: Digest): void {
    for (const peer of this.tasks.get(digest)?.order ?? []) removeTask(peer, digest);
    this.tasks.get(digest)?.load.clear();
    this.tasks.delete(digest);
  }

  /** Records pieces a peer verified. */
  have(digest: Digest, peerId: string, pieces: readonly number[]): void {
    const task = this.tasks.get(digest);
    const bits = task?.holders.get(peerId);
    if (!task || !bits) return;
    const peer = task.order[task.position.get(peerId)!]!;
    const now = this.clock.now();
    for (const i of pieces) {
      if (bits.set(i)) hold(task, i, peer, now);
      task.leases.got(i, peerId);
    }
    if (bits.complete) task.load.done(peerId);
  }

  /** The seed sent piece `index` of `digest` whole to `peerId`: true once per seed lease it holds on it (SeedLeases.creditSent). */
  creditSeedPiece(digest: Digest, peerId: string, index: number): boolean {
    return this.tasks.get(digest)?.leases.creditSent(index, peerId, this.clock.now()) ?? false;
  }

  holds(digest: Digest, peerId: string): boolean {
    return this.tasks.get(digest)?.holders.has(peerId) ?? false;
  }

  /**
   * Parents and seed grants for `asker`. `starved` (the asker got no piece for a while) lets the
   * seed serve pieces that peers hold; `declined` (grants the asker turned down since its last
   * sync) frees those leases for other pieces.
   */
  schedule(digest: Digest, asker: string, wantSeed: number, ask: ScheduleAsk = {}): Schedule {
    const { seedHas = () => true, starved = false, declined = [] } = ask;
    const task = this.tasks.get(digest);
    if (!task) return { parents: [], seedGrants: [], availability: [] };
    const mine = task.holders.get(asker);
    // A holder of every piece (its last report) has nothing left to fetch: no scan, no grant, no
    // counts. Its answer was a whole schedule and, for the peer's last report, every hash.
    if (mine?.complete) return { parents: [], seedGrants: [], availability: [] };
    const now = this.clock.now();
    // Holders others caught sending bad pieces do not count as a source: their pieces may come from
    // the seed. Slow or unreachable ones still do: counting those too made the seed serve nearly
    // every piece to every peer on a CPU-starved 16-host bed (9.9 x S), where stalls are common.
    const distrusted: Bitfield[] = [];
    const keep = Math.min(this.parentCredit(task, asker, now, ask.aheadMs ?? 0), ask.wantParents ?? Infinity);
    const parents = keep > 0 && this.scanAllowed(task, asker, now, starved) ? this.pickParents(task, asker, mine, distrusted, starved, keep, now) : this.distrustedIn(task, distrusted);
    const want = Math.min(wantSeed, this.options.maxSeedGrants);
    let skip: Set<number> | undefined;
    if (declined.length > 0) {
      skip = new Set(declined);
      task.leases.decline(skip, asker);
    }
    const lease = { asker, mine, now, leaseMs: this.options.seedLeaseMs, seedHas, declined: skip };
    const seedGrants = starved ? task.leases.grantStarved({ ...lease, want: Math.min(want, STARVED_SEED_LEASES) }) : task.leases.grantUnheld({ ...lease, want }, (i) => heldBy(distrusted, i), task.unheld > 0 || distrusted.length > 0);
    return { parents, seedGrants, availability: this.availabilityDue(task, asker, now) ? toArray(task.availability) : [] };
  }

  /**
   * Whether this answer carries the availability (a count per piece, most of a sync answer's
   * bytes): at most once per availabilityIntervalMs per asker; between, an empty list, which a peer
   * reads as "unchanged" (a task has at least one piece, so a real availability is never empty).
   */
  private availabilityDue(task: TaskAvailability, asker: string, now: number): boolean {
    const interval = this.options.availabilityIntervalMs;
    if (interval <= 0) return true;
    const last = task.availabilityAt.get(asker);
    if (last !== undefined && now - last < interval) return false;
    if (task.holders.has(asker)) task.availabilityAt.set(asker, now);
    return true;
  }

  /**
   * Parents the asker may be offered now: maxParents per offerPeriodMs since its last offer (nearest
   * period), or per two periods of the wait this answer asks (aheadMs, up) if more; 8 at most. A
   * floor: an answer offers maxParents however soon it comes (pacer and request budget bound that).
   */
  private parentCredit(task: TaskAvailability, asker: string, now: number, aheadMs: number): number {
    const { maxParents, offerPeriodMs } = this.options;
    const last = task.scannedAt.get(asker);
    if (offerPeriodMs <= 0) return Math.min(MAX_OFFERED_PARENTS, maxParents);
    const since = last === undefined ? 1 : Math.round((now - last) / offerPeriodMs);
    return Math.min(MAX_OFFERED_PARENTS, maxParents * Math.max(1, since, Math.ceil(aheadMs / (2 * offerPeriodMs))));
  }

  private scanAllowed(task: TaskAvailability, asker: string, now: number, starved: boolean): boolean {
    const last = task.scannedAt.get(asker);
    if (this.options.offerIntervalMs > 0 && !starved && last !== undefined && now - last < this.options.offerIntervalMs) return false;
    if (task.holders.has(asker)) task.scannedAt.set(asker, now);
    this.scans++;
    return true;
  }

  /** Without a scan: only the distrusted holders of a window (no scoring); no parents. */
  private distrustedIn(task: TaskAvailability, distrusted: Bitfield[]): ParentInfo[] {
    const n = task.order.length;
    for (const at of windowPositions(scanWindow(n, this.options.scanLimit, this.random), n)) {
      if (task.order[at]!.corruptions > 0) distrusted.push(task.orderBits[at]!);
    }
    return [];
  }

  private pickParents(task: TaskAvailability, asker: string, mine: Bitfield | undefined, distrusted: Bitfield[], starved: boolean, keep: number, now: number): ParentInfo[] {
    // One pass over the window: each holder is scored once and kept if it is among the
    // best `keep` so far (a sorted insert into a short list, not a sort of the whole window).
    const best: Ranked[] = [];
    const n = task.order.length;
    const { start, stride, count } = scanWindow(n, this.options.scanLimit, this.random);
    for (let k = 0, slot = start; k < count; k++, slot = slot + stride >= n ? slot + stride - n : slot + stride) {
      const peer = task.order[slot]!;
      const bits = task.orderBits[slot]!;
      if (peer.corruptions > 0) distrusted.push(bits);
      if (peer.peerId === asker || keep === 0) continue;
      const useful = mine ? countUseful(bits, mine) : bits.count;
      if (useful === 0 && bits.complete) continue;
      // For a starved asker a holder of anything it lacks ranks above every holder of nothing it
      // lacks (yet), whatever the rest of the score: near a layer's end the few holders of its last
      // pieces are what it needs, and their share of the pieces (a few hundredths) weighed less than
      // the picks that everyone asking for those same pieces gave them. Not for every asker: early
      // in a fan-out, offering idle peers that hold nothing yet spreads the children (simulated
      // 1,000 peers, 64 MiB: 1.44 x T* as is, 1.48 with needed-first for all).
      keepRanked(best, keep, peer, starved && useful > 0, parentScore(peer, useful, task.pieceCount));
    }
    // One holder of a stranded piece the asker lacks, wherever the window fell, ranked with the
    // holders of what a starved asker lacks: it is the piece's one way out (rare-pieces.ts).
    if (keep > 0 && task.rare.size > 0) {
      const skip = (peer: PeerRecord): boolean => peer.corruptions > 0 || peer.failures > 0 || best.some((b) => b.peer === peer);
      const peer = task.rare.holderFor((i) => !mine?.has(i), asker, now, skip);
      const bits = peer && task.holders.get(peer.peerId);
      if (peer && bits) keepRanked(best, keep, peer, true, parentScore(peer, mine ? countUseful(bits, mine) : bits.count, task.pieceCount));
    }
    const parents = best.map(({ peer }) => {
      peer.picks++;
      return { peerId: peer.peerId, wireAddr: peer.wireAddr };
    });
    if (task.holders.has(asker)) task.load.offered(asker, best.map((b) => b.peer));
    if (parents.length > 0 && task.holders.has(asker)) rememberOffers(task, asker, parents);
    return parents;
  }
}

function rememberOffers(task: TaskAvailability, asker: string, parents: readonly ParentInfo[]): void {
  let offers = task.offered.get(asker);
  if (!offers) task.offered.set(asker, (offers = new Set()));
  for (const p of parents) {
    offers.delete(p.peerId);
    offers.add(p.peerId);
  }
  for (const oldest of offers) {
    if (offers.size <= MAX_OFFERS_PER_ASKER) break;
    offers.delete(oldest);
  }
}

/** One more holder of piece `i`. */
function hold(task: TaskAvailability, i: number, peer: PeerRecord, now: number): void {
  if (task.availability[i]!++ === 0) task.unheld--;
  task.rare.held(i, peer, task.availability[i]!, now);
}

/** One holder fewer of piece `i`. */
function release(task: TaskAvailability, i: number, peer: PeerRecord): void {
  if (--task.availability[i]! === 0) task.unheld++;
  task.rare.released(i, peer, task.availability[i]!);
}

/** A plain array (what JSON carries) of a typed one; Array.from goes through the iterator protocol, several times slower. */
function toArray(a: Uint32Array): number[] {
  const out = new Array<number>(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]!;
  return out;
}
