// One blob fetched piece by piece: from several parents over the wire (a window of blocks per
// parent sized from its measured throughput), from the seed for pieces the supernode grants, and
// from the registry when P2P stops making progress. Every piece is checked against its sha256
// before it is written, announced or persisted; a parent that sends a bad piece is banned. The
// verified bitfield is persisted so a restarted peer resumes, and the contiguous verified prefix is
// exposed to waiting clients through the PartialBlob. The whole blob is verified at commit.
// Over 400 lines because it is one state machine (p2p → fallback → done) whose sources share the
// same piece accounting (the seed-piece GET is in seed-piece.ts, a parent's window and
// assignments in parent-link.ts).
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Ingest } from '../../src/content-store.ts';
import type { Kv } from '../../src/db.ts';
import type { Digest } from '../../src/digest.ts';
import { PollenError, toPollenError } from '../../src/errors.ts';
import type { PartialBlob } from '../../src/partial-blob.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { BLOCK_BYTES, pieceRange } from '../../src/p2p/metainfo.ts';
import type { MetainfoBody, SyncResponse } from '../../src/p2p/supernode-api.ts';
import { releaseBlock } from '../../src/p2p/wire-connection.ts';
import type { WireDialer } from '../../src/p2p/wire-dialer.ts';
import type { BlobFetchRequest } from '../blob-downloader.ts';
import type { LocalPieces } from './local-pieces.ts';
import { ParentLink, type Assignment } from './parent-link.ts';
import { pickPiece } from './piece-picker.ts';
import { fetchSeedPiece } from './seed-piece.ts';
import { taskRequest } from './task-request.ts';
import type { SupernodeClient } from './supernode-client.ts';
import { fetchRangeFromUpstream } from '../mirror/upstream-ranges.ts';

export interface TransferTimings {
  readonly syncMs: number;
  /** A piece with no block for this long is taken back and asked elsewhere. */
  readonly pieceStallMs: number;
  /** No bytes from any source for this long: fall back to the registry. */
  readonly noProgressMs: number;
  /** The supernode unreachable for this long: fall back to the registry. */
  readonly supernodeDeadMs: number;
}

// Generous: on a starved machine a fallback that comes too early sends the registry every byte again.
// The fan-out bed (16 peers on 2 cores, every link full) lost syncs for over 15 s while P2P was
// still the best way forward: 31 fallbacks sent the registry 12 x S.
export const DEFAULT_TIMINGS: TransferTimings = { syncMs: 500, pieceStallMs: 8_000, noProgressMs: 30_000, supernodeDeadMs: 30_000 };
/**
 * Parents connected at once. Five left peers starved in simulation: a child keeps a parent while it
 * holds anything useful, so a child whose few parents were all busy crawled while other uploads
 * idled. It stays below the uploaders' slots (10 by default): with more children asking than slots
 * to serve them, the children that came last waited choked behind the ones that never leave
 * (simulated 1,000 peers, 256 MiB, 100 Mbit/s: all-done 1.55 x T* with 8 parents and 8 slots,
 * 1.43 x with 8 and 10; bench/sim).
 */
const MAX_PARENTS = 8;
/** A parent that has kept us choked (all its upload slots taken) this long makes room for a fresh one. */
const CHOKE_PATIENCE_MS = 1_000;
const SEED_CONCURRENCY = 3;
/** Parents reported per sync and list (the supernode reads no more); the rest go with the next. */
const MAX_REPORTS_PER_SYNC = 64;
/**
 * No verified piece for this long, with pieces missing: the peer tells the supernode it is starved,
 * and the seed backs up the parents that hold what it lacks but do not deliver it (all slots busy,
 * links full). Falling back to the registry (noProgressMs) is for when that fails too: on the
 * CPU-starved 16-host bed, 40 such fallbacks sent the registry 6.9 x S.
 */
const STARVED_MS = 5_000;

export interface TransferCounters {
  peer: number;
  seed: number;
  upstream: number;
}

export interface PersistedPieces {
  readonly size: number;
  readonly pieceSize: number;
  readonly pieces: string;
}

