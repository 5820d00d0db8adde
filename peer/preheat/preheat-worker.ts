// The peer's side of preheat jobs: it polls each supernode for the blobs it must hold (work handed
// out by the supernode's job manager; peers cannot create jobs), fetches each one through the
// mirror's BlobDownloader (the P2P downloader: pieces from other peers and the seed, registry
// fallback) into the local content store, and reports done or failed on the next poll. A blob
// already in the store is reported at once; at most `concurrency` blobs download at a time.
// A work item names the registry by host key and carries no credential: the supernode admits this
// peer for the blob on the job's authority, and the registry fallback uses this peer's own
// configuration for that registry (its URL, its static credentials if any).
// Blobs of a job are pinned in the store (a lease) while the job keeps this peer busy and for
// PIN_GRACE_MS after its last item here, so the quota's eviction never takes a job's early layers
// to make room for its later ones; a job larger than the quota fails with ERR_DISK_QUOTA instead.
import type { Logger } from 'pino';
import type { BlobLeases, ContentStore } from '../../src/content-store.ts';
import { PollenError, toPollenError } from '../../src/errors.ts';
import type { WorkItem, WorkReport } from '../../src/preheat/jobs-api.ts';
import type { BlobDownloader, UpstreamTarget } from '../blob-downloader.ts';
import type { SupernodeClient } from '../p2p/supernode-client.ts';

export interface PreheatWorkerOptions {
  readonly concurrency: number;
  readonly retryMs: number;
}

const DEFAULT_OPTIONS: PreheatWorkerOptions = { concurrency: 4, retryMs: 2_000 };
/** How long a job's blobs stay pinned after its last work item on this peer. */
export const PIN_GRACE_MS = 10 * 60_000;

/** This peer's way to a registry named by host key (throws when it has none). */
export type RegistryLookup = (registry: string) => { readonly baseUrl: string; readonly staticAuthorization: string | undefined };

export class PreheatWorker {
  private readonly client: SupernodeClient;
  /** This peer's current id (it changes if a supernode finds it taken; see P2pAgent.peerId). */
  private readonly peerId: () => string;
  private readonly isRegistered: (url: string) => boolean;
  private readonly downloader: BlobDownloader;
  private readonly lookup: RegistryLookup;
  private readonly store: ContentStore;
  private readonly logger: Logger;
  private readonly options: PreheatWorkerOptions;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Per supernode: reports not yet delivered. */
  private readonly reports = new Map<string, WorkReport[]>();
  private readonly known = new Set<string>();
  private readonly queue: Array<{ url: string; item: WorkItem }> = [];
  private running = 0;
  private closed = false;
  private readonly leases: BlobLeases | undefined;
  /** Per job: the leases of its blobs, released PIN_GRACE_MS after its last item here. */
  private readonly pins = new Map<string, { releases: Array<() => void>; running: number; timer: NodeJS.Timeout | undefined }>();

  constructor(
    deps: { client: SupernodeClient; peerId: () => string; isRegistered: (url: string) => boolean; downloader: BlobDownloader; lookup: RegistryLookup; store: ContentStore; leases?: BlobLeases; logger: Logger },
    options: Partial<PreheatWorkerOptions> = {},
  ) {
    this.client = deps.client;
    this.peerId = deps.peerId;
    this.isRegistered = deps.isRegistered;
    this.downloader = deps.downloader;
    this.lookup = deps.lookup;
    this.store = deps.store;
    this.leases = deps.leases;
    this.logger = deps.logger.child({ component: 'preheat' });
    this.options = { ...DEFAULT_OPTIONS, ...options };
  }

