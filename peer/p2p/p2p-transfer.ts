// One blob fetched piece by piece: from several parents over the wire (a window of blocks per
// parent sized from its measured throughput), from the seed for pieces the supernode grants, and
// from the registry when P2P stops making progress. Every piece is checked against its sha256
// before it is written, announced or persisted; a parent that sends a bad piece is banned. The
// verified bitfield is persisted (once a second) so a restarted peer resumes; the contiguous
// verified prefix is exposed to clients through the PartialBlob. The whole blob is verified at
// commit, against its digest unless the supernode vouched for the piece hashes (transfer-vouch.ts).
// The parts: piece-ledger.ts (piece accounting), parent-pool.ts and parent-link.ts (parents, their
// windows), parent-requests.ts and piece-picker.ts (what is asked of them), transfer-state.ts,
// seed-piece.ts and seed-grants.ts (the seed), transfer-proofs.ts, bitfield-record.ts,
// transfer-sync.ts (the supernode), upstream-fallback.ts; time and every outside party come
// through transfer-seams.ts, so unit tests drive it on a manual clock and bench/sim runs this code.
import { delayToGrid, steadyClock, type Clock, type Timer } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { PollenError, toPollenError } from '../../src/errors.ts';
import type { Bitfield } from '../../src/p2p/bitfield.ts';
import type { ProofSet } from '../../src/p2p/piece-proof.ts';
import type { MetainfoBody, SyncResponse } from '../../src/p2p/supernode-api.ts';
import type { BlobFetchRequest } from '../blob-downloader.ts';
import { fetchRangeFromUpstream } from '../mirror/upstream-ranges.ts';
import { BitfieldRecord } from './bitfield-record.ts';
import { MAX_PARENTS, ParentPool } from './parent-pool.ts';
import { PieceLedger, SEED_SOURCE, type DuplicateCause, type TransferStats } from './piece-ledger.ts';
import { ParentRequests } from './parent-requests.ts';
import { ENDGAME_COPIES } from './piece-picker.ts';
import { HOST_SEED_LEASES, PARENT_FEEDING_MS, SeedGrants, seedLeasesWanted } from './seed-grants.ts';
import { taskRequest } from './task-request.ts';
import { NO_KEY, TransferProofs, type HashPort } from './transfer-proofs.ts';
import { TransferVouch } from './transfer-vouch.ts';
import { TransferState } from './transfer-state.ts';
import { fetchMissingFromUpstream } from './upstream-fallback.ts';
import { hashKnown, knownHashCount, STARVED_MS, TransferSync, withAnsweredHashes } from './transfer-sync.ts';
import { DEFAULT_TIMINGS, PROCESS_TICK_PHASE_MS, sha256Piece, tickMs, type BlobReader, type BlobTarget, type PieceHasher, type TransferCounters, type TransferDeps, type TransferTimings } from './transfer-seams.ts';

export class P2pTransfer {
  readonly counters: TransferCounters = { peer: 0, seed: 0, upstream: 0 };
  readonly state = new TransferState();
  private readonly deps: TransferDeps;
  private readonly clock: Clock;
  private readonly hashPiece: PieceHasher;
  private readonly timings: TransferTimings;
  private readonly request: BlobFetchRequest;
  private readonly digest: Digest;
  readonly size: number;
  readonly pieceSize: number;
  private readonly partial: BlobTarget;
  private readonly ingest: BlobReader;
  private meta: MetainfoBody;
  private readonly ledger: PieceLedger;
  /** Bytes received and thrown away by cause, fallbacks, stalls, declined seed grants. */
  readonly stats: Readonly<TransferStats>;
  private readonly supernodeSync: TransferSync;
  private readonly pool: ParentPool;
  private readonly seed: SeedGrants;
  private readonly requests: ParentRequests;
  private readonly proving: TransferProofs;
  private readonly vouch: TransferVouch;
  private availability: readonly number[] = [];
  private lastProgressAt: number;
  private lastPieceAt: number;
  /** Piece hashes learned (sync answers, seed pieces, proofs, a hash list): with the ledger's `freed`, the pick epoch (see ParentRequests.pump). */
  private hashUpdates = 0;
  private readonly record: BitfieldRecord;
  private ticker: Timer | undefined;
  private readonly started: number;
  private first: SyncResponse | undefined;
  private readonly controller = new AbortController();
  private resolveDone!: () => void;
  readonly done: Promise<void> = new Promise((r) => (this.resolveDone = r));

