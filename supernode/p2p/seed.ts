// The seed ("back-to-source"): fetches a blob from a configured registry once, hashing each piece as
// it streams in, and serves pieces to peers as soon as they have arrived (PartialBlob streams the
// growing prefix); the whole blob is checked against its digest at the end, and a blob that fails is
// purged with its metainfo. It gives metainfo and pieces only to a peer admitted for the blob: one
// whose requester the registry lets read it (seed-admission.ts), or one a preheat job sent for it.
// The registry's declared size must match what the peer saw and stay under a cap; bytes between
// socket and disk share one fixed budget across all fetches (seed-buffers.ts); a failed attempt is
// cleaned up before the next one opens the same ingest. What the seed reads from registries shares
// one bandwidth cap (`--seed-registry-rate`), paced chunk by chunk across all fetches.
import { createHash, type Hash } from 'node:crypto';
import type { Logger } from 'pino';
import { steadyClock, type Clock } from '../../src/clock.ts';
import type { ContentStore } from '../../src/content-store.ts';
import type { Digest } from '../../src/digest.ts';
import { PollenError, toPollenError } from '../../src/errors.ts';
import type { Kv } from '../../src/db.ts';
import type { RegistryHosts } from '../../src/oci/registry-hosts.ts';
import { PartialBlob } from '../../src/partial-blob.ts';
import { pooledRangeBody, type PooledBody } from '../../src/pooled-body.ts';
import { isLayout, layoutFor, pieceCountFor, pieceRange, pieceSizeForSwarm, namedLayout, SMALL_PIECES_FROM_PEERS, type Metainfo } from '../../src/p2p/metainfo.ts';
import type { TokenBucket } from '../../src/p2p/token-bucket.ts';
import { pacedChunks, rateLimiter } from '../../src/rate/throttle.ts';
import type { MetainfoBody, TaskRequest, TaskUpstream } from '../../src/p2p/supernode-api.ts';
import { DEFAULT_SEED_MAX_BLOB_BYTES } from '../config.ts';
import { SeedAdmission, type SeedAdmissionOptions } from './seed-admission.ts';
import { BufferBudget } from './seed-buffers.ts';
import { blobStatusError, registrySeedFetcher, type SeedBody, type SeedFetcher } from './seed-fetcher.ts';
import { SeedGrants, type SeedGrantsOptions } from './seed-grants.ts';
import { resolveSeedSource, type SeedSource } from './seed-upstreams.ts';
import { hashHeldBlob } from './seed-held.ts';

const WRITE_BATCH_BYTES = 1 << 20;

export interface SeedOptions {
  /** A larger size declared by the registry is refused (ERR_BLOB_TOO_LARGE). */
  readonly maxBlobBytes: number;
  /** Registry bytes held in memory at once, across all fetches. */
  readonly bufferBytes: number;
  /** A failed task is remembered this long so syncing peers learn of the failure, then retried afresh. */
  readonly failedTtlMs: number;
  readonly admission: Partial<SeedAdmissionOptions>;
  readonly grants: Partial<SeedGrantsOptions>;
  /** Bytes per second read from registries, all fetches together; 0 = unlimited. */
  readonly registryBytesPerSecond: number;
  /** Live peers from which a blob the seed begins gets SMALL_PIECE_BYTES pieces (metainfo.ts). */
  readonly smallPiecesFromPeers: number;
}

export const DEFAULT_SEED_OPTIONS: SeedOptions = { maxBlobBytes: DEFAULT_SEED_MAX_BLOB_BYTES, bufferBytes: 16 << 20, failedTtlMs: 10_000, admission: {}, grants: {}, registryBytesPerSecond: 0, smallPiecesFromPeers: SMALL_PIECES_FROM_PEERS };

type SeedState =
  | { name: 'fetching'; partial: PartialBlob }
  | { name: 'complete' }
  /** `cleaned` settles once the attempt's ingest is gone: the next attempt opens it only then. */
  | { name: 'failed'; error: PollenError; cleaned: Promise<void> };

export interface SeedTask {
  readonly meta: { digest: Digest; size: number; pieceSize: number; pieceCount: number; hashes: Array<string | null> };
  state: SeedState;
  /** pieceHashList of a complete task, once a task answer needed it (routes-p2p.ts). */
  hashList?: string;
}