  start(): void {
    for (const url of this.client.urls) this.later(url, this.options.retryMs);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const job of [...this.pins.keys()]) this.unpin(job);
  }

  /** Pins `digest` for `job` (before its download starts, so nothing evicts it half-way either). */
  private pin(job: string, digest: WorkItem['digest']): void {
    if (!this.leases) return;
    let pin = this.pins.get(job);
    if (!pin) this.pins.set(job, (pin = { releases: [], running: 0, timer: undefined }));
    if (pin.timer) clearTimeout(pin.timer);
    pin.timer = undefined;
    pin.running++;
    pin.releases.push(this.leases.lease(digest));
  }

  /** The job's last item here is done: its pins go after the grace period (or at once on close). */
  private settle(job: string): void {
    const pin = this.pins.get(job);
    if (!pin) return;
    pin.running--;
    if (pin.running > 0 || this.queue.some((q) => String(q.item.job) === job)) return;
    if (pin.timer) clearTimeout(pin.timer);
    pin.timer = setTimeout(() => this.unpin(job), PIN_GRACE_MS);
    pin.timer.unref();
  }

  private unpin(job: string): void {
    const pin = this.pins.get(job);
    if (!pin) return;
    this.pins.delete(job);
    if (pin.timer) clearTimeout(pin.timer);
    for (const release of pin.releases) release();
  }

  private later(url: string, ms: number): void {
    if (this.closed) return;
    const t = setTimeout(() => void this.poll(url), ms);
    t.unref();
    this.timers.set(url, t);
  }

  private async poll(url: string): Promise<void> {
    if (this.closed) return;
    if (!this.isRegistered(url)) return this.later(url, this.options.retryMs);
    const sending = this.reports.get(url) ?? [];
    this.reports.set(url, []);
    try {
      const res = await this.client.preheatWork(url, this.peerId(), { reports: sending });
      for (const item of Array.isArray(res.work) ? res.work : []) {
        const k = `${url} ${item.job} ${item.digest}`;
        if (this.known.has(k)) continue;
        this.known.add(k);
        this.queue.push({ url, item });
      }
      this.pump();
      this.later(url, Math.min(Math.max(Number(res.pollMs) || 1_000, 200), 30_000));
    } catch (err) {
      this.reports.set(url, [...sending, ...(this.reports.get(url) ?? [])]);
      this.logger.debug({ supernode: url, err: (err as Error).message }, 'preheat poll failed');
      this.later(url, this.options.retryMs);
    }
  }

  private pump(): void {
    while (!this.closed && this.running < this.options.concurrency && this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.running++;
      const job = String(next.item.job);
      this.pin(job, next.item.digest);
      void this.fetch(next.item)
        .then((report) => {
          const list = this.reports.get(next.url) ?? [];
          list.push(report);
          this.reports.set(next.url, list);
        })
        .finally(() => {
          this.known.delete(`${next.url} ${next.item.job} ${next.item.digest}`);
          this.running--;
          this.settle(job);
          this.pump();
        });
    }
  }

  private async fetch(item: WorkItem): Promise<WorkReport> {
    const base = { job: item.job, digest: item.digest };
    try {
      if (await this.store.stat(item.digest)) return { ...base, ok: true };
      this.logger.info({ job: item.job, digest: item.digest, size: item.size }, 'preheating a blob');
      const { registry, name } = (item.upstream ?? {}) as Partial<WorkItem['upstream']>;
      if (typeof registry !== 'string' || typeof name !== 'string') throw new PollenError('ERR_INVALID_REQUEST', 'a work item without a registry and a name');
      // This peer's own way to the registry (its URL, its static credentials): the work item has none.
      const way = this.lookup(registry);
      const upstream: UpstreamTarget = { registry, baseUrl: way.baseUrl, name, authorization: way.staticAuthorization };
      const partial = await this.downloader.start({ digest: item.digest, sizeHint: item.size ?? undefined, upstream });
      await partial.settledPromise();
      if (await this.store.stat(item.digest)) {
        this.logger.info({ job: item.job, digest: item.digest }, 'blob preheated');
        return { ...base, ok: true };
      }
      // The partial failed: reading it gives the reason.
      let reason = 'download failed';
      try {
        for await (const _ of partial.createReadStream({ start: 0, end: 0 })) break;
      } catch (err) {
        reason = (err as Error).message;
      }
      return { ...base, ok: false, error: reason };
    } catch (err) {
      const e = toPollenError(err);
      this.logger.warn({ job: item.job, digest: item.digest, code: e.code, err: e.message }, 'preheat of a blob failed');
      return { ...base, ok: false, error: `${e.code}: ${e.message}` };
    }
  }
}
