// The peer agent: the registry mirror and HTTP proxy of its host's container engine, backed by a
// local content store and metadata in level. Composition only; the logic lives in the services.
// /metrics, /healthz and POST /api/v1/gc have their own listener (--metrics-listen, loopback by
// default): the mirror/proxy port serves the distribution API and nothing else.
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Agent, type Dispatcher } from 'undici';
import { steadyClock, systemClock, type Clock } from '../src/clock.ts';
import type { ContentStore } from '../src/content-store.ts';
import { openLevelKv, type Kv } from '../src/db.ts';
import { registerGcRoutes } from '../src/store/gc-routes.ts';
import { openGcStore, type GcStore } from '../src/store/gc-store.ts';
import type { ManagedStore, Removed } from '../src/store/managed-store.ts';
import { ensurePrivateDir } from '../src/store/private-dir.ts';
import { createHttpApp, listenOn } from '../src/http-app.ts';
import { ReadinessProbe, httpReachableCheck, kvCheck, registerHealthRoutes, writableDirCheck, type ReadyCheck } from '../src/health.ts';
import { mallocHugepages } from '../src/malloc-tunables.ts';
import type { Metrics } from '../src/metrics.ts';
import { AccessCache } from './mirror/access-control.ts';
import { AccessGate } from './mirror/access-gate.ts';
import { withDownloadBudget, type BlobDownloader } from './blob-downloader.ts';
import type { TokenBucket } from '../src/p2p/token-bucket.ts';
import { rateLimiter } from '../src/rate/throttle.ts';
import { BlobService } from './mirror/blob-service.ts';
import type { PeerConfig } from './config.ts';
import { ForwardProxy } from './mirror/forward-proxy.ts';
import { ManifestService } from './mirror/manifest-service.ts';
import { registerMirrorRoutes } from './mirror/mirror-routes.ts';
import { MirrorObserver } from './metrics-mirror.ts';
import { PeerMetrics } from './metrics-peer.ts';
import { P2pAgent } from './p2p/p2p-agent.ts';
import { P2pDownloader } from './p2p/p2p-downloader.ts';
import type { SavedProofs } from './p2p/local-pieces.ts';
import type { PersistedPieces } from './p2p/transfer-seams.ts';
import { PreheatWorker } from './preheat/preheat-worker.ts';
import { UpstreamDownloader } from './mirror/upstream-downloader.ts';
import { Upstreams } from './mirror/upstreams.ts';

/** Builds the downloader the mirror uses on a cache miss (the P2P downloader plugs in here). */
export type DownloaderFactory = (deps: { store: ContentStore; db: Kv; logger: Logger; dispatcher: Dispatcher; metrics: Metrics; fallback: UpstreamDownloader }) => BlobDownloader;

export class Peer {
  private readonly logger: Logger;
  private readonly config: PeerConfig;
  /** Durations and deadlines (steadyClock); the store's times, which it keeps on disk, are on wallClock. */
  private readonly clock: Clock;
  private readonly wallClock: Clock;
  private readonly downloaderFactory: DownloaderFactory | undefined;
  /** The host's download budget (`--download-rate`): registry bodies, parents' and the seed's pieces. */
  private readonly downloads: TokenBucket;
  private app: FastifyInstance | undefined;
  private metricsApp: FastifyInstance | undefined;
  private metricsAddress: string | undefined;
  private db: Kv | undefined;
  private store: ManagedStore | undefined;
  private gc: GcStore | undefined;
  private dispatcher: Agent | undefined;
  private proxy: ForwardProxy | undefined;
  private address: string | undefined;
  private peerMetrics: PeerMetrics | undefined;
  private observer: MirrorObserver | undefined;
  private p2p: { agent: P2pAgent; downloader: P2pDownloader; preheat: PreheatWorker } | undefined;

  private readonly version: string | undefined;