export interface SeedCounters {
  registryBytes: number;
  /** Bytes of pieces sent whole to peers (served): not those of a piece the peer gave up on or that was cut short. */
  servedBytes: number;
}

export class Seed {
  private readonly store: ContentStore;
  private readonly kv: Kv<MetainfoBody>;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly hosts: RegistryHosts;
  private readonly fetcher: SeedFetcher;
  /** Peers registered now: how large the swarm of a blob begun now may grow (its layout). */
  private readonly livePeers: () => number;
  private readonly options: SeedOptions;
  private readonly admission: SeedAdmission;
  private readonly grants: SeedGrants;
  readonly buffers: BufferBudget;
  private readonly registryRate: TokenBucket;
  private readonly tasks = new Map<Digest, SeedTask>();
  private readonly starting = new Map<Digest, Promise<SeedTask>>();
  private readonly controller = new AbortController();
  readonly counters: SeedCounters = { registryBytes: 0, servedBytes: 0 };

  constructor(
    deps: { store: ContentStore; kv: Kv<MetainfoBody>; logger: Logger; hosts: RegistryHosts; clock?: Clock; fetcher?: SeedFetcher; livePeers?: () => number },
    options: Partial<SeedOptions> = {},
  ) {
    this.store = deps.store;
    this.kv = deps.kv;
    this.logger = deps.logger.child({ component: 'seed' });
    this.clock = deps.clock ?? steadyClock;
    this.hosts = deps.hosts;
    this.fetcher = deps.fetcher ?? registrySeedFetcher();
    this.livePeers = deps.livePeers ?? (() => 0);
    this.options = { ...DEFAULT_SEED_OPTIONS, ...options };
    this.admission = new SeedAdmission({ fetcher: this.fetcher, clock: this.clock }, this.options.admission);
    this.grants = new SeedGrants({ clock: this.clock }, this.options.grants);
    this.buffers = new BufferBudget({ limitBytes: this.options.bufferBytes });
    this.registryRate = rateLimiter({ clock: this.clock }, this.options.registryBytesPerSecond);
  }

  /** Reloads the metainfo of blobs the seed holds whole; drops metainfo of unfinished ones. */
  async start(): Promise<void> {
    for await (const [digest, meta] of this.kv.entries()) {
      const info = await this.store.stat(meta.digest);
      // Metainfo of a layout no longer given (written before DEFAULT_PIECE_BYTES changed) is dropped:
      // peers refuse it; begin() hashes the held blob again in a current layout.
      if (info && info.size === meta.size && heldLayout(meta)) {
        this.tasks.set(meta.digest, { meta: { ...meta, hashes: [...meta.hashes] }, state: { name: 'complete' } });
      } else {
        await this.kv.del(digest);
      }
    }
    this.logger.info({ blobs: this.tasks.size, registries: this.hosts.hosts }, 'seed metainfo loaded');
    if (this.hosts.hosts.length === 0) this.logger.warn('the seed may reach no registry: every task is refused and peers pull from their registries directly (add --upstream URL or --registry HOST=URL)');
  }

  get(digest: Digest): SeedTask | undefined {
    return this.tasks.get(digest);
  }

  /** A configured registry object from a task's upstream (throws for an unknown registry, a bad name or credential). */
  sourceOf(upstream: TaskUpstream): SeedSource {
    return resolveSeedSource(this.hosts, upstream);
  }

  /**
   * A peer's task: the requester must be one the registry lets read this blob (asked with its
   * credential, unless the peer is already admitted for it), and the registry's size must match
   * the peer's. Admits the peer for the blob's metainfo and pieces.
   */
  async openTask(req: TaskRequest): Promise<SeedTask> {
    const source = this.sourceOf(req.upstream);
    const known = this.tasks.get(req.digest);
    if (known && known.state.name !== 'failed' && this.grants.has(req.peerId, req.digest)) {
      checkHint(source, req.digest, known.meta.size, req.sizeHint);
      return known;
    }
    const task = await this.ensure(source, req.digest, req.sizeHint, req.pieceSize);
    this.grants.admit(req.peerId, req.digest);
    return task;
  }

  /** Admits a peer for a blob on another's authority (a preheat job whose credential the registry admitted). */
  admit(peerId: string, digest: Digest): void {
    this.grants.admit(peerId, digest);
  }

