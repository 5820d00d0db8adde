// The supernode daemon: its HTTP API (fastify), metadata in level. The scheduler, tracker, seed
// and preheat jobs hang off this composition (see the P2P and preheat issues).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { openLevelKv, type Kv } from '../src/db.ts';
import { systemClock, type Clock } from '../src/clock.ts';
import { FsContentStore } from '../src/fs-content-store.ts';
import { clusterToken } from '../src/p2p/wire-auth.ts';
import { CLUSTER_TOKEN_HEADER, type MetainfoBody } from '../src/p2p/supernode-api.ts';
import { createHttpApp, listenOn } from '../src/http-app.ts';
import { RegistryHosts } from '../src/oci/registry-hosts.ts';
import { DEFAULT_SEED_MAX_BLOB_BYTES, type SupernodeConfig } from './config.ts';
import { JobManager } from './preheat/job-manager.ts';
import { preheatPorts } from './preheat/preheat-ports.ts';
import { isJobsPath, registerJobRoutes } from './preheat/routes-jobs.ts';
import { registerP2pRoutes } from './p2p/routes-p2p.ts';
import { Scheduler } from './p2p/scheduler.ts';
import { Seed } from './p2p/seed.ts';
import { Tracker } from './p2p/tracker.ts';

export class Supernode {
  private readonly logger: Logger;
  private readonly config: SupernodeConfig;
  private app: FastifyInstance | undefined;
  private db: Kv | undefined;
  private address: string | undefined;
  private readonly clock: Clock;
  private tracker: Tracker | undefined;
  private seed: Seed | undefined;
  private jobs: JobManager | undefined;

  constructor(deps: { logger: Logger; clock?: Clock }, config: SupernodeConfig) {
    this.logger = deps.logger.child({ component: 'supernode' });
    this.clock = deps.clock ?? systemClock;
    this.config = config;
  }

  /** The URL the API listens on (after start). */
  get url(): string {
    if (!this.address) throw new Error('supernode not started');
    return this.address;
  }

  async start(): Promise<void> {
    await mkdir(this.config.data, { recursive: true });
    this.db = await openLevelKv(join(this.config.data, 'meta'));
    const app = createHttpApp(this.logger);
    app.get('/healthz', async () => ({ status: 'ok' }));
    const store = await FsContentStore.open(join(this.config.data, 'seed'));
    const hosts = new RegistryHosts({ defaultUpstream: this.config.upstream, registries: this.config.registries ?? new Map() });
    const seed = new Seed(
      { store, kv: this.db.sub<MetainfoBody>('meta'), logger: this.logger, hosts, clock: this.clock },
      { maxBlobBytes: this.config.seedMaxBlobBytes ?? DEFAULT_SEED_MAX_BLOB_BYTES },
    );
    await seed.start();
    this.seed = seed;
    const scheduler = new Scheduler({ clock: this.clock }, { maxParents: this.config.maxParents });
    const tracker = new Tracker({ clock: this.clock, onDrop: (peer) => {
      scheduler.dropPeer(peer);
      seed.forgetPeer(peer.peerId);
      this.logger.info({ peerId: peer.peerId }, 'peer dropped: no heartbeat');
    } });
    tracker.start();
    this.tracker = tracker;
    if (this.config.secret !== undefined && this.config.secret !== '') {
      const token = clusterToken(this.config.secret);
      app.addHook('onRequest', async (request, reply) => {
        if (request.url.startsWith('/api/') && !isJobsPath(request.url) && request.headers[CLUSTER_TOKEN_HEADER] !== token) {
          return reply.code(401).send({ code: 'ERR_UNAUTHORIZED', message: 'missing or wrong cluster secret' });
        }
      });
    }
    app.get('/api/v1/stats', async () => ({ peers: tracker.size, seed: seed.counters }));
    registerP2pRoutes(app, { tracker, scheduler, seed });
    const jobs = new JobManager({ kv: this.db.sub('preheat'), clock: this.clock, logger: this.logger, ports: preheatPorts({ seed, tracker, hosts }) });
    await jobs.start();
    this.jobs = jobs;
    registerJobRoutes(app, { jobs, adminToken: this.config.adminToken });
    this.app = app;
    this.address = await listenOn(app, this.config.listen);
    this.logger.info({ url: this.address, registries: hosts.hosts }, 'supernode listening');
  }

  async close(): Promise<void> {
    const app = this.app;
    this.app = undefined;
    this.tracker?.close();
    this.tracker = undefined;
    await app?.close();
    await this.jobs?.close();
    this.jobs = undefined;
    await this.seed?.close();
    this.seed = undefined;
    const db = this.db;
    this.db = undefined;
    await db?.close();
  }
}
