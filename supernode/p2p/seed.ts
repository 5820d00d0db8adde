// The seed ("back-to-source"): fetches a blob from the registry once, with the credentials of the
// client whose peer asked first, hashing each piece as it streams in. A piece is served to peers
// as soon as it has arrived (PartialBlob streams the growing prefix); the whole blob is checked
// against its digest at the end, and a blob that fails is purged with its metainfo.
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { ContentStore } from '../../src/content-store.ts';
import type { Digest } from '../../src/digest.ts';
import { PollenError, toPollenError } from '../../src/errors.ts';
import type { Kv } from '../../src/db.ts';
import { RegistryClient } from '../../src/oci/registry-client.ts';
import { PartialBlob } from '../../src/partial-blob.ts';
import { layoutFor, pieceRange } from '../../src/p2p/metainfo.ts';
import type { MetainfoBody, TaskRequest } from '../../src/p2p/supernode-api.ts';

const WRITE_BATCH_BYTES = 1 << 20;
/** A failed task is remembered this long so syncing peers learn of the failure, then retried afresh. */
const FAILED_TTL_MS = 10_000;

type SeedState = { name: 'fetching'; partial: PartialBlob } | { name: 'complete' } | { name: 'failed'; error: PollenError };

export interface SeedTask {
  readonly meta: { digest: Digest; size: number; pieceSize: number; pieceCount: number; hashes: Array<string | null> };
  state: SeedState;
}

export interface SeedCounters {
  registryBytes: number;
  servedBytes: number;
}

export class Seed {
  private readonly store: ContentStore;
  private readonly kv: Kv<MetainfoBody>;
  private readonly logger: Logger;
  private readonly tasks = new Map<Digest, SeedTask>();
  private readonly starting = new Map<Digest, Promise<SeedTask>>();
  private readonly controller = new AbortController();
  readonly counters: SeedCounters = { registryBytes: 0, servedBytes: 0 };

  constructor(deps: { store: ContentStore; kv: Kv<MetainfoBody>; logger: Logger }) {
    this.store = deps.store;
    this.kv = deps.kv;
    this.logger = deps.logger.child({ component: 'seed' });
  }

  /** Piece hashes of a blob the store holds whole, in the current layout. */
  private async layoutOfHeld(digest: Digest, size: number): Promise<SeedTask['meta']> {
    const layout = layoutFor(digest, size);
    const hashes: string[] = [];
    let hash = createHash('sha256');
    let inPiece = 0;
    for await (const chunk of await this.store.read(digest)) {
      let data = chunk as Buffer;
      while (data.length > 0) {
        if (hashes.length >= layout.pieceCount) throw new PollenError('ERR_SIZE_MISMATCH', `held blob ${digest} is longer than ${size} bytes`, { digest });
        const pieceLength = pieceRange(size, layout.pieceSize, hashes.length).length;
        const take = Math.min(pieceLength - inPiece, data.length);
        hash.update(data.subarray(0, take));
        inPiece += take;
        data = data.subarray(take);
        if (inPiece === pieceLength) {
          hashes.push(hash.digest('hex'));
          hash = createHash('sha256');
          inPiece = 0;
        }
      }
    }
    if (size === 0) hashes.push(hash.digest('hex'));
    if (hashes.length !== layout.pieceCount) throw new PollenError('ERR_SIZE_MISMATCH', `held blob ${digest} does not fill its ${layout.pieceCount} pieces`, { digest });
    return { ...layout, hashes };
  }

  /** Reloads the metainfo of blobs the seed holds whole; drops metainfo of unfinished ones. */
  async start(): Promise<void> {
    for await (const [digest, meta] of this.kv.entries()) {
      const info = await this.store.stat(meta.digest);
      // Metainfo of another piece layout (written before DEFAULT_PIECE_BYTES changed) is dropped:
      // peers refuse it; begin() hashes the held blob again in the current layout.
      if (info && info.size === meta.size && meta.pieceSize === layoutFor(meta.digest, meta.size).pieceSize && meta.hashes.every((h) => h !== null)) {
        this.tasks.set(meta.digest, { meta: { ...meta, hashes: [...meta.hashes] }, state: { name: 'complete' } });
      } else {
        await this.kv.del(digest);
      }
    }
    this.logger.info({ blobs: this.tasks.size }, 'seed metainfo loaded');
  }

  get(digest: Digest): SeedTask | undefined {
    return this.tasks.get(digest);
  }

  /** The task for a blob, starting the registry fetch when needed; resolves once the size is known. */
  async ensure(req: TaskRequest): Promise<SeedTask> {
    const known = this.tasks.get(req.digest);
    if (known && known.state.name !== 'failed') return known;
    let pending = this.starting.get(req.digest);
    if (!pending) {
      pending = this.begin(req).finally(() => this.starting.delete(req.digest));
      this.starting.set(req.digest, pending);
    }
    return pending;
  }

  /** The bytes of one piece; waits for them while the fetch is running. */
  async readPiece(digest: Digest, index: number, signal?: AbortSignal): Promise<{ length: number; body: Readable }> {
    const task = this.tasks.get(digest);
    if (!task || index < 0 || index >= task.meta.pieceCount || !Number.isInteger(index)) {
      throw new PollenError('ERR_NOT_FOUND', `the seed has no piece ${index} of ${digest}`, { digest, index });
    }
    const { start, length } = pieceRange(task.meta.size, task.meta.pieceSize, index);
    const range = { start, end: start + length - 1 };
    const state = task.state;
    this.counters.servedBytes += length;
    if (state.name === 'failed') throw state.error;
    if (state.name === 'fetching') return { length, body: state.partial.createReadStream(range, signal) };
    return { length, body: await this.store.read(digest, range) };
  }