  /** `init.first`: the first sync's answer, which came with the task (TaskAnswer); `hashList`: see transfer-vouch.ts. */
  constructor(deps: TransferDeps, init: { request: BlobFetchRequest; meta: MetainfoBody; partial: BlobTarget; ingest: BlobReader; have: Bitfield; first?: SyncResponse; hashList?: string }, timings: TransferTimings = DEFAULT_TIMINGS) {
    this.deps = deps;
    this.clock = deps.clock ?? steadyClock;
    this.hashPiece = deps.hashPiece ?? sha256Piece;
    this.timings = timings;
    this.request = init.request;
    this.first = init.first;
    this.digest = init.request.digest;
    this.meta = init.meta;
    this.size = init.meta.size;
    this.pieceSize = init.meta.pieceSize;
    this.partial = init.partial;
    this.ingest = init.ingest;
    this.ledger = new PieceLedger(init.have);
    this.stats = this.ledger.stats;
    this.vouch = new TransferVouch(this.meta.pieceCount, init.have.count > 0, () => this.partial.forgoDigest(), init.hashList);
    const hashes: HashPort = { known: (i) => this.meta.hashes[i], learn: (i, hash) => this.onHashes({ hashesFrom: i, hashes: [hash] }), learnAll: (all) => this.onHashes({ hashes: all }), vouched: () => this.vouch.list };
    this.proving = new TransferProofs(this.meta, deps.proofs ?? NO_KEY, hashes, { logger: deps.logger, ban: (parent) => this.requests.ban(parent, 'sent a false hash list') });
    this.record = new BitfieldRecord({ kv: deps.kv, clock: this.clock }, { digest: this.digest, size: this.meta.size, pieceSize: this.meta.pieceSize, have: this.ledger.have });
    this.started = this.lastProgressAt = this.lastPieceAt = this.clock.now();
    this.supernodeSync = new TransferSync({
      client: deps.client,
      supernode: deps.supernode,
      digest: this.digest,
      clock: this.clock,
      logger: deps.logger,
      wanted: () => this.state.phase === 'p2p',
      poolFull: () => this.pool.room(this.requests.uselessPatienceMs()) === 0,
      request: () => ({
        ...this.pool.takeReports(),
        // Leases we hold come back with every answer, so count the whole allowance, not what is left.
        ...this.seedAsk(),
        declined: this.seed.takeDeclines(),
        wantParents: this.pool.room(this.requests.uselessPatienceMs()),
        // With piece proofs every piece we may ask for comes with its hash: none from the supernode.
        knownHashes: this.proving.askSupernode(this.pool.ready(), this.ledger.have) ? knownHashCount(this.meta) : this.meta.pieceCount,
        ...(this.vouch.wants(this.ledger.have.count) ? { wantHashList: true } : {}),
      }),
      unsent: (r) => {
        this.pool.restoreReports({ badParents: r.badParents, corruptParents: r.corruptParents ?? [] });
        this.seed.restoreDeclines(r.declined ?? []);
      },
      recreateTask: async () => {
        const again = await this.deps.client.createTask(this.deps.supernode, { ...taskRequest(this.deps.peerId, this.request, this.meta.size), pieceSize: this.meta.pieceSize });
        // A supernode that lost the blob begins it again, maybe in the other layout: our indexes mean other bytes there.
        const ours = again.pieceSize === this.meta.pieceSize;
        if (!ours) this.fallBack('the supernode gave the blob another piece layout');
        return ours;
      },
      onAnswer: (res) => this.onSync(res),
    });
    this.pool = new ParentPool(
      {
        dialer: deps.dialer,
        clock: this.clock,
        ...(deps.parentBans ? { bans: deps.parentBans } : {}),
        events: {
          onReady: () => this.requests.pump(),
          onClose: (parent) => this.requests.parentClosed(parent),
          onPieces: () => this.requests.pumpSoon(),
          onUnchoke: () => this.requests.pump(),
          onProof: (parent, proof) => this.proving.fromParent(parent, proof),
          onHashes: (parent, list) => this.proving.fromList(parent, list),
          wantHashes: () => this.proving.wantList(),
          onDiscarded: (index, bytes, cancelled) => this.requests.discarded(index, bytes, cancelled),
          onDial: () => this.ledger.stats.dials++,
          wanted: () => this.state.phase === 'p2p',
        },
      },
      // No more parents than pieces still lacking (ENDGAME_COPIES at least, for a last piece's second
      // copy): the one-piece config blob of an image dialled ~5 parents per host on the bed (N = 16),
      // a TLS and two wire handshakes each for 741 bytes.
      { digest: this.digest, layout: this.meta, have: this.ledger.have, maxParents: () => Math.min(deps.maxParents?.() ?? MAX_PARENTS, Math.max(ENDGAME_COPIES, this.meta.pieceCount - this.ledger.have.count)) },
    );
    this.requests = new ParentRequests({
      clock: this.clock,
      logger: deps.logger,
      digest: this.digest,
      ledger: this.ledger, pool: this.pool,
      random: deps.random ?? Math.random,
      meta: () => this.meta,
      phase: () => this.state.phase,
      availability: () => this.availability,
      hashUpdates: () => this.hashUpdates,
      verify: (index, data) => this.verify(index, data),
      vouches: (parent) => this.proving.vouches(parent),
      store: (index, data, written) => void this.storePiece(index, data, 'peer', written),
      wasted: (cause, bytes) => this.wasted(cause, bytes),
      progressed: (now) => (this.lastProgressAt = now),
      onBan: (peerId) => this.deps.onBan(peerId),
    });
    this.seed = new SeedGrants({
      client: deps.client,
      supernode: deps.supernode,
      digest: this.digest,
      clock: this.clock,
      logger: deps.logger,
      ledger: this.ledger,
      pool: this.pool,
      pieceStallMs: timings.pieceStallMs,
      downloads: deps.downloads,
      signal: this.controller.signal,
      onEvent: deps.onEvent,
      meta: () => this.meta,
      inP2p: () => this.state.phase === 'p2p',
      sync: () => this.supernodeSync.sync(),
      verify: (index, data) => this.verify(index, data),
      learnHash: (index, hash, signature) => this.proving.fromSeed(index, hash, signature),
      learnList: (hashList) => this.vouch.learn(hashList),
      store: (index, data, written) => this.storePiece(index, data, 'seed', written),
      wasted: (cause, bytes) => this.wasted(cause, bytes),
      progressed: () => (this.lastProgressAt = this.clock.now()),
      settled: () => {
        if (this.supernodeSync.due()) void this.supernodeSync.sync();
        this.requests.pump();
      },
    });
  }

