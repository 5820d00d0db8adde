// The P2P BlobDownloader: asks the supernode that owns the digest for the task (which starts the
// seed), resumes any verified pieces left by an earlier run, and runs a P2pTransfer that fills the
// PartialBlob from peers and the seed. When no supernode answers the blob comes straight from the
// registry (the wrapped UpstreamDownloader); the transfer itself falls back to the registry when it
// stalls. A pull never fails because the P2P layer did.
import { createHash } from 'node:crypto';
import type { ContentStore, Ingest } from '../../src/content-store.ts';
import type { Kv } from '../../src/db.ts';
import type { Digest } from '../../src/digest.ts';
import { PollenError, toPollenError } from '../../src/errors.ts';
import { PartialBlob } from '../../src/partial-blob.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { isLayout, pieceCountFor, pieceRange } from '../../src/p2p/metainfo.ts';
import type { MetainfoBody, SyncResponse, TaskAnswer, TaskBody } from '../../src/p2p/supernode-api.ts';
import type { BlobDownloader, BlobFetchRequest } from '../blob-downloader.ts';
import type { P2pAgent } from './p2p-agent.ts';
import { parentsPerTransfer } from './parent-pool.ts';
import { P2pTransfer } from './p2p-transfer.ts';
import { seedLeasesPerTransfer } from './seed-grants.ts';
import { refusedMs } from './supernode-answers.ts';
import { DEFAULT_TIMINGS, type PersistedPieces, type TransferTimings } from './transfer-seams.ts';
import { taskRequest } from './task-request.ts';

export class P2pDownloader implements BlobDownloader {
  private readonly agent: P2pAgent;
  private readonly store: ContentStore;
  private readonly kv: Kv<PersistedPieces>;
  private readonly fallback: BlobDownloader;
  private readonly timings: TransferTimings;
  private readonly active = new Map<Digest, Promise<PartialBlob>>();
  private readonly transfers = new Set<P2pTransfer>();
  /** Task creations under way (transfers about to start). */
  private creating = 0;

  constructor(deps: { agent: P2pAgent; store: ContentStore; kv: Kv<PersistedPieces>; fallback: BlobDownloader }, options: { timings?: Partial<TransferTimings> } = {}) {
    this.agent = deps.agent;
    this.store = deps.store;
    this.kv = deps.kv;
    this.fallback = deps.fallback;
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
  }

  start(request: BlobFetchRequest): Promise<PartialBlob> {
    const known = this.active.get(request.digest);
    if (known) return known;
    const started = this.begin(request);
    this.active.set(request.digest, started);
    started.catch(() => this.active.delete(request.digest));
    return started;
  }

  /** Parents connected across running transfers (a gauge for the metrics). */
  get connectedParents(): number {
    let n = 0;
    for (const t of this.transfers) n += t.connectedParents;
    return n;
  }

  /** Stops running transfers, keeping their verified pieces for a resume. */
  async close(): Promise<void> {
    await Promise.all([...this.transfers].map((t) => t.close()));
  }

  private async begin(request: BlobFetchRequest): Promise<PartialBlob> {
    const saved = await this.kv.get(request.digest);
    const found = await this.task(request, saved !== undefined);
    if (!found) {
      this.active.delete(request.digest);
      return this.fallback.start(request);
    }
    const { url, meta, first } = found;
    const ingest = await this.store.openIngest(request.digest, { resume: saved !== undefined });
    const have = await this.resume(ingest, meta, saved);
    const available = Math.min(meta.size, have.prefixLength() * meta.pieceSize);
    const partial = new PartialBlob({ store: this.store, ingest }, { size: meta.size, available });
    const transfer = new P2pTransfer(
      {
        client: this.agent.client,
        supernode: url,
        proofs: proofKey(this.agent.client, url),
        pieces: this.agent.pieces,
        kv: this.kv,
        logger: this.agent.logger,
        dialer: this.agent.dialer,
        maxParents: () => parentsPerTransfer(this.agent.pieces.activeTransfers),
        seedLeases: () => seedLeasesPerTransfer(this.agent.pieces.activeTransfers),
        children: () => this.agent.childrenOf(request.digest),
        peerId: this.agent.peerId,
        onBytes: (from, n) => {
          this.agent.totals[from] += n;
          this.agent.onBytes(from, n, request.digest);
        },
        parentBans: this.agent.parentBans,
        downloads: this.agent.downloads,
        onBan: (peerId) => this.agent.onBan(peerId),
        onEvent: (e) => this.agent.onTransferEvent(e),
      },
      { request, meta, partial, ingest, have, ...(first ? { first } : {}), ...(found.hashList !== undefined ? { hashList: found.hashList } : {}) },
      this.timings,
    );
    this.transfers.add(transfer);
    void transfer.done.then(() => {
      this.transfers.delete(transfer);
      this.active.delete(request.digest);
    });
    if (have.count > 0) this.agent.logger.info({ digest: request.digest, pieces: have.count, of: meta.pieceCount }, 'resuming a partial download');
    transfer.start();
    return partial;
  }