  isAdmitted(peerId: string, digest: Digest): boolean {
    return this.grants.has(peerId, digest);
  }

  /**
   * The store evicted (or lost) a blob: its metainfo goes too, so the next task fetches it from the
   * registry again instead of pointing peers at bytes that are gone. A fetch in progress is not
   * affected (its ingest holds a lease, so it is never evicted).
   */
  forgetBlob(digest: Digest): void {
    const task = this.tasks.get(digest);
    if (task?.state.name !== 'complete') return;
    this.tasks.delete(digest);
    void this.kv.del(digest).catch((err: unknown) => this.logger.warn({ digest, err: (err as Error).message }, 'could not drop the metainfo of an evicted blob'));
    this.logger.info({ digest }, 'blob evicted from the seed store; metainfo dropped');
  }

  /** A peer left the cluster: its admissions go. */
  forgetPeer(peerId: string): void {
    this.grants.forgetPeer(peerId);
  }

  /**
   * The task for a blob, once the registry admitted `source`'s credential for it and declared the
   * expected size; starts the registry fetch when needed. Resolves once the size is known.
   */
  async ensure(source: SeedSource, digest: Digest, sizeHint?: number, pieceSize?: number): Promise<SeedTask> {
    const declared = await this.admission.check(source, digest, this.controller.signal);
    checkHint(source, digest, declared, sizeHint);
    if (declared > this.options.maxBlobBytes) {
      throw new PollenError('ERR_BLOB_TOO_LARGE', `registry ${source.registry} declares ${declared} bytes for blob ${digest}, more than the seed's limit of ${this.options.maxBlobBytes}`, { upstream: source.registry, size: declared });
    }
    let known = this.tasks.get(digest);
    if (!known || known.state.name === 'failed') {
      let pending = this.starting.get(digest);
      if (!pending) {
        pending = this.begin(source, digest, declared, pieceSize).finally(() => this.starting.delete(digest));
        this.starting.set(digest, pending);
      }
      known = await pending;
    }
    if (known.meta.size !== declared) {
      throw new PollenError('ERR_SIZE_MISMATCH', `registry ${source.registry} declares ${declared} bytes for blob ${digest}, which is ${known.meta.size} bytes`, { digest, upstream: source.registry });
    }
    return known;
  }

  /**
   * Piece `index` of a blob for an admitted peer: its length, its body (from the registry's bytes as
   * they come while the seed is fetching) and its sha256 (hex) once the seed has the whole piece.
   */
  async readPiece(peerId: string, digest: Digest, index: number, signal?: AbortSignal): Promise<{ length: number; body: PooledBody; hash: () => string | undefined; layout: number | undefined }> {
    // Admission first: a peer not admitted learns nothing, not even whether the seed has the blob.
    if (!this.grants.has(peerId, digest)) {
      throw new PollenError('ERR_SEED_NOT_ADMITTED', `peer ${peerId.slice(0, 64)} is not admitted for ${digest}: create the task first`, { digest });
    }
    const task = this.tasks.get(digest);
    if (!task || index < 0 || index >= task.meta.pieceCount || !Number.isInteger(index)) {
      throw new PollenError('ERR_NOT_FOUND', `the seed has no piece ${index} of ${digest}`, { digest, index });
    }
    const { start, length } = pieceRange(task.meta.size, task.meta.pieceSize, index);
    const range = { start, end: start + length - 1 };
    const state = task.state;
    if (state.name === 'failed') throw state.error;
    const hash = (): string | undefined => task.meta.hashes[index] ?? undefined;
    const layout = namedLayout(task.meta.size, task.meta.pieceSize);
    if (state.name === 'fetching') return { length, body: state.partial.pooledBody(range, signal), hash, layout };
    // Absent (evicted): a clear error now, before the answer's head is sent.
    if (!(await this.store.stat(digest))) throw new PollenError('ERR_BLOB_UNKNOWN', `blob ${digest} is not in the seed's store`, { digest });
    return { length, body: pooledRangeBody((target, offset) => this.store.readInto(digest, target, offset), range), hash, layout };
  }

  /** A piece of `bytes` went to a peer whole (its answer's last byte written). */
  served(bytes: number): void {
    this.counters.servedBytes += bytes;
  }