  async close(): Promise<void> {
    this.controller.abort(new PollenError('ERR_CLOSED', 'seed closed'));
    for (const task of this.tasks.values()) {
      if (task.state.name === 'fetching') await task.state.partial.fail(new PollenError('ERR_CLOSED', 'seed closed'));
    }
  }

  private async begin(req: TaskRequest): Promise<SeedTask> {
    const { digest, upstream } = req;
    const existing = await this.store.stat(digest);
    const stored = existing ? await this.kv.get(digest) : undefined;
    if (existing && stored && stored.pieceSize === layoutFor(digest, stored.size).pieceSize && stored.hashes.every((h) => h !== null)) {
      const task: SeedTask = { meta: { ...stored, hashes: [...stored.hashes] }, state: { name: 'complete' } };
      this.tasks.set(digest, task);
      return task;
    }
    if (existing) {
      // The blob is held but its metainfo is gone or of an old layout: hash it here, not again from the registry.
      const meta = await this.layoutOfHeld(digest, existing.size);
      await this.kv.put(digest, meta);
      const task: SeedTask = { meta, state: { name: 'complete' } };
      this.tasks.set(digest, task);
      return task;
    }
    const client = new RegistryClient({}, { baseUrl: upstream.baseUrl });
    const headers: Record<string, string> = {};
    if (upstream.authorization) headers.authorization = upstream.authorization;
    const res = await client.request('GET', `/v2/${upstream.name}/blobs/${digest}`, {
      headers,
      signal: this.controller.signal,
      scope: `repository:${upstream.name}:pull`,
      relayAuth: true,
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw statusError(res.statusCode, upstream.baseUrl, digest);
    }
    const size = Number(res.headers['content-length'] ?? req.sizeHint);
    if (!Number.isSafeInteger(size) || size < 0) {
      res.body.destroy();
      throw new PollenError('ERR_UPSTREAM_PROTOCOL', `registry ${upstream.baseUrl} sent blob ${digest} without a length`, { upstream: upstream.baseUrl });
    }
    const layout = layoutFor(digest, size);
    const ingest = await this.store.openIngest(digest);
    const partial = new PartialBlob({ store: this.store, ingest }, { size });
    const task: SeedTask = { meta: { ...layout, hashes: [...layout.hashes] }, state: { name: 'fetching', partial } };
    this.tasks.set(digest, task);
    this.logger.info({ digest, size, pieces: layout.pieceCount, upstream: upstream.baseUrl }, 'seed fetching from the registry');
    void this.fill(task, partial, res.body);
    return task;
  }

  private async fill(task: SeedTask, partial: PartialBlob, body: AsyncIterable<Uint8Array> & { destroy(): void }): Promise<void> {
    const { meta } = task;
    const started = Date.now();
    let piece = 0;
    let inPiece = 0;
    let hash: Hash = createHash('sha256');
    const finishPiece = (): void => {
      meta.hashes[piece] = hash.digest('hex');
      piece++;
      inPiece = 0;
      hash = createHash('sha256');
    };
    try {
      let batch: Buffer[] = [];
      let batched = 0;
      // Each piece's hash is published only after its bytes are in the served prefix. The chunks
      // are cut at piece ends and written vectored, not joined: a fresh 1 MiB buffer per batch
      // cost more than the hashing.
      const flush = async (): Promise<void> => {
        const chunks = batch;
        batch = [];
        batched = 0;
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
              finishPiece();
            }
          }
        }
        if (out.length > 0) await partial.append(out);
      };
      for await (const chunk of body) {
        batch.push(chunk as Buffer);
        batched += chunk.length;
        this.counters.registryBytes += chunk.length;
        if (batched >= WRITE_BATCH_BYTES) await flush();
      }
      await flush();
      if (meta.size === 0) finishPiece();
      await partial.commit();
      task.state = { name: 'complete' };
      await this.kv.put(meta.digest, { ...meta });
      this.logger.info({ digest: meta.digest, size: meta.size, ms: Date.now() - started }, 'seed blob complete');
    } catch (err) {
      body.destroy();
      const e = toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE');
      task.state = { name: 'failed', error: e };
      this.logger.warn({ digest: meta.digest, code: e.code, err: e.message }, 'seed fetch failed; blob and metainfo purged');
      await partial.fail(e);
      await this.kv.del(meta.digest).catch(() => {});
      setTimeout(() => {
        if (this.tasks.get(meta.digest) === task) this.tasks.delete(meta.digest);
      }, FAILED_TTL_MS).unref();
    }
  }
}

function statusError(status: number, baseUrl: string, digest: string): PollenError {
  if (status === 401) return new PollenError('ERR_UNAUTHORIZED', `registry ${baseUrl} requires authentication for blob ${digest}`, { upstream: baseUrl });
  if (status === 403) return new PollenError('ERR_DENIED', `registry ${baseUrl} denied access to blob ${digest}`, { upstream: baseUrl });
  if (status === 404) return new PollenError('ERR_BLOB_UNKNOWN', `blob ${digest} not found at ${baseUrl}`, { upstream: baseUrl });
  return new PollenError('ERR_UPSTREAM_UNAVAILABLE', `registry ${baseUrl} answered ${status} for blob ${digest}`, { upstream: baseUrl, status });
}
