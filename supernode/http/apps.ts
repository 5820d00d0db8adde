// The supernode's two fastify apps, assembled in one place so the daemon and the tests run the same
// thing: the cluster app (peers; TLS-PSK when there is a secret) and the admin app (plain HTTP:
// health, metrics, the status page, stats, jobs API). Each gets the one error handler and the route-auth hook first.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { pskServerOptions } from '../../src/cluster-tls.ts';
import { createHttpApp } from '../../src/http-app.ts';
import type { PieceSigner } from '../../src/p2p/piece-proof.ts';
import type { JobManager } from '../preheat/job-manager.ts';
import { registerJobRoutes, registerPreheatWorkRoute } from '../preheat/routes-jobs.ts';
import { registerP2pRoutes, type SeedPort } from '../p2p/routes-p2p.ts';
import type { Scheduler } from '../p2p/scheduler.ts';
import { CHANNEL_ANSWER_OVERHEAD_BYTES, type SyncPacer } from '../p2p/sync-pacer.ts';
import type { Tracker } from '../p2p/tracker.ts';
import { installErrorHandler } from './error-handler.ts';
import type { PeerRequestBudget } from './peer-request-budget.ts';
import { installRouteAuth } from './route-auth.ts';
import { installSyncChannel } from './sync-channel.ts';

/** Schema checks exactly as written: no type coercion ("5" is not 5). */
const AJV = { customOptions: { coerceTypes: false } } as const;

export interface ClusterAppDeps {
  readonly tracker: Tracker;
  readonly scheduler: Scheduler;
  readonly seed: SeedPort;
  /** Paces the peers' syncs (none: every answer leaves the timing to the peer). */
  readonly pacer?: SyncPacer;
  readonly jobs: Pick<JobManager, 'work'>;
  /** Each peer's allowance of calls (none: unlimited). */
  readonly peerBudget?: PeerRequestBudget;
  /** Hooks that watch every answer (metrics), installed before the routes. */
  readonly observe?: (app: FastifyInstance) => void;
  /**
   * A frame of a sync channel was answered: `items` task syncs (0 when refused) in `seconds`
   * (metrics); a creation's first sync without `seconds` (its time is the registry's, not a sync's).
   */
  readonly onChannelSyncs?: (items: number, seconds: number | undefined) => void;
  /** A sync channel opened (+1) or closed (-1) (metrics). */
  readonly onChannels?: (delta: 1 | -1) => void;
  /** Signs the seed pieces' hashes (none: no piece proofs). */
  readonly signer?: PieceSigner;
}

export function createClusterApp(logger: Logger, deps: ClusterAppDeps, options: { secret: string | undefined }): FastifyInstance {
  const { secret } = options;
  const app = createHttpApp(logger, { ajv: AJV, ...(secret ? { https: pskServerOptions(secret, 'api') } : {}) });
  installErrorHandler(app);
  leanAnswerHeads(app);
  const budget = deps.peerBudget;
  const auth = { tls: secret !== undefined, peerOf: (token: string) => deps.tracker.authenticate(token)?.peerId, ...(budget ? { admitPeer: (id: string) => budget.admitOrRefuse(id), chargePeer: (id: string, bytes: number) => budget.charge(id, bytes) } : {}) };
  installRouteAuth(app, auth);
  deps.observe?.(app);
  const { syncBatch, createTask, seedPiece } = registerP2pRoutes(app, deps);
  installSyncChannel(app, {
    ...auth,
    logger,
    syncBatch,
    createTask,
    seedPiece,
    ...(deps.onChannels ? { channels: deps.onChannels } : {}),
    answered: (status, bytes, syncs, seconds, creation) => {
      if (status === 200) deps.pacer?.answered(bytes + CHANNEL_ANSWER_OVERHEAD_BYTES, syncs);
      // As over HTTP (supernode-metrics.ts): a creation counts its first sync, not a sync's latency.
      if (!creation) deps.onChannelSyncs?.(status === 200 ? syncs : 0, seconds);
      else if (status === 200 && syncs > 0) deps.onChannelSyncs?.(syncs, undefined);
    },
  });
  registerPreheatWorkRoute(app, deps);
  return app;
}

/**
 * Every answer of the cluster API crosses the supernode host's uplink beside the seed's pieces, and
 * at thousands of peers a sync answer is mostly its fixed cost (bench sim). Its head carries only
 * what a peer reads: no Date, no Connection or Keep-Alive (an HTTP/1.1 connection persists without
 * them; the peers' client keeps its connections for API_KEEP_ALIVE_MS, under the server's 72 s),
 * and JSON without its implied charset (RFC 8259). 172 -> 72 bytes of a sync answer's head
 * (ANSWER_HEAD_BYTES). A connection the server means to close still says so.
 */
function leanAnswerHeads(app: FastifyInstance): void {
  app.addHook('onSend', (_request, reply, payload, done) => {
    const res = reply.raw;
    res.sendDate = false;
    if (res.shouldKeepAlive) res.removeHeader('connection');
    if (reply.getHeader('content-type') === 'application/json; charset=utf-8') void reply.header('content-type', 'application/json');
    done(null, payload);
  });
}

export interface AdminAppDeps {
  readonly jobs: JobManager;
  /** Counters for GET /api/v1/stats. */
  readonly stats: () => unknown;
  /** Health, readiness, metrics and the status page (../status/routes-status.ts); a bare /healthz without. */
  readonly status?: (app: FastifyInstance) => void;
}

export function createAdminApp(logger: Logger, deps: AdminAppDeps, options: { adminToken: string | undefined }): FastifyInstance {
  const app = createHttpApp(logger, { ajv: AJV });
  installErrorHandler(app);
  installRouteAuth(app, { tls: false, adminToken: options.adminToken });
  if (deps.status) deps.status(app);
  else app.get('/healthz', { config: { auth: 'public' } }, async () => ({ status: 'ok' }));
  app.get('/api/v1/stats', { config: { auth: 'public' } }, async () => deps.stats());
  registerJobRoutes(app, deps);
  return app;
}