  async close(): Promise<void> {
    this.controller.abort(new PollenError('ERR_CLOSED', 'seed closed'));
    this.registryRate.close();
    for (const task of this.tasks.values()) {
      if (task.state.name === 'fetching') await task.state.partial.fail(new PollenError('ERR_CLOSED', 'seed closed'));
      if (task.state.name === 'failed') await task.state.cleaned;
    }
  }

  /** `pieceSize`: the layout a peer downloads in (TaskRequest.pieceSize), kept if it is one. */
  private async begin(source: SeedSource, digest: Digest, size: number, pieceSize: number | undefined): Promise<SeedTask> {
    const previous = this.tasks.get(digest);
    if (previous?.state.name === 'failed') await previous.state.cleaned;
    const existing = await this.store.stat(digest);
    if (existing) return this.adoptHeld(digest, existing.size, pieceSize);
    const res = await this.fetcher.get(source, digest, this.controller.signal).catch((err: unknown) => {
      throw toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE');
    });
    if (res.status !== 200) throw blobStatusError(res.status, source, digest);
    if (res.size !== undefined && res.size !== size) {
      res.body.destroy();
      throw new PollenError('ERR_SIZE_MISMATCH', `registry ${source.registry} sent ${res.size} bytes of blob ${digest} after declaring ${size}`, { digest, upstream: source.registry });
    }
    const layout = this.newLayout(digest, size, pieceSize);
    const ingest = await this.store.openIngest(digest);
    const partial = new PartialBlob({ store: this.store, ingest }, { size });
    const task: SeedTask = { meta: { ...layout, hashes: [...layout.hashes] }, state: { name: 'fetching', partial } };
    this.tasks.set(digest, task);
    this.logger.info({ digest, size, pieces: layout.pieceCount, upstream: source.registry, name: source.name }, 'seed fetching from the registry');
    void this.fill(task, partial, res.body);
    return task;
  }

  /**
   * The layout of a blob begun now: the one a peer downloads in when it asks for the task again
   * mid-transfer (after a restart or an eviction: the peers registered again may be too few yet to
   * say the cluster is large), else by the cluster's size (metainfo.ts pieceSizeForSwarm).
   */
  private newLayout(digest: Digest, size: number, asked: number | undefined): Metainfo {
    const pieceSize = asked !== undefined && isLayout(size, asked) ? asked : pieceSizeForSwarm(size, this.livePeers(), this.options.smallPiecesFromPeers);
    return layoutFor(digest, size, pieceSize);
  }

  /** A blob the store holds whole: its metainfo from level, or hashed again here (not from the registry). */
  private async adoptHeld(digest: Digest, size: number, pieceSize: number | undefined): Promise<SeedTask> {
    const stored = await this.kv.get(digest);
    let meta: SeedTask['meta'];
    if (stored && stored.digest === digest && stored.size === size && heldLayout(stored)) {
      meta = { ...stored, hashes: [...stored.hashes] };
    } else {
      meta = await hashHeldBlob(this.store, this.newLayout(digest, size, pieceSize));
      await this.kv.put(digest, meta);
    }
    const task: SeedTask = { meta, state: { name: 'complete' } };
    this.tasks.set(digest, task);
    return task;
  }