  /** Parents connected and ready (a gauge for the metrics). */
  get connectedParents(): number {
    return [...this.pool.ready()].length;
  }

  /** Proofs of the pieces' hashes, handed on to children (LocalPieces). */
  get proofs(): ProofSet {
    return this.proving.kept;
  }

  get pieces(): Bitfield {
    return this.ledger.have;
  }

  async readInto(target: Buffer, offset: number): Promise<void> {
    const n = await this.ingest.readAt(target, offset);
    if (n !== target.length) throw new PollenError('ERR_INTERNAL', `short read of ${this.digest}`);
  }

  start(): void {
    this.deps.pieces.addActive(this.digest, this);
    this.scheduleTick();
    const first = this.first;
    this.first = undefined;
    if (this.ledger.have.complete) void this.finish();
    else if (first) this.supernodeSync.answered(first);
    else void this.supernodeSync.sync();
  }

  /** The next tick, on the process's grid of ticks (see PROCESS_TICK_PHASE_MS). */
  private scheduleTick(): void {
    this.ticker = this.clock.setTimeout(() => {
      this.tick();
      if (!this.state.over) this.scheduleTick();
    }, delayToGrid(this.clock.now(), this.deps.tickPhaseMs ?? PROCESS_TICK_PHASE_MS, tickMs(this.timings)));
  }

