// The supernode's Prometheus series (served on its admin listener, next to /healthz). Syncs are
// counted and timed as the cluster API answers them; peers, tasks, seed bytes and preheat jobs are
// read at scrape time from the tracker, scheduler, seed and job manager, which keep them anyway.
import type { FastifyInstance } from 'fastify';
import { Metrics, type Counter, type Histogram } from '../../src/metrics.ts';
import type { SeedCounters } from '../p2p/seed.ts';
import { API, PIECE_LENGTH_HEADER } from '../../src/p2p/supernode-api.ts';

/** The cluster API's piece sync route, as fastify names it (see ../p2p/routes-p2p.ts). */
export const SYNC_ROUTE = '/api/v1/tasks/:digest/sync';
/** The seed's piece route: its answers are the seed's upload, per task. */
export const SEED_PIECE_ROUTE = '/api/v1/seed/:digest/pieces/:index';

/** Sync round trips are milliseconds; a starved event loop makes them seconds. */
const SYNC_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface SupernodeMetricSources {
  peers(): number;
  tasks(): number;
  /** The wait each sync's answer asks for now, and the peers it counts as syncing (SyncPacer). */
  syncPace(): { ms: number; peers: number; answerBytes: number };
  seed(): Readonly<SeedCounters>;
  /** Seed leases the scheduler handed out, by kind (Scheduler.seedGrants). */
  seedGrants(): Readonly<{ unheld: number; starved: number }>;
  /** Preheat jobs by state (PENDING, SUCCESS, FAILURE...). */
  jobsByState(): ReadonlyMap<string, number>;
  /** Peers' sync channels open now (supernode/http/sync-channel.ts). */
  syncChannels?(): number;
}

export class SupernodeMetrics {
  readonly metrics = new Metrics({ prefix: 'pollen_supernode_', defaults: true });
  readonly syncs: Counter;
  readonly syncLatency: Histogram;

  constructor(sources: SupernodeMetricSources) {
    const m = this.metrics;
    this.syncs = m.counter('pollen_supernode_syncs_total', 'piece syncs answered (a peer reports pieces and gets parents and seed grants; a transfer\'s first comes with its task\'s creation); rate() gives syncs per second');
    this.syncLatency = m.histogram('pollen_supernode_sync_duration_seconds', 'time to answer a sync request (one task, or a batch of a peer\'s tasks), from request to response', [], SYNC_BUCKETS_S);
    m.gauge('pollen_supernode_peers', 'registered live peers', [], (g) => g.set(sources.peers()));
    m.gauge('pollen_supernode_sync_pace_seconds', 'the wait before its next sync that each sync answer asks of a peer now (0: the peers\' own timing): how far the line of sync slots, --sync-rate a second, runs ahead', [], (g) => g.set(sources.syncPace().ms / 1000));
    m.gauge('pollen_supernode_sync_answer_bytes', 'the mean bytes of a sync answer lately, HTTP around it included: with --sync-answer-rate, what spaces the line of sync slots', [], (g) => g.set(Math.round(sources.syncPace().answerBytes)));
    m.gauge('pollen_supernode_syncing_peers', 'peers that synced in the last 5 to 10 s', [], (g) => g.set(sources.syncPace().peers));
    m.gauge('pollen_supernode_sync_channels', "peers' sync and seed channels open (a peer's batches of syncs, and its seed pieces, as frames on kept connections instead of HTTP requests)", [], (g) => g.set(sources.syncChannels?.() ?? 0));
    m.gauge('pollen_supernode_tasks', 'tasks (blobs) the scheduler tracks holders of', [], (g) => g.set(sources.tasks()));
    m.counterFrom('pollen_supernode_seed_bytes_total', 'seed bytes by direction: download from back_to_source (the registry), upload from the seed to peers (pieces sent whole, counted as each one ends; not those given up or cut short)', ['direction', 'source'], () => {
      const c = sources.seed();
      return [
        [{ direction: 'download', source: 'back_to_source' }, c.registryBytes],
        [{ direction: 'upload', source: 'seed' }, c.servedBytes],
      ];
    });
    m.counterFrom('pollen_supernode_seed_grants_total', 'seed pieces granted to peers (renewals not counted), by kind: unheld, a piece no trusted peer holds (the seed\'s first copy); starved, a piece for a peer that got none for a while, which peers may hold', ['kind'], () => {
      const g = sources.seedGrants();
      return [
        [{ kind: 'unheld' }, g.unheld],
        [{ kind: 'starved' }, g.starved],
      ];
    });
    const seen = new Set<string>(['PENDING', 'SUCCESS', 'FAILURE']);
    m.gauge('pollen_supernode_preheat_jobs', 'preheat jobs the supernode keeps, by state', ['state'], (g) => {
      const now = sources.jobsByState();
      for (const s of now.keys()) seen.add(s);
      for (const s of seen) g.set({ state: s }, now.get(s) ?? 0);
    });
  }

  /**
   * A request of syncs (HTTP, or a frame of a sync channel) answered `items` task syncs in
   * `seconds`; a creation's first sync, without its time (the registry's, not a sync's).
   */
  countSyncs(items: number, seconds: number | undefined): void {
    this.syncs.inc(items);
    if (seconds !== undefined) this.syncLatency.observe(seconds);
  }

  /** Times the cluster API's syncs, and tells `onSeedPiece` of each seed piece sent (per task). */
  observeClusterApp(app: FastifyInstance, onSeedPiece: (digest: string, bytes: number) => void): void {
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url;
      if (route === SYNC_ROUTE || route === API.syncs) {
        // A batch answered counts each task's sync it carried (a refused request, none); its latency is the request's.
        const batch = (req.body as { syncs?: unknown } | undefined)?.syncs;
        const items = reply.statusCode !== 200 ? 0 : route === API.syncs ? (Array.isArray(batch) ? batch.length : 0) : 1;
        this.countSyncs(items, reply.elapsedTime / 1000);
      } else if (route === API.task && reply.statusCode === 200 && (req.body as { first?: unknown } | undefined)?.first !== undefined) {
        // A creation that carried the transfer's first sync answered it too (its latency is the registry's, not a sync's).
        this.syncs.inc();
      } else if (route === SEED_PIECE_ROUTE && reply.statusCode === 200 && reply.raw.writableFinished) {
        const digest = (req.params as { digest?: string }).digest;
        const bytes = Number(reply.getHeader('content-length') ?? reply.getHeader(PIECE_LENGTH_HEADER));
        if (digest && Number.isSafeInteger(bytes)) onSeedPiece(digest, bytes);
      }
    });
  }
}
