// The peer's preheat worker with in-memory parts: a work item names the registry by host key and
// carries no credential; the worker reaches the registry (for a fallback) through this peer's own
// configuration, and reports a blob of a registry it is not configured for as failed.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { Digest } from '../../../../src/digest.ts';
import { sha256Digest } from '../../../../src/digest.ts';
import { PollenError } from '../../../../src/errors.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { PartialBlob } from '../../../../src/partial-blob.ts';
import type { WorkItem, WorkReport, WorkRequest, WorkResponse } from '../../../../src/preheat/jobs-api.ts';
import type { BlobDownloader, BlobFetchRequest } from '../../../../peer/blob-downloader.ts';
import type { SupernodeClient } from '../../../../peer/p2p/supernode-client.ts';
import { PIN_GRACE_MS, PreheatWorker } from '../../../../peer/preheat/preheat-worker.ts';
import { waitFor } from '../../../helpers/tools.ts';

/** A supernode client that hands out `items` on the first poll and collects every report. */
function handsOutOnce(items: WorkItem[]): { client: SupernodeClient; reports: WorkReport[] } {
  const reports: WorkReport[] = [];
  let handed = false;
  const client = {
    urls: ['http://sn'],
    async preheatWork(_url: string, _peer: string, body: WorkRequest): Promise<WorkResponse> {
      reports.push(...body.reports);
      const work = handed ? [] : items;
      handed = true;
      return { work, pollMs: 200 };
    },
  } as unknown as SupernodeClient;
  return { client, reports };
}

describe('PreheatWorker', () => {
  it('fetches a work item through this peer\'s own way to the registry and reports an unconfigured registry as failed', async () => {
    const store = new MemoryContentStore();
    const blob = randomBytes(1000);
    const known = sha256Digest(blob) as Digest;
    const unknown = sha256Digest('other') as Digest;
    const items: WorkItem[] = [
      { job: 1, digest: known, size: blob.length, upstream: { registry: 'reg.example', name: 'ns/app' } },
      { job: 1, digest: unknown, size: 5, upstream: { registry: 'other.example', name: 'ns/app' } },
    ];
    const { client, reports } = handsOutOnce(items);
    const asked: BlobFetchRequest[] = [];
    const downloader: BlobDownloader = {
      async start(request) {
        asked.push(request);
        const ingest = await store.openIngest(request.digest);
        const partial = new PartialBlob({ store, ingest }, { size: blob.length });
        await partial.append(blob);
        await partial.commit();
        return partial;
      },
    };
    const lookup = (registry: string) => {
      if (registry !== 'reg.example') throw new PollenError('ERR_UNKNOWN_UPSTREAM', `no upstream is configured for registry ${registry}: add --registry ${registry}=URL`);
      return { baseUrl: 'https://mirror.internal:8443', staticAuthorization: 'Basic cGVlcjpvd24=' };
    };
    const worker = new PreheatWorker({ client, peerId: () => 'p1', isRegistered: () => true, downloader, lookup, store, logger: pino({ level: 'silent' }) }, { retryMs: 10 });
    worker.start();
    try {
      await waitFor(async () => reports.length === 2, 'two reports', 5_000);
    } finally {
      worker.close();
    }
    expect(asked.map((r) => r.upstream)).toEqual([{ registry: 'reg.example', baseUrl: 'https://mirror.internal:8443', name: 'ns/app', authorization: 'Basic cGVlcjpvd24=' }]);
    expect(reports.find((r) => r.digest === known)).toMatchObject({ ok: true });
    expect(reports.find((r) => r.digest === unknown)).toMatchObject({ ok: false, error: expect.stringMatching(/ERR_UNKNOWN_UPSTREAM.*--registry other.example=URL/) });
    expect(await store.stat(known)).toEqual({ digest: known, size: blob.length });
  });

  it('pins a job\'s blobs in the store while the job runs and for the grace period after its last item, then releases them', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const store = new MemoryContentStore();
      const blobs = [randomBytes(100), randomBytes(200)];
      const items: WorkItem[] = blobs.map((b) => ({ job: 7, digest: sha256Digest(b) as Digest, size: b.length, upstream: { registry: 'reg.example', name: 'ns/app' } }));
      const { client, reports } = handsOutOnce(items);
      const downloader: BlobDownloader = {
        async start(request) {
          const blob = blobs.find((b) => sha256Digest(b) === request.digest)!;
          const ingest = await store.openIngest(request.digest);
          const partial = new PartialBlob({ store, ingest }, { size: blob.length });
          await partial.append(blob);
          await partial.commit();
          return partial;
        },
      };
      const held = new Map<Digest, number>();
      const leases = {
        lease(digest: Digest) {
          held.set(digest, (held.get(digest) ?? 0) + 1);
          let released = false;
          return () => {
            if (released) return;
            released = true;
            held.set(digest, held.get(digest)! - 1);
          };
        },
      };
      const lookup = () => ({ baseUrl: 'https://reg.example', staticAuthorization: undefined });
      const worker = new PreheatWorker({ client, peerId: () => 'p1', isRegistered: () => true, downloader, lookup, store, leases, logger: pino({ level: 'silent' }) }, { retryMs: 10 });
      worker.start();
      for (let i = 0; i < 200 && reports.length < 2; i++) await vi.advanceTimersByTimeAsync(50);
      expect(reports.map((r) => r.ok)).toEqual([true, true]);
      // Done here, but still pinned: the job may be filling this store with more of its blobs.
      for (const item of items) expect(held.get(item.digest)).toBe(1);
      await vi.advanceTimersByTimeAsync(PIN_GRACE_MS - 60_000);
      for (const item of items) expect(held.get(item.digest)).toBe(1);
      await vi.advanceTimersByTimeAsync(60_000);
      for (const item of items) expect(held.get(item.digest)).toBe(0);
      worker.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