  private tick(): void {
    if (this.state.phase !== 'p2p') return;
    const now = this.clock.now();
    // A slow or lost supernode matters only when the parents we have stop delivering too.
    const stalledFor = now - this.lastProgressAt;
    if (now - this.supernodeSync.lastOkAt > this.timings.supernodeDeadMs && stalledFor > this.timings.supernodeDeadMs / 2) return this.fallBack('supernode unreachable');
    const refused = this.supernodeSync.refusedSince;
    if (refused !== undefined && now - refused >= this.timings.supernodeRefusedMs && stalledFor >= this.timings.supernodeRefusedMs) return this.fallBack('supernode down');
    if (now - this.lastProgressAt > this.timings.noProgressMs) return this.fallBack('no progress');
    for (const { parent, piece } of this.pool.stalled(this.timings.pieceStallMs)) {
      this.deps.logger.debug({ digest: this.digest, parent: parent.peerId, piece }, 'piece stalled; dropping parent');
      this.ledger.stats.stalls++;
      this.deps.onEvent?.({ kind: 'stall' });
      this.pool.dropStalled(parent);
    }
    if (this.supernodeSync.periodicDue(this.timings.syncMs, this.ledger.have.count, this.meta.pieceCount, tickMs(this.timings))) void this.supernodeSync.sync();
    this.requests.pump();
  }

  private onSync(res: SyncResponse): void {
    this.ledger.stats.syncs++;
    if (this.state.phase !== 'p2p') return;
    if (res.failed) return this.fallBack(`seed failed: ${res.failed}`);
    this.vouch.learn(res.hashList);
    this.onHashes(res);
    // An empty availability is the supernode's "unchanged" (it sends it at most once a second).
    if (res.availability.length > 0) this.availability = res.availability;
    this.pool.offer(res.parents, this.requests.uselessPatienceMs());
    for (const i of res.seedGrants) this.seed.grant(i);
    this.requests.pump();
  }

  /** The sync's ask of the seed: its leases (seedLeasesWanted), and whether no piece came for STARVED_MS. */
  private seedAsk(): { wantSeed: number; starved: boolean } {
    const starved = !this.ledger.have.complete && this.clock.now() - this.lastPieceAt > STARVED_MS;
    return { wantSeed: seedLeasesWanted(this.deps.seedLeases?.() ?? HOST_SEED_LEASES, { children: this.deps.children?.(), fedByParents: this.pool.fedWithin(PARENT_FEEDING_MS), starved }), starved };
  }

  private wasted(cause: DuplicateCause, bytes: number): void {
    if (bytes <= 0) return;
    this.ledger.wasted(cause, bytes);
    this.deps.onEvent?.({ kind: 'duplicate', cause, bytes });
  }

  private onHashes(res: Pick<SyncResponse, 'hashes' | 'hashesFrom'>): void {
    this.meta = withAnsweredHashes(this.meta, res);
    this.hashUpdates++;
  }

  private verify(index: number, data: readonly Buffer[]): boolean {
    const want = this.meta.hashes[index];
    return typeof want === 'string' && this.hashPiece(data) === want;
  }

  /**
   * Writes a verified piece and announces it; `written` runs once `data` is no longer needed. The
   * other copies of the piece still coming (endgame, a seed grant) are cancelled. The one store path
   * of every source: a registry piece's write error fails the fallback, a P2P one only skips the piece.
   */
  private async storePiece(index: number, data: Buffer | readonly Buffer[], from: keyof TransferCounters, written?: () => void): Promise<void> {
    const fallback = from === 'upstream';
    const bytes = Buffer.isBuffer(data) ? data.length : data.reduce((n, b) => n + b.length, 0);
    if ((this.state.over && !fallback) || !this.ledger.beginWrite(index)) {
      this.wasted(fallback ? 'fallback-overlap' : this.ledger.copyCause(index), bytes);
      return written?.();
    }
    this.cancelCopies(index, from);
    let stored = false;
    try {
      this.vouch.wrote(index, fallback ? undefined : this.meta.hashes[index]);
      await this.partial.writeAt(data, index * this.meta.pieceSize);
      stored = true;
    } catch (err) {
      if (fallback) throw err;
      this.deps.logger.warn({ digest: this.digest, err: (err as Error).message }, 'could not write a piece');
      return;
    } finally {
      this.ledger.endWrite(index, stored);
      written?.();
    }
    this.pool.stored(index);
    this.counters[from] += bytes;
    this.deps.onBytes(from, bytes);
    this.deps.pieces.announce(this.digest, index);
    this.partial.setAvailable(Math.min(this.meta.size, this.ledger.have.prefixLength() * this.meta.pieceSize));
    if (fallback) return this.record.save();
    this.lastProgressAt = this.lastPieceAt = this.clock.now();
    this.supernodeSync.verified(index);
    this.record.save();
    this.deps.logger.debug({ digest: this.digest, piece: index, from }, 'piece verified');
    if (this.ledger.have.complete) await this.finish();
    else if (this.supernodeSync.havesDue(this.meta.pieceSize, this.ledger.have.count, this.meta.pieceCount)) void this.supernodeSync.sync();
  }