export interface TransferDeps {
  readonly client: SupernodeClient;
  readonly supernode: string;
  readonly pieces: LocalPieces;
  readonly kv: Kv<PersistedPieces>;
  readonly logger: Logger;
  /** Opens wire connections (TLS with the cluster key; skips banned addresses). */
  readonly dialer: WireDialer;
  readonly peerId: string;
  readonly onBytes: (from: keyof TransferCounters, bytes: number) => void;
  readonly onBan: (peerId: string) => void;
}

export class P2pTransfer {
  readonly counters: TransferCounters = { peer: 0, seed: 0, upstream: 0 };
  private readonly deps: TransferDeps;
  private readonly timings: TransferTimings;
  private readonly request: BlobFetchRequest;
  private readonly digest: Digest;
  private readonly partial: PartialBlob;
  private readonly ingest: Ingest;
  private meta: MetainfoBody;
  private readonly have: Bitfield;
  private readonly parents = new Map<string, ParentLink>();
  private readonly connecting = new Set<string>();
  private readonly banned = new Set<string>();
  private readonly badParents = new Set<string>();
  private readonly corruptParents = new Set<string>();
  private readonly inFlight = new Map<number, number>();
  private readonly writing = new Set<number>();
  private readonly seedFetches = new Set<number>();
  private availability: readonly number[] = [];
  private pendingHaves: number[] = [];
  private lastProgressAt = Date.now();
  private lastPieceAt = Date.now();
  private lastSyncOkAt = Date.now();
  private syncing: Promise<void> | undefined;
  private pumpQueued = false;
  private lastSyncAt = 0;
  private persistChain: Promise<void> = Promise.resolve();
  private ticker: NodeJS.Timeout | undefined;
  private mode: 'p2p' | 'fallback' | 'done' = 'p2p';
  private readonly started = Date.now();
  private readonly controller = new AbortController();
  private readonly seedController = new AbortController();
  private resolveDone!: () => void;
  readonly done: Promise<void> = new Promise((r) => (this.resolveDone = r));

  constructor(deps: TransferDeps, init: { request: BlobFetchRequest; meta: MetainfoBody; partial: PartialBlob; ingest: Ingest; have: Bitfield }, timings: TransferTimings = DEFAULT_TIMINGS) {
    this.deps = deps;
    this.timings = timings;
    this.request = init.request;
    this.digest = init.request.digest;
    this.meta = init.meta;
    this.partial = init.partial;
    this.ingest = init.ingest;
    this.have = init.have;
  }

  get size(): number {
    return this.meta.size;
  }

  get connectedParents(): number {
    return this.parents.size;
  }

  get pieces(): Bitfield {
    return this.have;
  }

  async readInto(target: Buffer, offset: number): Promise<void> {
    const n = await this.ingest.readAt(target, offset);
    if (n !== target.length) throw new PollenError('ERR_INTERNAL', `short read of ${this.digest}`);
  }

  start(): void {
    this.deps.pieces.addActive(this.digest, this);
    this.ticker = setInterval(() => this.tick(), Math.min(250, this.timings.syncMs));
    this.ticker.unref();
    if (this.have.complete) void this.finish();
    else void this.sync();
  }

  private tick(): void {
    if (this.mode !== 'p2p') return;
    const now = Date.now();
    // A slow or lost supernode matters only when the parents we have stop delivering too.
    const stalledFor = now - this.lastProgressAt;
    if (now - this.lastSyncOkAt > this.timings.supernodeDeadMs && stalledFor > this.timings.supernodeDeadMs / 2) return this.fallBack('supernode unreachable');
    if (now - this.lastProgressAt > this.timings.noProgressMs) return this.fallBack('no progress');
    for (const parent of this.parents.values()) {
      for (const a of parent.assignments.values()) {
        if (now - a.lastBlockAt > this.timings.pieceStallMs) {
          this.deps.logger.debug({ digest: this.digest, parent: parent.peerId, piece: a.index }, 'piece stalled; dropping parent');
          this.badParents.add(parent.peerId);
          parent.conn.destroy('stalled');
          break;
        }
      }
    }
    if (now - this.lastSyncAt >= this.timings.syncMs) void this.sync();
    this.pump();
  }

