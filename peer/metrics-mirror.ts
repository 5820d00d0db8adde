// What the mirror records of each client request once its response is done: the latency histogram
// (manifest; blob by hit, miss or join), the bytes served from the local cache, and one access log
// line at info (method, path, status, bytes, source, duration) unless --access-log false. A blob's
// source is where its bytes came from: local (the store), or for a download the source that sent
// most of it (peer, seed, registry), as the P2P agent reported per blob.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { BlobOutcome, PeerMetrics } from './metrics-peer.ts';

export type AccessSource = 'local' | 'peer' | 'seed' | 'registry';

/** Blobs downloaded at once whose sources are remembered (least recently started go first). */
const MAX_TRACKED_BLOBS = 1_024;

/** Bytes by source of recent downloads, per blob digest (bounded). */
export class BlobSourceBook {
  private readonly blobs = new Map<string, Record<Exclude<AccessSource, 'local'>, number>>();

  add(digest: string, source: Exclude<AccessSource, 'local'>, bytes: number): void {
    let entry = this.blobs.get(digest);
    if (!entry) {
      if (this.blobs.size >= MAX_TRACKED_BLOBS) this.blobs.delete(this.blobs.keys().next().value!);
      entry = { peer: 0, seed: 0, registry: 0 };
      this.blobs.set(digest, entry);
    }
    entry[source] += bytes;
  }

  /** The source that sent most of the blob; the registry when nothing was reported (a plain mirror). */
  main(digest: string): Exclude<AccessSource, 'local'> {
    const e = this.blobs.get(digest);
    if (!e) return 'registry';
    const best = (['peer', 'seed', 'registry'] as const).reduce((a, b) => (e[b] > e[a] ? b : a));
    return e[best] > 0 ? best : 'registry';
  }

  get size(): number {
    return this.blobs.size;
  }
}

const BLOB_PATH = /\/blobs\/(sha256:[0-9a-f]{64})$/;
const MANIFEST_PATH = /\/manifests\/[^/]+$/;

export class MirrorObserver {
  private readonly metrics: PeerMetrics;
  private readonly logger: Logger;
  private readonly accessLog: boolean;
  readonly sources = new BlobSourceBook();
  private readonly outcomes = new WeakMap<FastifyRequest, BlobOutcome>();

  constructor(deps: { metrics: PeerMetrics; logger: Logger }, options: { accessLog: boolean }) {
    this.metrics = deps.metrics;
    this.logger = deps.logger.child({ component: 'access' });
    this.accessLog = options.accessLog;
  }

  /** For the mirror routes: how this blob request is served. */
  readonly noteOutcome = (req: FastifyRequest, outcome: BlobOutcome): void => {
    this.outcomes.set(req, outcome);
  };

  /**
   * Records each request when its response closes: finished, or cut short by a client that left
   * (fastify's onResponse does not run for those, and they belong in the access log too).
   */
  install(app: FastifyInstance): void {
    app.addHook('onRequest', async (req, reply) => {
      const started = performance.now();
      reply.raw.once('close', () => this.record(req, reply, performance.now() - started));
    });
  }

  private record(req: FastifyRequest, reply: FastifyReply, ms: number): void {
    const path = req.url.split('?')[0] ?? req.url;
    const blob = BLOB_PATH.exec(path);
    const kind = blob ? 'blob' : MANIFEST_PATH.test(path) ? 'manifest' : 'other';
    const outcome = this.outcomes.get(req);
    this.metrics.mirrorLatency.observe({ kind, outcome: outcome ?? 'none' }, ms / 1000);
    const length = Number(reply.getHeader('content-length'));
    // A client that went away mid-body did not get content-length bytes: count none rather than guess.
    // Ended with nothing left in node's buffers counts as sent: a client that closes as soon as it
    // has read a body (skopeo does) can have its close seen before the response's 'finish'. A client
    // that leaves earlier stops the body, and the response is never ended.
    const raw = reply.raw;
    const complete = raw.writableFinished || (raw.writableEnded && raw.writableLength === 0);
    const bytes = req.method !== 'HEAD' && Number.isSafeInteger(length) && complete ? length : 0;
    if (outcome === 'hit') this.metrics.bytes.inc({ direction: 'upload', source: 'local_cache' }, bytes);
    if (!this.accessLog) return;
    const source: AccessSource | undefined = !blob || !outcome ? undefined : outcome === 'hit' ? 'local' : this.sources.main(blob[1]!);
    this.logger.info(
      { method: req.method, path: path.slice(0, 300), status: reply.statusCode, bytes, ...(source ? { source } : {}), ms: Math.round(ms * 10) / 10, ...(complete ? {} : { aborted: true }) },
      'access',
    );
  }
}