  /**
   * The task from the first supernode (in rendezvous order) that answers, with the transfer's first
   * schedule when the supernode sent one; undefined to fall back.
   */
  private async task(request: BlobFetchRequest, resuming: boolean): Promise<FoundTask | undefined> {
    // The transfer about to start shares the host's seed leases with those running and those being
    // created: an image's layers are asked for together, and each asking the whole budget in its
    // first schedule would have the seed start more pieces at once, each at a share of its uplink.
    this.creating++;
    try {
      return await this.createTask(request, { ...taskRequest(this.agent.peerId, request, request.sizeHint), first: { wantSeed: seedLeasesPerTransfer(this.agent.pieces.activeTransfers + this.creating) } }, resuming);
    } finally {
      this.creating--;
    }
  }

  /**
   * A transfer that resumes nothing, from a supernode whose piece proofs this peer reads, asks for
   * the metainfo without hashes (each piece's comes with it); one that resumes checks its saved
   * pieces against them.
   */
  private async createTask(request: BlobFetchRequest, body: TaskBody, resuming: boolean): Promise<FoundTask | undefined> {
    for (const url of this.agent.client.ownersOf(request.digest)) {
      // A supernode that refused for the peer's allowance (429) is asked once more after the wait
      // it gave, then the next owner: falling back at once would have the registry send the blob
      // again, to a peer that was only early.
      for (let attempt = 0; attempt < 2; attempt++) {
        const outcome = await this.taskFrom(url, request, body, resuming);
        if (typeof outcome === 'object') return outcome;
        if (outcome === 'fallback') return undefined;
        if (outcome === 'next' || attempt === 1) break;
        await this.agent.wait(outcome);
      }
    }
    return undefined;
  }

  /**
   * The task from `url`; else 'next' (unavailable: the next owner is asked), 'fallback' (any other
   * error), or the milliseconds its refusal for the peer's allowance asks to wait.
   */
  private async taskFrom(url: string, request: BlobFetchRequest, body: TaskBody, resuming: boolean): Promise<FoundTask | 'next' | 'fallback' | number> {
    try {
      if (!this.agent.isRegistered(url)) await this.agent.register(url);
      const ask = (): TaskBody => (!resuming && this.agent.client.proofVerifier(url) ? { ...body, withoutHashes: true } : body);
      let answer: TaskAnswer;
      try {
        answer = await this.agent.client.createTask(url, ask());
      } catch (err) {
        if (!(err instanceof PollenError) || err.code !== 'ERR_NOT_FOUND') throw err;
        await this.agent.register(url);
        answer = await this.agent.client.createTask(url, ask());
      }
      const { first, hashList, ...meta } = answer;
      if (!consistent(meta, request.digest) || (request.sizeHint !== undefined && meta.size !== request.sizeHint)) throw new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${url} sent inconsistent metainfo`);
      // A schedule of the wrong shape is left out: the transfer then syncs for one, as it would have.
      // The hash list goes to the transfer as sent (TransferVouch takes only a sha256).
      return { url, meta, first: isSchedule(first) ? first : undefined, hashList };
    } catch (err) {
      const e = toPollenError(err);
      const wait = refusedMs(e);
      this.agent.logger.info({ digest: request.digest, supernode: url, code: e.code, err: e.message, ...(wait > 0 ? { retryInMs: wait } : {}) }, 'no P2P task from this supernode');
      if (wait > 0) return wait;
      return e.code === 'ERR_SUPERNODE_UNAVAILABLE' ? 'next' : 'fallback';
    }
  }

  /** Pieces a previous run verified and persisted, checked again against their hashes. */
  private async resume(ingest: Ingest, meta: MetainfoBody, saved: PersistedPieces | undefined): Promise<Bitfield> {
    const have = new Bitfield(meta.pieceCount);
    if (!saved || saved.size !== meta.size || saved.pieceSize !== meta.pieceSize) return have;
    for (const i of Bitfield.fromBase64(meta.pieceCount, saved.pieces).indexes()) {
      const want = meta.hashes[i];
      if (typeof want !== 'string') continue;
      const { start, length } = pieceRange(meta.size, meta.pieceSize, i);
      const buf = Buffer.allocUnsafe(length);
      if ((await ingest.readAt(buf, start)) !== length) continue;
      if (createHash('sha256').update(buf).digest('hex') === want) have.set(i);
    }
    return have;
  }
}

/** A task a supernode created: its metainfo, the first schedule and the vouched hash list (TaskAnswer) when it sent them. */
interface FoundTask {
  readonly url: string;
  readonly meta: MetainfoBody;
  readonly first: SyncResponse | undefined;
  readonly hashList: string | undefined;
}

function isSchedule(res: SyncResponse | undefined): res is SyncResponse {
  return typeof res === 'object' && res !== null && Array.isArray(res.hashes) && Array.isArray(res.parents) && Array.isArray(res.seedGrants) && Array.isArray(res.availability);
}

function consistent(meta: MetainfoBody, digest: Digest): boolean {
  return (
    meta.digest === digest &&
    Number.isSafeInteger(meta.size) &&
    meta.size >= 0 &&
    isLayout(meta.size, meta.pieceSize) &&
    meta.pieceCount === pieceCountFor(meta.size, meta.pieceSize) &&
    Array.isArray(meta.hashes) &&
    meta.hashes.length === meta.pieceCount
  );
}

/**
 * The getter of `url`'s piece key for a transfer. Made here, not in `begin`: a committed blob's
 * proofs keep it (to check the unchecked ones when first handed on), and a closure made in `begin`
 * would keep everything that function's closures hold, the transfer among them.
 */
function proofKey(client: P2pAgent['client'], url: string): () => ReturnType<P2pAgent['client']['proofVerifier']> {
  return () => client.proofVerifier(url);
}
