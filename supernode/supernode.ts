// The supernode daemon: two HTTP listeners and metadata in level. The cluster listener (peers:
// registration, tasks, syncs, seed pieces, preheat work) is TLS 1.3 keyed by the cluster secret,
// or loopback only without one; the admin listener (plain HTTP, loopback by default) has health,
// readiness, /metrics, the status page (`/`, status/),
// stats and the preheat jobs API behind the admin token. Every route declares who may call it
// (http/route-auth.ts) and every error leaves through one handler (http/error-handler.ts).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { openLevelKv, type Kv } from '../src/db.ts';
import { steadyClock, systemClock, type Clock } from '../src/clock.ts';
import { openGcStore, type GcStore } from '../src/store/gc-store.ts';
import { ensurePrivateDir } from '../src/store/private-dir.ts';
import type { MetainfoBody } from '../src/p2p/supernode-api.ts';
import { PieceSigner } from '../src/p2p/piece-proof.ts';
import { listenOn } from '../src/http-app.ts';
import { mallocHugepages } from '../src/malloc-tunables.ts';
import { RegistryHosts } from '../src/oci/registry-hosts.ts';
import { DEFAULT_SEED_MAX_BLOB_BYTES, type SupernodeConfig } from './config.ts';
import { createAdminApp, createClusterApp } from './http/apps.ts';
import { DEFAULT_PEER_REQUEST_RATE, PeerRequestBudget } from './http/peer-request-budget.ts';
import { checkClusterListen } from './http/listen-policy.ts';
import { JobManager } from './preheat/job-manager.ts';
import { preheatPorts } from './preheat/preheat-ports.ts';
import { Scheduler } from './p2p/scheduler.ts';
import { DEFAULT_SYNC_ANSWER_BYTES_PER_S, DEFAULT_SYNC_RATE, SyncPacer } from './p2p/sync-pacer.ts';
import { Seed } from './p2p/seed.ts';
import { Tracker } from './p2p/tracker.ts';
import { ReadinessProbe, httpReachableCheck, kvCheck, writableDirCheck } from '../src/health.ts';
import { registerStatusRoutes } from './status/routes-status.ts';
import { StatusEvents } from './status/status-events.ts';
import { StatusModel } from './status/status-model.ts';
import { SupernodeMetrics } from './status/supernode-metrics.ts';

/** The piece key's file in the data directory (PKCS#8 PEM, mode 0600). */
export const PIECE_KEY_FILE = 'piece-key.pem';

export class Supernode {
  private readonly logger: Logger;
  private readonly config: SupernodeConfig;
  private app: FastifyInstance | undefined;
  private admin: FastifyInstance | undefined;
  private db: Kv | undefined;
  private address: string | undefined;
  private adminAddress: string | undefined;
  /** Durations and deadlines (steadyClock); the stores' and preheat jobs' times, kept on disk, are on wallClock. */
  private readonly clock: Clock;
  private readonly wallClock: Clock;
  private tracker: Tracker | undefined;
  private seed: Seed | undefined;
  private scheduler: Scheduler | undefined;
  private seedStore: GcStore | undefined;
  private jobs: JobManager | undefined;

  constructor(deps: { logger: Logger; clock?: Clock }, config: SupernodeConfig) {
    // The daemon's own key; its parts add `component` (seed, preheat, content-store...): one each per line.
    this.logger = deps.logger.child({ daemon: 'supernode' });
    this.clock = deps.clock ?? steadyClock;
    this.wallClock = deps.clock ?? systemClock;
    this.config = config;
  }

  /** The URL of the cluster API (after start): `https:` with a secret. */
  get url(): string {
    if (!this.address) throw new Error('supernode not started');
    return this.address;
  }

  /** The URL of the admin API (after start). */
  get adminUrl(): string {
    if (!this.adminAddress) throw new Error('supernode not started');
    return this.adminAddress;
  }