  private sync(): Promise<void> {
    if (this.syncing || this.mode !== 'p2p') return this.syncing ?? Promise.resolve();
    this.lastSyncAt = Date.now();
    const have = this.pendingHaves;
    this.pendingHaves = [];
    const badParents = takeReports(this.badParents);
    const corruptParents = takeReports(this.corruptParents);
    // Leases we hold come back with every answer, so count the whole allowance, not what is left.
    const wantSeed = SEED_CONCURRENCY;
    const starved = !this.have.complete && Date.now() - this.lastPieceAt > STARVED_MS;
    this.syncing = this.deps.client
      .sync(this.deps.supernode, this.digest, { peerId: this.deps.peerId, have, wantSeed, badParents, corruptParents, starved, knownHashes: this.knownHashes() })
      .then((res) => this.onSync(res))
      .catch(async (err: unknown) => {
        this.pendingHaves.push(...have);
        for (const p of badParents) this.badParents.add(p);
        for (const p of corruptParents) this.corruptParents.add(p);
        const e = toPollenError(err);
        if (e.kind === 'not_found') {
          // The supernode lost the peer or the task (a restart): register the task again.
          await this.deps.client.createTask(this.deps.supernode, taskRequest(this.deps.peerId, this.request, this.meta.size)).then(
            () => (this.lastSyncOkAt = Date.now()),
            () => {},
          );
        }
        this.deps.logger.debug({ digest: this.digest, err: e.message }, 'sync failed');
      })
      .finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private onSync(res: SyncResponse): void {
    this.lastSyncOkAt = Date.now();
    if (this.mode !== 'p2p') return;
    if (res.failed) return this.fallBack(`seed failed: ${res.failed}`);
    this.mergeHashes(res);
    this.availability = res.availability;
    // Make room for parents we do not know yet by dropping idle ones that hold nothing we lack or
    // keep us waiting for an upload slot.
    const fresh = res.parents.some((p) => !this.parents.has(p.peerId) && !this.connecting.has(p.peerId) && !this.banned.has(p.peerId));
    if (fresh) {
      const now = Date.now();
      for (const parent of this.parents.values()) {
        if (this.parents.size + this.connecting.size < MAX_PARENTS) break;
        if (parent.assignments.size > 0) continue;
        if (now - parent.chokedSince > CHOKE_PATIENCE_MS) parent.conn.destroy('kept us choked');
        else if (!this.isUseful(parent)) parent.conn.destroy('holds nothing we need');
      }
    }
    for (const p of res.parents) {
      if (this.parents.size + this.connecting.size >= MAX_PARENTS) break;
      if (!this.parents.has(p.peerId) && !this.connecting.has(p.peerId) && !this.banned.has(p.peerId)) this.connectParent(p.peerId, p.wireAddr);
    }
    for (const i of res.seedGrants) if (!this.have.has(i) && !this.seedFetches.has(i)) void this.fetchFromSeed(i);
    this.pump();
  }

  /** Takes the hashes the answer carries (from `hashesFrom` on); a malformed answer changes nothing. */
  private mergeHashes(res: SyncResponse): void {
    const from = res.hashesFrom ?? 0;
    if (!Number.isInteger(from) || from < 0 || from + res.hashes.length !== this.meta.pieceCount) return;
    const hashes = [...this.meta.hashes];
    res.hashes.forEach((h, k) => {
      if (typeof h === 'string' && hashes[from + k] == null) hashes[from + k] = h;
    });
    this.meta = { ...this.meta, hashes };
  }

  /** Leading piece hashes known (what the next sync need not send again). */
  private knownHashes(): number {
    let n = 0;
    while (n < this.meta.pieceCount && typeof this.meta.hashes[n] === 'string') n++;
    return n;
  }

  private connectParent(peerId: string, wireAddr: string): void {
    const conn = this.deps.dialer.dial(wireAddr, this.digest);
    if (!conn) return; // its address broke the wire protocol: banned for a while
    this.connecting.add(peerId);
    const parent = new ParentLink(peerId, conn);
    conn.on('close', () => {
      this.connecting.delete(peerId);
      if (this.parents.get(peerId) === parent) this.parents.delete(peerId);
      for (const a of parent.assignments.values()) this.release(a.index);
      parent.assignments.clear();
      this.pump();
    });
    // Bitfield and unchoke may arrive in the same read as the proof: listen before 'ready'.
    const pump = (): void => this.pumpSoon();
    conn.on('unchoke', () => {
      parent.chokedSince = Infinity;
      this.pump();
    });
    conn.on('choke', () => (parent.chokedSince = Date.now()));
    conn.on('have', pump);
    conn.on('bitfield', pump);
    conn.ready.then(
      () => {
        this.connecting.delete(peerId);
        if (this.mode !== 'p2p') return conn.destroy('transfer over');
        this.parents.set(peerId, parent);
        conn.interested();
        this.pump();
      },
      () => this.badParents.add(peerId),
    );
  }

  /** Writes the verified bitfield; writes are chained so an older snapshot never lands last. */
  private persist(): Promise<void> {
    this.persistChain = this.persistChain
      .then(() => this.deps.kv.put(this.digest, { size: this.meta.size, pieceSize: this.meta.pieceSize, pieces: this.have.toBase64() }))
      .catch(() => {});
    return this.persistChain;
  }

  private isUseful(parent: ParentLink): boolean {
    for (let i = 0; i < this.meta.pieceCount; i++) if (!this.have.has(i) && parent.conn.peerHas(i)) return true;
    return false;
  }

  private release(index: number): void {
    const n = (this.inFlight.get(index) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(index);
    else this.inFlight.set(index, n);
  }

  private hashKnown(i: number): boolean {
    return typeof this.meta.hashes[i] === 'string';
  }

  /**
   * One pump for a burst of events: every parent announces every piece it verifies, so with 16
   * parents a 256-piece blob brings thousands of 'have' messages, each of which used to scan every
   * piece for every parent.
   */
  private pumpSoon(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.mode !== 'p2p') return;
    // Holders among the connected parents, counted once per pump rather than per candidate piece.
    const connected = new Uint16Array(this.meta.pieceCount);
    for (const p of this.parents.values()) for (let i = 0; i < connected.length; i++) if (p.conn.peerHas(i)) connected[i]!++;
    for (const parent of this.parents.values()) {
      if (parent.conn.isClosed || parent.conn.peerChoking) continue;
      const window = parent.window;
      while (parent.outstanding < window) {
        let a = parent.unfinished();
        if (!a) {
          const index = pickPiece({
            have: this.have,
            inFlight: this.inFlight,
            canGet: (i) => parent.conn.peerHas(i) && this.hashKnown(i) && !this.writing.has(i),
            availability: (i) => (this.availability[i] ?? 0) + connected[i]!,
            mine: new Set(parent.assignments.keys()),
          });
          if (index === undefined) break;
          a = parent.assign(index, pieceRange(this.meta.size, this.meta.pieceSize, index).length);
          this.inFlight.set(index, (this.inFlight.get(index) ?? 0) + 1);
        }
        this.requestBlock(parent, a);
      }
    }
  }

  private requestBlock(parent: ParentLink, a: Assignment): void {
    const offset = a.nextOffset;
    const len = Math.min(BLOCK_BYTES, a.length - offset);
    a.nextOffset += len;
    parent.outstanding++;
    parent.conn.request(a.index, offset, len).then(
      (block) => {
        parent.outstanding--;
        const now = Date.now();
        parent.sample(len, now);
        if (parent.assignments.get(a.index) !== a) {
          releaseBlock(block);
          return this.pump();
        }
        a.blocks[offset / BLOCK_BYTES] = block;
        a.received += len;
        a.lastBlockAt = now;
        this.lastProgressAt = now;
        if (a.received === a.length) {
          parent.assignments.delete(a.index);
          this.release(a.index);
          // The blocks stay separate (no 1 MiB copy per piece): hashed in order, written vectored.
          const data = a.blocks as Buffer[];
          // The blocks' buffers go back to the wire's pool once stored (or refused): not before.
          const done = (): void => data.forEach(releaseBlock);
          if (!this.verify(a.index, data)) {
            done();
            this.deps.logger.warn({ digest: this.digest, parent: parent.peerId, piece: a.index }, 'bad piece from a parent; banning it');
            this.banned.add(parent.peerId);
            this.deps.onBan(parent.peerId);
            this.corruptParents.add(parent.peerId);
            parent.conn.destroy('sent a bad piece');
          } else {
            void this.storePiece(a.index, data, 'peer', done);
          }
        }
        this.pump();
      },
      () => {
        parent.outstanding = Math.max(0, parent.outstanding - 1);
        if (parent.assignments.get(a.index) === a) {
          parent.assignments.delete(a.index);
          this.release(a.index);
        }
      },
    );
  }

  private verify(index: number, data: readonly Buffer[]): boolean {
    const want = this.meta.hashes[index];
    if (typeof want !== 'string') return false;
    const hash = createHash('sha256');
    for (const b of data) hash.update(b);
    return hash.digest('hex') === want;
  }

  private async fetchFromSeed(index: number): Promise<void> {
    this.seedFetches.add(index);
    this.inFlight.set(index, (this.inFlight.get(index) ?? 0) + 1);
    try {
      const chunks = await fetchSeedPiece(this.deps.client, {
        supernode: this.deps.supernode,
        digest: this.digest,
        index,
        length: pieceRange(this.meta.size, this.meta.pieceSize, index).length,
        stallMs: this.timings.pieceStallMs,
        signal: AbortSignal.any([this.seedController.signal, this.controller.signal]),
        onChunk: () => (this.lastProgressAt = Date.now()),
      });
      if (!this.hashKnown(index)) await this.sync();
      if (!this.verify(index, chunks)) throw new PollenError('ERR_PIECE_DIGEST_MISMATCH', `seed piece ${index} of ${this.digest} failed verification`);
      await this.storePiece(index, chunks, 'seed');
    } catch (err) {
      if (this.mode === 'p2p') this.deps.logger.debug({ digest: this.digest, piece: index, err: (err as Error).message }, 'seed piece failed');
    } finally {
      this.seedFetches.delete(index);
      this.release(index);
      void this.sync();
      this.pump();
    }
  }

  /** Writes a verified piece and announces it; `written` runs once `data` is no longer needed. */
  private async storePiece(index: number, data: readonly Buffer[], from: keyof TransferCounters, written?: () => void): Promise<void> {
    if (this.have.has(index) || this.writing.has(index) || this.mode === 'done') return written?.();
    this.writing.add(index);
    try {
      await this.partial.writeAt(data, index * this.meta.pieceSize);
      this.have.set(index);
    } catch (err) {
      this.deps.logger.warn({ digest: this.digest, err: (err as Error).message }, 'could not write a piece');
      return;
    } finally {
      this.writing.delete(index);
      written?.();
    }
    const bytes = data.reduce((n, b) => n + b.length, 0);
    this.counters[from] += bytes;
    this.deps.onBytes(from, bytes);
    this.lastProgressAt = this.lastPieceAt = Date.now();
    this.pendingHaves.push(index);
    this.deps.pieces.announce(this.digest, index);
    this.partial.setAvailable(Math.min(this.meta.size, this.have.prefixLength() * this.meta.pieceSize));
    await this.persist();
    this.deps.logger.debug({ digest: this.digest, piece: index, from }, 'piece verified');
    if (this.have.complete) await this.finish();
    else if (this.pendingHaves.length >= 4) void this.sync();
  }

  private fallBack(reason: string): void {
    if (this.mode !== 'p2p') return;
    this.mode = 'fallback';
    this.deps.logger.info({ digest: this.digest, reason, missing: this.meta.pieceCount - this.have.count }, 'P2P stalled; fetching the rest from the registry');
    this.closeParents();
    this.seedController.abort();
    void this.fetchRestFromUpstream();
  }

  private async fetchRestFromUpstream(): Promise<void> {
    try {
      let i = 0;
      while (i < this.meta.pieceCount) {
        if (this.have.has(i)) {
          i++;
          continue;
        }
        let j = i;
        while (j + 1 < this.meta.pieceCount && !this.have.has(j + 1)) j++;
        const start = i * this.meta.pieceSize;
        const end = Math.min(this.meta.size, (j + 1) * this.meta.pieceSize) - 1;
        await fetchRangeFromUpstream(this.request.upstream, this.digest, { start, end }, this.controller.signal, async (piece, data) => {
          if (this.mode === 'done') throw new PollenError('ERR_ABORTED', 'transfer already finishing');
          const index = i + piece;
          if (this.hashKnown(index) && !this.verify(index, [data])) {
            throw new PollenError('ERR_PIECE_DIGEST_MISMATCH', `registry piece ${index} of ${this.digest} does not match the seed's hash`);
          }
          await this.storePieceFallback(index, data);
        }, this.meta.pieceSize);
        i = j + 1;
      }
      if (!this.have.complete) throw new PollenError('ERR_INTERNAL', `blob ${this.digest} incomplete after the registry fallback`);
      await this.finish();
    } catch (err) {
      await this.abandon(toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE'));
    }
  }

  private async storePieceFallback(index: number, data: Buffer): Promise<void> {
    if (this.have.has(index)) return;
    await this.partial.writeAt(data, index * this.meta.pieceSize);
    this.have.set(index);
    this.counters.upstream += data.length;
    this.deps.onBytes('upstream', data.length);
    void this.persist();
    this.deps.pieces.announce(this.digest, index);
    this.partial.setAvailable(Math.min(this.meta.size, this.have.prefixLength() * this.meta.pieceSize));
  }

  private async finish(): Promise<void> {
    if (this.mode === 'done') return;
    this.mode = 'done';
    this.stop();
    try {
      await this.partial.commit();
      this.deps.pieces.markCommitted(this.digest, this.meta.size);
      this.deps.pieces.removeActive(this.digest, this);
      await this.persistChain;
      await this.deps.kv.del(this.digest).catch(() => {});
      const have = this.pendingHaves;
      this.pendingHaves = [];
      void this.deps.client.sync(this.deps.supernode, this.digest, { peerId: this.deps.peerId, have, wantSeed: 0, badParents: [] }).catch(() => {});
      this.deps.logger.info({ digest: this.digest, size: this.meta.size, ms: Date.now() - this.started, from: { ...this.counters } }, 'blob committed');
    } catch (err) {
      this.deps.pieces.removeActive(this.digest, this);
      await this.deps.kv.del(this.digest).catch(() => {});
      this.deps.logger.warn({ digest: this.digest, err: (err as Error).message }, 'blob failed verification at commit; nothing committed');
    } finally {
      this.resolveDone();
    }
  }

  private async abandon(error: PollenError): Promise<void> {
    // Already finishing (the last piece came from P2P while the fallback ran): nothing to abandon.
    if (this.mode === 'done') return;
    this.mode = 'done';
    this.stop();
    this.deps.pieces.removeActive(this.digest, this);
    this.deps.logger.warn({ digest: this.digest, code: error.code, err: error.message }, 'blob download failed; partial state kept for a resume');
    await this.partial.fail(error, { keepPartial: true });
    this.resolveDone();
  }

  /** Stops the transfer (peer shutting down): the verified pieces stay for a resume. */
  async close(): Promise<void> {
    await this.abandon(new PollenError('ERR_CLOSED', 'peer shutting down'));
  }

  private closeParents(): void {
    for (const p of this.parents.values()) p.conn.destroy('transfer over');
    this.parents.clear();
  }

  private stop(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.controller.abort();
    this.closeParents();
  }
}

/** Up to MAX_REPORTS_PER_SYNC entries of `set` (what a supernode reads), taken out of it. */
function takeReports(set: Set<string>): string[] {
  const out: string[] = [];
  for (const id of set) {
    if (out.length >= MAX_REPORTS_PER_SYNC) break;
    out.push(id);
    set.delete(id);
  }
  return out;
}