  private async fill(task: SeedTask, partial: PartialBlob, body: SeedBody): Promise<void> {
    const { meta } = task;
    const started = this.clock.now();
    let piece = 0;
    let inPiece = 0;
    let hash: Hash = createHash('sha256');
    let batch: Buffer[] = [];
    let batched = 0;
    /** Registry bytes taken so far (the batch ends here). */
    let fetched = 0;
    let writing: Promise<void> = Promise.resolve();
    let writeFailed: unknown;
    // Each piece's hash is published only after its bytes are in the served prefix. The chunks
    // are cut at piece ends and written vectored, not joined: a fresh 1 MiB buffer per batch
    // cost more than the hashing.
    const write = async (chunks: Buffer[]): Promise<void> => {
      let out: Buffer[] = [];
      for (const chunk of chunks) {
        for (let off = 0; off < chunk.length; ) {
          const pieceLen = pieceRange(meta.size, meta.pieceSize, piece).length;
          const n = Math.min(pieceLen - inPiece, chunk.length - off);
          if (n <= 0) throw new PollenError('ERR_SIZE_MISMATCH', `blob ${meta.digest} is longer than ${meta.size} bytes`, { digest: meta.digest });
          const slice = chunk.subarray(off, off + n);
          hash.update(slice);
          out.push(slice);
          inPiece += n;
          off += n;
          if (inPiece === pieceLen) {
            await partial.append(out);
            out = [];
            meta.hashes[piece] = hash.digest('hex');
            piece++;
            inPiece = 0;
            hash = createHash('sha256');
          }
        }
      }
      if (out.length > 0) await partial.append(out);
    };
    // Batches are written in order; their budget goes back once written (or failed).
    const flush = (): Promise<void> => {
      const chunks = batch;
      const bytes = batched;
      batch = [];
      batched = 0;
      if (chunks.length === 0) return writing;
      writing = writing.then(() => write(chunks)).finally(() => this.buffers.give(bytes));
      writing.catch((err: unknown) => {
        writeFailed ??= err;
        body.destroy();
      });
      return writing;
    };
    const stopHearing = this.buffers.onPressure(() => void flush().catch(() => {}));
    try {
      for await (const raw of pacedChunks(body, this.registryRate, this.controller.signal)) {
        const chunk = raw as Buffer;
        this.counters.registryBytes += chunk.length;
        if (!this.buffers.tryTake(chunk.length)) {
          await flush();
          await this.buffers.take(chunk.length, this.controller.signal);
        }
        batch.push(chunk);
        batched += chunk.length;
        fetched += chunk.length;
        // A batch that holds a piece's last byte goes out at once: the peers leased that piece wait
        // for it. Written only every 1 MiB, with the bed's four layers each coming at a quarter of
        // the registry's rate a piece waited up to ~0.4 s in the batch, and the supernode's uplink
        // sent nothing for 300 ms of a pull's first second (64 MiB, N = 4: all-done 6.79 / 7.03 /
        // 6.89 -> 6.61 / 6.67 / 6.77 s, the seed's last byte 6.3 / 6.6 / 6.5 -> 6.2 / 6.2 / 6.4 s).
        if (batched >= WRITE_BATCH_BYTES || Math.floor(fetched / meta.pieceSize) > Math.floor((fetched - batched) / meta.pieceSize)) await flush();
      }
      await flush();
      if (meta.size === 0) meta.hashes[0] = hash.digest('hex');
      await partial.commit();
      task.state = { name: 'complete' };
      await this.kv.put(meta.digest, { ...meta });
      this.logger.info({ digest: meta.digest, size: meta.size, ms: this.clock.now() - started }, 'seed blob complete');
    } catch (err) {
      stopHearing();
      body.destroy();
      const e = toPollenError(writeFailed ?? err, 'ERR_UPSTREAM_UNAVAILABLE');
      // Failed at once (a task asked for now starts afresh), cleaned up before that next attempt
      // opens the same ingest: the batch in hand is dropped, readers get the error, the file goes.
      const cleaned = flush()
        .catch(() => {})
        .then(() => partial.fail(e))
        .then(() => this.kv.del(meta.digest))
        .catch(() => {});
      task.state = { name: 'failed', error: e, cleaned };
      this.logger.warn({ digest: meta.digest, code: e.code, err: e.message }, 'seed fetch failed; blob and metainfo purged');
      this.clock.setTimeout(() => {
        if (this.tasks.get(meta.digest) === task) this.tasks.delete(meta.digest);
      }, this.options.failedTtlMs);
    } finally {
      stopHearing();
    }
  }
}

/** The registry's declared size against the size the peer saw (when it said). */
function checkHint(source: SeedSource, digest: Digest, declared: number, sizeHint: number | undefined): void {
  if (sizeHint !== undefined && sizeHint !== declared) {
    throw new PollenError('ERR_SIZE_MISMATCH', `registry ${source.registry} declares ${declared} bytes for blob ${digest}; the peer expects ${sizeHint}`, { digest, upstream: source.registry, expectedSize: sizeHint });
  }
}

/** Stored metainfo of a whole blob, in a layout peers take, with every hash. */
function heldLayout(meta: MetainfoBody): boolean {
  return isLayout(meta.size, meta.pieceSize) && meta.pieceCount === pieceCountFor(meta.size, meta.pieceSize) && meta.hashes.length === meta.pieceCount && meta.hashes.every((h) => h !== null);
}