  async start(): Promise<void> {
    const secret = this.config.secret || undefined;
    checkClusterListen(this.config.listen, secret);
    await mkdir(this.config.data, { recursive: true });
    this.db = await openLevelKv(join(this.config.data, 'meta'));
    await ensurePrivateDir(this.config.data);
    // The seed's store: private, with a quota and LRU/TTL eviction of blobs nothing is reading.
    this.seedStore = await openGcStore({ clock: this.wallClock, logger: this.logger.child({ store: 'seed' }) }, join(this.config.data, 'seed'), {
      diskQuota: this.config.seedDiskQuota,
      blobTtlMs: this.config.seedBlobTtlMs ?? 0,
    });
    const store = this.seedStore.store;
    const hosts = new RegistryHosts({ defaultUpstream: this.config.upstream, registries: this.config.registries ?? new Map() });
    const seed = new Seed(
      { store, kv: this.db.sub<MetainfoBody>('meta'), logger: this.logger, hosts, clock: this.clock, livePeers: () => this.tracker?.size ?? 0 },
      {
        maxBlobBytes: this.config.seedMaxBlobBytes ?? DEFAULT_SEED_MAX_BLOB_BYTES,
        registryBytesPerSecond: this.config.seedRegistryRate ?? 0,
        ...(this.config.smallPiecesFrom === undefined ? {} : { smallPiecesFromPeers: this.config.smallPiecesFrom }),
      },
    );
    await seed.start();
    this.seed = seed;
    store.onRemoved((removed) => seed.forgetBlob(removed.digest));
    const scheduler = new Scheduler({ clock: this.clock }, { maxParents: this.config.maxParents });
    this.scheduler = scheduler;
    const tracker = new Tracker({ clock: this.clock, onDrop: (peer) => {
      scheduler.dropPeer(peer);
      seed.forgetPeer(peer.peerId);
      this.logger.info({ peerId: peer.peerId }, 'peer dropped: no heartbeat');
    } });
    tracker.start();
    this.tracker = tracker;
    const jobs = new JobManager({ kv: this.db.sub('preheat'), clock: this.wallClock, logger: this.logger, ports: preheatPorts({ seed, tracker, hosts }) });
    await jobs.start();
    this.jobs = jobs;

    const pacer = new SyncPacer({ clock: this.clock }, { rate: this.config.syncRate ?? DEFAULT_SYNC_RATE, answerBytesPerS: this.config.syncAnswerRate ?? DEFAULT_SYNC_ANSWER_BYTES_PER_S });
    let syncChannels = 0;
    const metrics = new SupernodeMetrics({
      peers: () => tracker.size,
      syncChannels: () => syncChannels,
      syncPace: () => ({ ms: pacer.currentMs, peers: pacer.activePeers, answerBytes: pacer.meanAnswerBytes }),
      tasks: () => scheduler.sizes.tasks,
      seed: () => seed.counters,
      seedGrants: () => scheduler.seedGrants,
      jobsByState: () => countBy(jobs.list(), (j) => j.state),
    });
    const model = new StatusModel({
      now: () => this.clock.now(),
      sources: { peers: () => tracker.list(), tasks: () => scheduler.taskViews(), seedTask: (d) => seed.get(d), seedCounters: () => seed.counters, jobs: () => jobs.list() },
    });
    const events = new StatusEvents({ snapshot: () => model.snapshot() });
    // Ready: the seed's store takes writes, the metadata database answers and, with a default
    // upstream, that registry answers.
    const upstream = this.config.upstream;
    const readiness = new ReadinessProbe([
      writableDirCheck('seed-store', join(this.config.data, 'seed')),
      kvCheck('metadata', this.db.sub<string>('readyz')),
      ...(upstream ? [httpReachableCheck('upstream', `${upstream}/v2/`)] : []),
    ]);
    const observe = (a: FastifyInstance): void => metrics.observeClusterApp(a, (digest, n) => model.onSeedPiece(digest, n));
    // The key the seed signs piece hashes with (src/p2p/piece-proof.ts): kept in the data directory
    // so that the proofs peers hold stay good across a restart.
    const signer = await PieceSigner.loadOrCreate(join(this.config.data, PIECE_KEY_FILE));
    const peerBudget = new PeerRequestBudget({ clock: this.clock }, { perSecond: this.config.peerRequestRate ?? DEFAULT_PEER_REQUEST_RATE });
    const onChannelSyncs = (items: number, seconds: number | undefined): void => metrics.countSyncs(items, seconds);
    const onChannels = (delta: 1 | -1): void => void (syncChannels += delta);
    const app = createClusterApp(this.logger, { tracker, scheduler, seed, pacer, jobs, observe, onChannelSyncs, onChannels, peerBudget, signer }, { secret });
    this.app = app;
    const stats = (): unknown => ({ peers: tracker.size, seed: seed.counters, scheduler: scheduler.sizes });
    const status = (a: FastifyInstance): void => registerStatusRoutes(a, { readiness, metrics: metrics.metrics, model, events });
    const admin = createAdminApp(this.logger, { jobs, stats, status }, { adminToken: this.config.adminToken });
    this.admin = admin;

    this.address = await listenOn(app, this.config.listen, secret ? 'https' : 'http');
    this.adminAddress = await listenOn(admin, this.config.adminListen);
    this.logger.info({ url: this.address, admin: this.adminAddress, tls: secret !== undefined, registries: hosts.hosts, mallocHugepages: mallocHugepages(process.env) }, 'supernode listening');
    if (!secret) this.logger.warn({ url: this.address }, 'no cluster secret: the cluster API is plain HTTP, open to anyone who reaches this loopback address (set --secret to encrypt it)');
  }

  async close(): Promise<void> {
    // What the seed did over this process's life: its bytes and the pieces granted by kind (the
    // fan-out bed reads this line; an operator sees how far the seed went past one copy of each blob).
    if (this.seed && this.scheduler) this.logger.info({ seed: { ...this.seed.counters }, seedGrants: { ...this.scheduler.seedGrants } }, 'supernode stopping');
    this.scheduler = undefined;
    const app = this.app;
    const admin = this.admin;
    this.app = undefined;
    this.admin = undefined;
    this.tracker?.close();
    this.tracker = undefined;
    await admin?.close();
    await app?.close();
    await this.jobs?.close();
    this.jobs = undefined;
    await this.seed?.close();
    this.seed = undefined;
    await this.seedStore?.close();
    this.seedStore = undefined;
    const db = this.db;
    this.db = undefined;
    await db?.close();
  }
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of items) m.set(key(t), (m.get(key(t)) ?? 0) + 1);
  return m;
}