  /** `version` (the package's) is reported to the supernode's status page. */
  constructor(deps: { logger: Logger; clock?: Clock; downloaderFactory?: DownloaderFactory; version?: string }, config: PeerConfig) {
    this.version = deps.version;
    // The daemon's own key; its parts add `component` (access, p2p, uploader...): one each per line.
    this.logger = deps.logger.child({ daemon: 'peer' });
    this.clock = deps.clock ?? steadyClock;
    this.wallClock = deps.clock ?? systemClock;
    this.downloaderFactory = deps.downloaderFactory;
    this.config = config;
    this.downloads = rateLimiter({ clock: this.clock }, config.downloadRate);
  }

  /** The mirror's URL (after start). */
  get url(): string {
    if (!this.address) throw new Error('peer not started');
    return this.address;
  }

  /** The URL of /metrics and /healthz (after start). */
  get metricsUrl(): string {
    if (!this.metricsAddress) throw new Error('peer not started');
    return this.metricsAddress;
  }

  async start(): Promise<void> {
    await ensurePrivateDir(this.config.data);
    this.gc = await openGcStore({ clock: this.wallClock, logger: this.logger }, join(this.config.data, 'content'), { diskQuota: this.config.diskQuota, blobTtlMs: this.config.blobTtlMs });
    this.store = this.gc.store;
    this.store.onRemoved((removed) => this.onBlobRemoved(removed));
    this.db = await openLevelKv(join(this.config.data, 'meta'));
    this.dispatcher = new Agent({
      connectTimeout: this.config.upstreamTimeoutMs,
      headersTimeout: this.config.upstreamTimeoutMs,
      bodyTimeout: this.config.upstreamTimeoutMs,
      connections: 64,
    });
    const store = this.store;
    const active = new Set<Promise<unknown>>();
    const peerMetrics = new PeerMetrics(() => ({
      storeBytes: () => store.index.usedBytes,
      quotaBytes: () => store.quota?.bytes,
      storeBlobs: () => store.index.blobCount,
      activeTransfers: () => active.size,
      connectedParents: () => this.p2p?.downloader.connectedParents ?? 0,
      connectedChildren: () => this.p2p?.agent.connectedChildren ?? 0,
      uploadedBytes: () => this.p2p?.agent.uploadedBytes ?? 0,
      supernodesRegistered: () => this.p2p?.agent.client.urls.filter((u) => this.p2p?.agent.isRegistered(u)).length ?? 0,
      bannedPeers: () => this.p2p?.agent.parentBans.size ?? 0,
    }));
    this.peerMetrics = peerMetrics;
    const metrics = peerMetrics.metrics;
    const observer = new MirrorObserver({ metrics: peerMetrics, logger: this.logger }, { accessLog: this.config.accessLog });
    this.observer = observer;
    const fallback = new UpstreamDownloader({ store: this.store, logger: this.logger, dispatcher: this.dispatcher, stats: { onUpstreamBytes: (n) => peerMetrics.downloaded('back_to_source', n) } });
    const upstreams = new Upstreams({ defaultUpstream: this.config.upstream, registries: this.config.registries, credentials: this.config.credentials });
    const inner = withDownloadBudget(this.downloaderFactory?.({ store: this.store, db: this.db, logger: this.logger, dispatcher: this.dispatcher, metrics, fallback }) ?? (await this.startP2p(fallback, peerMetrics, upstreams)) ?? fallback, this.downloads);
    // Downloads in progress, for the active-transfers gauge: from start until the blob settles.
    const downloader: BlobDownloader = {
      start: (request) => {
        const started = inner.start(request);
        const settled = started.then((partial) => partial.settledPromise()).catch(() => {});
        active.add(settled);
        void settled.finally(() => active.delete(settled));
        return started;
      },
    };
    const requests = peerMetrics.blobRequests;

    const access = new AccessCache({ clock: this.clock }, { ttlMs: this.config.accessTtlMs, graceMs: this.config.accessGraceMs });
    const gate = new AccessGate({ cache: access, dispatcher: this.dispatcher, logger: this.logger });
    const blobs = new BlobService({
      store: this.store,
      gate,
      downloader,
      logger: this.logger,
      stats: { onHit: () => requests.inc({ outcome: 'hit' }), onMiss: () => requests.inc({ outcome: 'miss' }), onJoin: () => requests.inc({ outcome: 'join' }) },
    });
    const manifests = new ManifestService({ store: this.store, db: this.db, gate, dispatcher: this.dispatcher, logger: this.logger, prefetch: (req) => void blobs.prefetch(req) });

    this.proxy = new ForwardProxy({ upstreams, logger: this.logger, dispatcher: this.dispatcher });
    const app = createHttpApp(this.logger, {
      exposeHeadRoutes: false,
      routerOptions: { maxParamLength: 2048 },
      rewriteUrl: this.proxy.rewriteUrl,
      // Clients disconnecting mid-blob is normal; the download goes on and is cached.
      return503OnClosing: false,
    });
    this.proxy.register(app);
    observer.install(app);
    registerMirrorRoutes(app, { upstreams, manifests, blobs, dispatcher: this.dispatcher, logger: this.logger, proxyUpstreamOf: this.proxy.upstreamOf, onBlobOutcome: observer.noteOutcome });
    this.proxy.attach(app.server);

    this.app = app;
    this.address = await listenOn(app, this.config.listen);

    // Opened after the mirror, so a healthy /healthz means the mirror is listening too.
    const metricsApp = createHttpApp(this.logger);
    registerHealthRoutes(metricsApp, new ReadinessProbe(this.readyChecks()));
    metricsApp.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.text()));
    // POST /api/v1/gc (`pollen gc --peer`, default http://127.0.0.1:65003).
    registerGcRoutes(metricsApp, this.gc.collector);
    this.metricsApp = metricsApp;
    this.metricsAddress = await listenOn(metricsApp, this.config.metricsListen);
    this.logger.info({ url: this.address, metrics: this.metricsAddress, upstream: this.config.upstream, registries: [...this.config.registries.keys()], mallocHugepages: mallocHugepages(process.env) }, 'peer mirror listening');
  }

  /** What /readyz checks: the store takes writes, the metadata database answers, a supernode (when configured) and the upstream answer. */
  private readyChecks(): ReadyCheck[] {
    const checks = [writableDirCheck('store', join(this.config.data, 'content'))];
    if (this.db) checks.push(kvCheck('metadata', this.db.sub<string>('readyz')));
    const urls = this.config.supernodes;
    if (urls.length > 0) {
      checks.push({
        name: 'supernode',
        run: async () => (urls.some((u) => this.p2p?.agent.isRegistered(u)) ? undefined : `not registered with any supernode (${urls.length} configured; see the log for why)`),
      });
    }
    if (this.config.upstream) checks.push(httpReachableCheck('upstream', `${this.config.upstream}/v2/`, this.dispatcher));
    return checks;
  }

  /** With `--supernode`, the P2P downloader (falling back to `fallback`); undefined without. */
  private async startP2p(fallback: UpstreamDownloader, m: PeerMetrics, upstreams: Upstreams): Promise<P2pDownloader | undefined> {
    const c = this.config;
    if (c.supernodes.length === 0 || !this.store || !this.db) return undefined;
    const agent = new P2pAgent(
      { store: this.store, logger: this.logger, clock: this.clock, downloads: this.downloads, proofs: this.db.sub<SavedProofs>('proofs') },
      {
        supernodes: c.supernodes,
        secret: c.secret,
        wireListen: c.wire,
        wireAdvertise: c.wireAdvertise,
        uploadSlots: c.uploadSlots,
        uploadBytesPerSecond: c.uploadRate,
        maxConnections: c.wireMaxConnections,
        supernodeTimeoutMs: c.supernodeTimeoutMs,
        faultCorruptUploads: c.faultCorruptUploads,
      },
    );
    await agent.start();
    const metrics = m.metrics;
    const sourceOf = { peer: 'remote_peer', seed: 'seed', upstream: 'back_to_source' } as const;
    agent.onBytes = (from, n, digest) => {
      m.downloaded(sourceOf[from], n);
      this.observer?.sources.add(digest, from === 'upstream' ? 'registry' : from, n);
    };
    const store = this.store;
    agent.report = () => ({
      ...(this.version ? { version: this.version } : {}),
      storeBytes: store.index.usedBytes,
      ...(store.quota ? { storeQuotaBytes: store.quota.bytes } : {}),
      uploadedBytes: agent.uploadedBytes,
      downloadedBytes: agent.totals.peer + agent.totals.seed + agent.totals.upstream,
    });
    agent.onBan = () => {
      m.bans.inc();
      m.pieceFailures.inc({ cause: 'digest_mismatch' });
    };
    const duplicates = metrics.counter('pollen_duplicate_bytes_total', 'bytes a P2P transfer received and threw away, by cause (endgame, starved-seed-grant, stall-reassign, parent-lost, fallback-overlap, late-arrival, corrupt, unproved, unasked)', ['cause']);
    const fallbacks = metrics.counter('pollen_fallbacks_total', 'P2P transfers that fell back to the registry');
    const stalls = metrics.counter('pollen_piece_stalls_total', 'parents dropped because a piece got no block for the stall timeout');
    const starved = metrics.counter('pollen_starved_grants_total', 'seed grants declined because the piece was in flight to a live parent');
    metrics.counterFrom('pollen_sync_batches_total', 'batches of syncs sent to supernodes, by the way they went (channel: a frame on a sync channel; http: a request)', ['via'], () => [
      [{ via: 'channel' }, agent.client.syncBatches.channel],
      [{ via: 'http' }, agent.client.syncBatches.http],
    ]);
    metrics.counterFrom('pollen_task_creations_total', 'task creations sent to supernodes, by the way they went (channel: a frame on a sync channel; http: a request)', ['via'], () => [
      [{ via: 'channel' }, agent.client.taskCreations.channel],
      [{ via: 'http' }, agent.client.taskCreations.http],
    ]);
    metrics.counterFrom('pollen_seed_piece_requests_total', "seed pieces asked of supernodes, by the way they went (channel: a frame on a seed channel; http: a request)", ['via'], () => [
      [{ via: 'channel' }, agent.client.seedPieces.channel],
      [{ via: 'http' }, agent.client.seedPieces.http],
    ]);
    agent.onTransferEvent = (e) => {
      if (e.kind === 'duplicate') duplicates.inc({ cause: e.cause }, e.bytes);
      else if (e.kind === 'fallback') fallbacks.inc();
      else if (e.kind === 'stall') stalls.inc();
      else starved.inc();
    };
    const downloader = new P2pDownloader({ agent, store: this.store, kv: this.db.sub<PersistedPieces>('p2p'), fallback }, { timings: { noProgressMs: c.p2pStallMs } });
    // Preheat jobs hand this peer blobs to fetch through the same downloader as the mirror.
    const lookup = (registry: string) => upstreams.resolve({ ns: registry });
    const preheat = new PreheatWorker({ client: agent.client, peerId: () => agent.peerId, isRegistered: (url) => agent.isRegistered(url), downloader: withDownloadBudget(downloader, this.downloads), lookup, store: this.store, leases: this.store, logger: this.logger });
    preheat.start();
    this.p2p = { agent, downloader, preheat };
    return downloader;
  }

  /**
   * A blob left the content store (evicted by quota or TTL, or deleted): the P2P agent stops
   * offering it and tells the supernodes its holdings shrank.
   */
  private onBlobRemoved(removed: Removed): void {
    this.peerMetrics?.evictions.inc({ reason: removed.reason });
    this.peerMetrics?.evictedBytes.inc({ reason: removed.reason }, removed.size);
    this.logger.debug({ digest: removed.digest, size: removed.size, reason: removed.reason }, 'blob removed from the content store');
    this.p2p?.agent.forget(removed.digest);
  }

  async close(): Promise<void> {
    const p2p = this.p2p;
    this.p2p = undefined;
    p2p?.preheat.close();
    await p2p?.downloader.close();
    await p2p?.agent.close();
    const { app, metricsApp, proxy, dispatcher, gc, db } = this;
    this.app = undefined;
    this.metricsApp = undefined;
    this.proxy = undefined;
    this.dispatcher = undefined;
    this.store = undefined;
    this.gc = undefined;
    this.db = undefined;
    proxy?.close();
    await app?.close();
    await metricsApp?.close();
    await dispatcher?.destroy();
    await gc?.close();
    await db?.close();
  }
}