  /** Cancels the requests for `index` still out to parents and the seed (its copy from `from` is being stored). */
  private cancelCopies(index: number, from: keyof TransferCounters): void {
    const cause = this.ledger.copyCause(index);
    for (const source of this.ledger.holders(index)) {
      if (source !== SEED_SOURCE) this.requests.cancel(index, source, cause);
      // The seed's own copy is the one being stored (its fetch lets go of the piece once stored).
      else if (from !== 'seed') this.seed.cancel(index);
    }
  }

  private fallBack(reason: string): void {
    if (!this.state.tryMove('fallback')) return;
    this.ledger.stats.fallbacks++;
    this.deps.onEvent?.({ kind: 'fallback' });
    this.deps.logger.info({ digest: this.digest, reason, missing: this.meta.pieceCount - this.ledger.have.count }, 'P2P stalled; fetching the rest from the registry');
    this.pool.closeAll();
    this.seed.stop();
    void fetchMissingFromUpstream({
      fetchRange: this.deps.fetchUpstream ?? fetchRangeFromUpstream,
      upstream: this.request.upstream,
      digest: this.digest,
      meta: this.meta,
      have: this.ledger.have,
      signal: this.controller.signal,
      running: () => !this.state.over,
      received: (n) => this.ledger.received(n),
      matches: (index, data) => !hashKnown(this.meta, index) || this.verify(index, [data]),
      store: (index, data) => this.storePiece(index, data, 'upstream'),
    }).then(
      () => this.finish(),
      (err: unknown) => this.abandon(toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE')),
    );
  }

  private async finish(): Promise<void> {
    if (!this.state.tryMove('done')) return;
    this.stop();
    try {
      const vouched = this.vouch.vouches(this.meta);
      await this.partial.commit({ vouched });
      this.deps.pieces.markCommitted(this.digest, this.meta.size, this.proving.committed());
      this.deps.pieces.removeActive(this.digest, this);
      await this.record.remove();
      void this.supernodeSync.reportComplete(this.meta.pieceCount);
      const s = this.ledger.stats;
      this.deps.logger.info(
        { digest: this.digest, size: this.meta.size, ms: this.clock.now() - this.started, vouched, from: { ...this.counters }, received: s.receivedBytes, duplicates: { ...s.duplicateBytes }, fallbacks: s.fallbacks, stalls: s.stalls, starvedGrants: s.starvedGrants, dials: s.dials, syncs: s.syncs },
        'blob committed',
      );
    } catch (err) {
      this.deps.pieces.removeActive(this.digest, this);
      await this.record.remove();
      this.deps.logger.warn({ digest: this.digest, err: (err as Error).message }, 'blob failed verification at commit; nothing committed');
    } finally {
      this.resolveDone();
    }
  }

  private async abandon(error: PollenError): Promise<void> {
    // Already finishing (the last piece came from P2P while the fallback ran): nothing to abandon.
    if (!this.state.tryMove('failed')) return;
    this.stop();
    this.deps.pieces.removeActive(this.digest, this);
    this.deps.logger.warn({ digest: this.digest, code: error.code, err: error.message }, 'blob download failed; partial state kept for a resume');
    await this.partial.fail(error, { keepPartial: true }).then(() => this.record.flush());
    this.resolveDone();
  }

  /** Stops the transfer (peer shutting down): the verified pieces stay for a resume. */
  async close(): Promise<void> {
    await this.abandon(new PollenError('ERR_CLOSED', 'peer shutting down'));
  }

  private stop(): void {
    this.ticker?.cancel();
    this.controller.abort();
    this.pool.closeAll();
  }
}
